/**
 * The public listener: Node's `http` server, with a lean request handler of our own that runs
 * `Http/Routes.ts` on the runtime captured when the layer is built. Its layer also outputs the
 * platform's `HttpServer`, so a caller can read the bound address (port 0 picks a free one).
 *
 * Why not `HttpServer.serve`: the platform's per-request machinery (request wrapper, handled-app
 * pipeline, middleware, a scope per request) cost ~0.18 ms of CPU per request here, measured on a
 * trivial route (0.21 ms vs 0.03 ms for bare `node:http`; a fiber per request on a prebuilt
 * runtime: 0.09 ms). The handler below keeps what matters: one fiber per request, interrupted
 * when the client goes away, and the response body written with back-pressure.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { ServeError } from "@effect/platform/HttpServerError"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as Circuit from "./Circuit.js"
import { Config } from "./Config.js"
import * as Body from "./Http/Body.js"
import { IoScheduler } from "./Http/IoScheduler.js"
import { Piped } from "./Http/Piped.js"
import * as Routes from "./Http/Routes.js"
import * as Pricing from "./Pricing.js"
import * as Proxy from "./Proxy.js"
import type { StoreError } from "./Store.js"
import * as Telemetry from "./Telemetry.js"

const INTERNAL_ERROR = JSON.stringify({
  error: { message: "tollgate hit an internal error; see its log", type: "server_error", code: "internal_error" }
})

/**
 * A response Node refuses to write (an invalid header value from a provider, say) must still end
 * the exchange: a 500 if nothing went out yet, else a cut connection. Logged, as the bug it is.
 */
const refused = (res: ServerResponse, defect: unknown): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.logError("could not write a response", Cause.die(defect)),
    Effect.sync(() => {
      if (res.headersSent) return void res.destroy()
      res.writeHead(500, { "content-type": "application/json" })
      res.end(INTERNAL_ERROR)
    })
  )

/**
 * Writes a response to Node's `ServerResponse`, called from the step that has the response: a
 * byte body at once (nothing waits for it to drain: a single write has no back-pressure to
 * respect), a stream body with back-pressure.
 */
const write = (res: ServerResponse, response: HttpServerResponse.HttpServerResponse): Effect.Effect<void> => {
  if (res.writableEnded) return Effect.void
  const body = response.body
  try {
    switch (body._tag) {
      case "Uint8Array":
      case "Empty": {
        res.writeHead(response.status, response.headers)
        res.end(body._tag === "Uint8Array" ? body.body : undefined)
        return Effect.void
      }
      case "Stream": {
        res.writeHead(response.status, response.headers)
        const drained = Effect.unsafeMakeLatch(true)
        res.on("drain", () => drained.unsafeOpen())
        // Pulled chunk by chunk rather than run into a sink (`Stream.runForEachChunk`): the sink
        // is one more channel stage that every chunk passes through (~25% of a paced stream's
        // Effect steps). The pull fails with None at the end of the stream.
        return Effect.scoped(Effect.flatMap(Stream.toPull(body.stream), (pull) => {
          const next: Effect.Effect<never, Option.Option<unknown>> = Effect.flatMap(pull, (chunk) => {
            let full = false
            for (const piece of chunk) full = !res.write(piece)
            if (!full) return next
            drained.unsafeClose()
            return Effect.zipRight(drained.await, next)
          })
          return next
        })).pipe(
          Effect.catchAllCause((cause) => {
            // The end of the stream: every chunk is written.
            const failure = Cause.failureOption(cause)
            if (Option.isSome(failure) && Option.isNone(failure.value)) return Effect.sync(() => void res.end())
            // A body that fails after its headers went out: end it; the request's own program has
            // already recorded what happened. A write Node refused is a bug: said so.
            if (Cause.isInterruptedOnly(cause)) return Effect.void
            const defects = Cause.defects(cause)
            return Chunk.isNonEmpty(defects) ? refused(res, Chunk.unsafeHead(defects)) : Effect.sync(() => void res.destroy())
          })
        )
      }
      case "Raw": {
        const piped = body.body
        // Routes answer bytes, streams or piped bodies only; anything else is a bug, said as one
        // rather than sent empty.
        if (!(piped instanceof Piped)) return refused(res, new Error("a raw response body must be Piped"))
        res.writeHead(response.status, response.headers)
        return Effect.async<void>((resume) => {
          const cancel = piped.run(res, (defect) => resume(defect === undefined ? Effect.void : Effect.die(defect)))
          return Effect.sync(cancel)
        }).pipe(
          Effect.onExit((exit) => piped.after(Exit.isInterrupted(exit))),
          Effect.catchAllDefect((defect) => refused(res, defect))
        )
      }
      case "FormData":
        return refused(res, new Error("a response body of kind FormData cannot be written"))
    }
  } catch (defect) {
    return refused(res, defect)
  }
}

