/**
 * The public listener: Node's `http` server, with a lean request handler of our own that runs
 * `Http/Routes.ts` on the runtime captured when the layer is built (`Http.ts` exports it). Its layer also outputs the
 * platform's `HttpServer`, so a caller can read the bound address (port 0 picks a free one).
 *
 * Why not `HttpServer.serve`: the platform's per-request machinery (request wrapper, handled-app
 * pipeline, middleware, a scope per request) cost more CPU per request than the proxy's own work
 * (docs/performance.md, "Figures behind src/ comments"). The handler below keeps what matters: one fiber per request, interrupted
 * when the client goes away, and the response body written with back-pressure.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { ServeError } from "@effect/platform/HttpServerError"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { createServer, type IncomingMessage, type Server, STATUS_CODES, type ServerResponse } from "node:http"
import { type AddressInfo, BlockList, isIP } from "node:net"
import type { Duplex } from "node:stream"
import { type ByteSink, type ByteSource, Piped } from "../Bytes.js"
import * as Circuit from "../Circuit.js"
import { TollgateConfig, ConfigError, type TollgateSettings } from "../Config.js"
import {
  BadRequest,
  HeadersTooLarge,
  type RequestError,
  RequestTimeout,
  ShuttingDown,
  statusOf
} from "../Domain/Errors.js"
import { errorBodyOf } from "../Http/Errors.js"
import * as Routes from "../Http/Routes.js"
import * as Models from "../Models.js"
import * as Proxy from "../Proxy.js"
import * as Services from "../Services.js"
import type { StoreError } from "../Store.js"
import * as Telemetry from "../Telemetry.js"
import * as Body from "./Body.js"
import { IoScheduler } from "./IoScheduler.js"

const INTERNAL_ERROR = JSON.stringify({
  error: { message: "tollgate hit an internal error; see its log", type: "server_error", code: "internal_error" }
})

/**
 * A WebSocket upgrade (Codex tries one on `/v1/responses` when its provider says
 * `supports_websockets`): tollgate serves HTTP only. 426 with an OpenAI-shaped error, and the
 * connection closed after it, so the client falls back to `POST` on a fresh connection (Codex
 * does, after one try). Not an `upgrade` listener: with none, Node hands upgrade requests to the
 * request handler, so an upgrade to anything else (`h2c`) is ignored as HTTP/1.1 allows.
 */
const WEBSOCKET_REFUSED = JSON.stringify({
  error: {
    message: "tollgate serves this API over HTTP only, not WebSocket: send the request as an HTTP POST " +
      "(Codex falls back to it by itself; supports_websockets = false on its model provider skips the try)",
    type: "invalid_request_error",
    code: "websocket_not_supported"
  }
})

const wantsWebSocket = (req: IncomingMessage): boolean => {
  const upgrade = req.headers.upgrade
  return upgrade !== undefined && upgrade.toLowerCase().includes("websocket")
}

const refuseWebSocket = (res: ServerResponse): void => {
  res.writeHead(426, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(WEBSOCKET_REFUSED),
    connection: "close"
  })
  res.end(WEBSOCKET_REFUSED)
}

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
 * The client's `ServerResponse` as a sink, with back-pressure (`drain`). It settles once: when the
 * body is complete (the response ended), cut (the connection destroyed: a truncated body never
 * looks complete), or a write Node refused or a source's defect (passed on as the defect; that
 * must not escape into the event loop).
 */
class ResponseSink implements ByteSink<unknown> {
  private settled = false
  constructor(
    private readonly res: ServerResponse,
    private readonly source: ByteSource<unknown>,
    private readonly settle: (defect?: unknown) => void
  ) {}

  write(chunk: Uint8Array): boolean {
    if (this.settled) return false
    try {
      return this.res.write(chunk)
    } catch (defect) {
      this.source.cancel()
      this.done(defect ?? new Error("stream write failed"))
      return false
    }
  }

  drained(resume: () => void): void {
    if (!this.settled) this.res.once("drain", resume)
  }

  end(): void {
    if (this.settled) return
    try {
      this.res.end()
    } catch (defect) {
      return this.done(defect ?? new Error("stream end failed"))
    }
    this.done()
  }

  fail(cause: Cause.Cause<unknown>): void {
    if (this.settled) return
    const defects = Cause.defects(cause)
    if (Chunk.isNonEmpty(defects)) return this.done(Chunk.unsafeHead(defects))
    this.res.destroy()
    this.done()
  }

  /** The client is gone: the source stops, and nothing settles any more. */
  stop(): void {
    this.settled = true
    this.source.cancel()
  }

  private done(defect?: unknown): void {
    this.settled = true
    this.settle(defect)
  }
}

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
          const sink = new ResponseSink(res, piped.source, (defect) => resume(defect === undefined ? Effect.void : Effect.die(defect)))
          piped.source.pipe(sink)
          return Effect.sync(() => sink.stop())
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