/**
 * Binds `server` (a `ServeError` if it cannot), closes it with the scope, and offers it as the
 * platform's `HttpServer`. Not `NodeHttpServer.layer`, which does the same: its module loads the
 * platform's request machinery, WebSockets (`ws`), `mime` and multipart parsing along with it,
 * none of which runs here (measured: 160 KB of the bundle, ~4 MB of an idle tollgate's RSS).
 * `serve` is refused: this listener answers its own routes, and an app served beside them on the
 * same server would answer every request a second time.
 */
const listen = (server: Server, options: { readonly port: number; readonly host: string }) =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(
      Effect.async<void, ServeError>((resume) => {
        const onError = (cause: unknown) => resume(Effect.fail(new ServeError({ cause })))
        server.once("error", onError)
        server.listen(options, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
    )
    // Bound to a port and host, so the address is a TCP one.
    const address = server.address() as AddressInfo
    return HttpServer.make({
      address: { _tag: "TcpAddress", hostname: address.address === "::" ? "0.0.0.0" : address.address, port: address.port },
      serve: () =>
        Effect.dieMessage("tollgate's listener answers its own routes: serve another app on a server of its own")
    })
  })

export const layerWithoutDependencies: Layer.Layer<
  HttpServer.HttpServer,
  ServeError,
  Config | Proxy.Proxy | Pricing.Pricing | Circuit.Circuit | Telemetry.Telemetry
> =
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* Config
      const app = yield* Routes.make
      const server = createServer()
      const handle = Layer.scopedDiscard(
        Effect.gen(function*() {
          // The scheduler is in the runtime's fiber refs, so each fork only sets its context
          // (given at the fork, it was a second fiber ref to set on every request).
          const runFork = Runtime.runFork(yield* Effect.withScheduler(Effect.runtime<never>(), new IoScheduler()))
          const serve = (req: IncomingMessage, res: ServerResponse, body: Body.Body) => {
            const incoming: Routes.Incoming = {
              method: req.method ?? "GET",
              url: req.url ?? "/",
              // Node lower-cases header names already; repeated headers arrive joined or as arrays.
              headers: req.headers as unknown as Headers.Headers,
              body
            }
            // The routes answer every failure and defect themselves; `write` answers its own.
            const fiber = runFork(Effect.flatMap(app(incoming), (response) => write(res, response)))
            res.once("close", () => {
              if (!res.writableEnded) fiber.unsafeInterruptAsFork(FiberId.none)
            })
          }
          // The body is read before the request's fiber starts (a client gone meanwhile ends the
          // read with an error, answered to no one).
          const onRequest = (req: IncomingMessage, res: ServerResponse) =>
            Body.collect(req, config.server.maxBodyBytes, (body) => serve(req, res, body))
          server.on("request", onRequest)
          yield* Effect.addFinalizer(() => Effect.sync(() => server.off("request", onRequest)))
        })
      )
      return handle.pipe(
        Layer.provideMerge(Layer.scoped(HttpServer.HttpServer, listen(server, { port: config.server.port, host: config.server.host })))
      )
    })
  )

/** The whole proxy, serving: everything but the `Config`, which the caller provides. */
export const layer: Layer.Layer<HttpServer.HttpServer, ServeError | StoreError, Config> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(Proxy.layer, Pricing.layer, Circuit.layer, Telemetry.layer))
)