/** Loopback addresses: 127.0.0.0/8 and ::1 (IPv4-mapped ones too). */
const LOOPBACK = new BlockList()
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4")
LOOPBACK.addAddress("::1", "ipv6")

/** Whether `host` can only be reached from this machine: `localhost` or a loopback address (a name is not resolved). */
export const isLoopback = (host: string): boolean => {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  const family = isIP(bare)
  return family === 0 ? bare.toLowerCase() === "localhost" : LOOPBACK.check(bare, family === 6 ? "ipv6" : "ipv4")
}

/**
 * A bind that others on the network can reach, with no client keys, would let anyone spend the
 * operator's provider keys: refused before anything listens.
 */
const refuseOpenBind = (server: TollgateSettings["server"]): Effect.Effect<void, ConfigError> =>
  server.apiKeys.length > 0 || isLoopback(server.host)
    ? Effect.void
    : Effect.fail(
      new ConfigError({
        message: `refusing to listen on ${server.host} without server.apiKeys: anyone who can reach it would spend the configured provider keys. ` +
          "Set server.apiKeys (clients send one as Authorization: Bearer ...), or listen on 127.0.0.1"
      })
    )

/** The platform's address for what Node bound (`::` stays `::`: it is not 0.0.0.0). */
export const tcpAddressOf = (address: AddressInfo): HttpServer.TcpAddress => ({
  _tag: "TcpAddress",
  hostname: address.address,
  port: address.port
})

/**
 * Binds `server` (a `ServeError` if it cannot), closes it with the scope, and offers it as the
 * platform's `HttpServer`. Not `NodeHttpServer.layer`, which does the same: its module loads the
 * platform's request machinery, WebSockets (`ws`), `mime` and multipart parsing along with it,
 * none of which runs here, and all of which costs memory.
 * `serve` is refused: this listener answers its own routes, and an app served beside them on the
 * same server would answer every request a second time. (A serving listener is drained before
 * this closes it; see `layerWithoutDependencies`.)
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
      () =>
        Effect.async<void>((resume) => {
          if (!server.listening) return resume(Effect.void)
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    // Bound to a port and host, so the address is a TCP one.
    return HttpServer.make({
      address: tcpAddressOf(server.address() as AddressInfo),
      serve: () =>
        Effect.dieMessage("tollgate's listener answers its own routes: serve another app on a server of its own")
    })
  })

/**
 * The error as a whole HTTP/1.1 response in bytes, for a socket that has no `ServerResponse`
 * (Node's `clientError`: a request it could not parse or that timed out). The connection is
 * closed after it.
 */
const rawResponse = (error: RequestError): Buffer => {
  const status = statusOf(error)
  const body = JSON.stringify(errorBodyOf(error))
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  )
}

/**
 * Node's own answers to what it could not parse (`clientError`: a bad request line, headers too
 * large, a request that did not arrive within `server.bodyTimeout`), as JSON errors like every
 * other answer, written on the socket itself as Node's default would be: only if nothing of a
 * response went out yet.
 */
const onClientError = (limitMs: number) => (error: Error & { code?: string }, socket: Duplex): void => {
  const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (error.code !== "ECONNRESET" && socket.writable && (pending == null || !pending.headersSent)) {
    const answer = error.code === "HPE_HEADER_OVERFLOW"
      ? new HeadersTooLarge()
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? new RequestTimeout({ limitMs })
      : new BadRequest({ code: "malformed_request", message: `The request could not be parsed as HTTP/1.1 (${error.code ?? "parse error"})` })
    socket.write(rawResponse(answer))
  }
  socket.destroy(error)
}

export const layerWithoutDependencies: Layer.Layer<
  HttpServer.HttpServer,
  ServeError | ConfigError,
  TollgateConfig | Proxy.Proxy | Models.Models | Circuit.Circuit | Telemetry.Telemetry
> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* TollgateConfig
    const settings = config.server
    yield* refuseOpenBind(settings)
    const app = yield* Routes.make
    const bodyTimeout = settings.bodyTimeout
    // Node's own request timer bounds the body: it already tracks every connection's request
    // start, so this costs no timer per request. It is checked every `connectionsCheckingInterval`
    // (30 s by default, too coarse for a 30 s limit: the 311 s of issue #29 were 300 + that).
    const server = createServer({
      requestTimeout: bodyTimeout,
      headersTimeout: bodyTimeout === 0 ? 60_000 : Math.min(60_000, bodyTimeout),
      connectionsCheckingInterval: bodyTimeout === 0 ? 30_000 : Math.max(10, Math.min(1_000, Math.floor(bodyTimeout / 10)))
    })
    server.on("clientError", onClientError(bodyTimeout))
    const handle = Layer.scopedDiscard(
      Effect.gen(function*() {
        // The scheduler is in the runtime's fiber refs, so each fork only sets its context
        // (given at the fork, it was a second fiber ref to set on every request).
        const runFork = Runtime.runFork(yield* Effect.withScheduler(Effect.runtime<never>(), new IoScheduler()))
        const inFlight = new Body.InFlight(settings.maxBodyBytesInFlight)
        const refusedBeforeBody = app.refusedBeforeBody
        // Shutdown: from when it starts, new requests are refused and each answer closes its
        // connection; `running` counts request fibers, so the drain knows when the last is done.
        let draining = false
        let running = 0
        let onIdle: (() => void) | undefined
        const fiberDone = () => {
          if (--running === 0 && onIdle !== undefined) onIdle()
        }
        const serve = (req: IncomingMessage, res: ServerResponse, body: Body.Body) => {
          const incoming: Routes.Incoming = {
            method: req.method ?? "GET",
            url: req.url ?? "/",
            // Node lower-cases header names already; repeated headers arrive joined or as arrays.
            headers: req.headers as unknown as Headers.Headers,
            body
          }
          const held = Either.isRight(body) ? body.right.length : 0
          // The routes answer every failure and defect themselves; `write` answers its own.
          const fiber = runFork(Effect.flatMap(app(incoming), (response) => {
            if (draining) res.setHeader("connection", "close")
            return write(res, response)
          }))
          running++
          fiber.addObserver(fiberDone)
          res.once("close", () => {
            inFlight.release(held)
            if (!res.writableEnded) fiber.unsafeInterruptAsFork(FiberId.none)
            // An answer that ends while draining leaves its connection idle: close it now.
            else if (draining) server.closeIdleConnections()
          })
        }
        /** Answers at once, without reading the body, and closes the connection after. */
        const refuse = (req: IncomingMessage, res: ServerResponse, error: RequestError) =>
          runFork(write(res, Routes.errorResponse(Routes.pathOf(req.url ?? "/"), error, { connection: "close" })))
        /** Whether a request may go on to have its body read (else it is answered already). */
        const admitted = (req: IncomingMessage, res: ServerResponse): boolean => {
          if (wantsWebSocket(req)) return refuseWebSocket(res), false
          if (draining) return void refuse(req, res, new ShuttingDown()), false
          if (refusedBeforeBody === undefined) return true
          const refused = refusedBeforeBody(req.url ?? "/", req.headers as unknown as Headers.Headers)
          return refused === undefined || (refuse(req, res, refused), false)
        }
        // The body is read before the request's fiber starts (a client gone meanwhile ends the
        // read with an error, answered to no one).
        const onRequest = (req: IncomingMessage, res: ServerResponse) => {
          if (admitted(req, res)) Body.collect(req, settings.maxBodyBytes, inFlight, (body) => serve(req, res, body))
        }
        // `Expect: 100-continue`: the client sends its body only once told to, so a refusal
        // (no key, shutting down) goes out before any of it is sent.
        const onCheckContinue = (req: IncomingMessage, res: ServerResponse) => {
          if (!admitted(req, res)) return
          res.writeContinue()
          Body.collect(req, settings.maxBodyBytes, inFlight, (body) => serve(req, res, body))
        }
        server.on("request", onRequest)
        server.on("checkContinue", onCheckContinue)
        // Closed with the scope, before the services the requests use: stop accepting, close
        // idle keep-alive connections, refuse what still comes in, let the requests in flight
        // finish for up to `drainTimeout`, then cut them off (each fiber is interrupted by its
        // closed connection, so its ledger row is booked as aborted) and wait for the last one.
        yield* Effect.addFinalizer(() =>
          Effect.async<void>((resume) => {
            draining = true
            let closed = false
            const finish = () => {
              if (!closed || running > 0) return
              clearTimeout(cut)
              server.off("request", onRequest)
              server.off("checkContinue", onCheckContinue)
              resume(Effect.void)
            }
            onIdle = finish
            const cut = setTimeout(() => server.closeAllConnections(), settings.drainTimeout)
            server.close(() => {
              closed = true
              finish()
            })
            server.closeIdleConnections()
          })
        )
      })
    )
    return handle.pipe(
      Layer.provideMerge(Layer.scoped(HttpServer.HttpServer, listen(server, { port: settings.port, host: settings.host })))
    )
  })
)

/**
 * The whole proxy, serving, and the services it serves with (the ledger, the writer, the cache...,
 * for whoever runs beside it: the CLI, tests): everything but the config, which the caller provides.
 */
export const layer: Layer.Layer<HttpServer.HttpServer | Services.Services, ServeError | ConfigError | StoreError, TollgateConfig> =
  layerWithoutDependencies.pipe(Layer.provideMerge(Services.live))
