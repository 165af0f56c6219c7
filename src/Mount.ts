/**
 * tollgate's routes in an app's own `HttpRouter` and `HttpServer` (@effect/platform), beside the
 * app's own routes: JSON answers, SSE streams, a client that goes away (its upstream call is
 * aborted) and one ledger row per request, as on tollgate's own listener (`Http.ts`).
 *
 * The services are captured when the routes are built, so a request needs nothing but itself. A
 * streamed answer is served as `HttpServerResponse.stream` over the same byte source the listener
 * pipes (`Bytes.toStream`); the platform interrupts the request's fiber when its client goes
 * away, which cancels the source and books the row as aborted.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Piped, toStream } from "./Bytes.js"
import type * as Circuit from "./Circuit.js"
import { TollgateConfig } from "./Config.js"
import { BadRequest, PayloadTooLarge } from "./Domain/Errors.js"
import * as Routes from "./Http/Routes.js"
import type * as Models from "./Models.js"
import type * as Proxy from "./Proxy.js"
import * as Graph from "./Services.js"
import type { StoreError } from "./Store.js"
import type * as Telemetry from "./Telemetry.js"

/** What tollgate's routes are made of (`Services.live` builds them from a config). */
export type Services = TollgateConfig | Proxy.Proxy | Models.Models | Circuit.Circuit | Telemetry.Telemetry

/** tollgate's services, built once, from the config the caller provides (the composition root's graph). */
export const services: Layer.Layer<Graph.Services, StoreError, TollgateConfig> = Graph.live

/** A response as the platform's server can write it: a `Piped` body becomes a `Stream` over its source. */
export const toPlatformResponse = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const body = response.body
  if (body._tag !== "Raw" || !(body.body instanceof Piped)) return response
  const piped = body.body
  return HttpServerResponse.stream(
    Stream.ensuringWith(toStream(piped.source), (exit) => piped.after(Exit.isInterrupted(exit))),
    { status: response.status, headers: response.headers }
  )
}

/** The one handler for every path of tollgate's, and those paths. */
const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const app = yield* Routes.make
  const maxBodyBytes = Option.some(config.server.maxBodyBytes)
  const tooLarge = new PayloadTooLarge({ limitBytes: config.server.maxBodyBytes })
  const unreadable = new BadRequest({ code: "unreadable_body", message: "The request body could not be read" })
  const refusedBeforeBody = app.refusedBeforeBody

  const handler = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const headers = request.headers
    const respond = (body: Routes.Incoming["body"]) =>
      Effect.map(app({ method: request.method, url: request.url, headers, body }), toPlatformResponse)
    // A refusal (no valid key) is answered before the body is read, as on tollgate's own listener.
    if (refusedBeforeBody !== undefined && refusedBeforeBody(request.url, headers) !== undefined) {
      return respond(Either.right(new Uint8Array(0)))
    }
    if (request.method === "GET" || request.method === "HEAD") return respond(Either.right(new Uint8Array(0)))
    return request.arrayBuffer.pipe(
      HttpIncomingMessage.withMaxBodySize(maxBodyBytes),
      Effect.map((bytes) => Either.right(new Uint8Array(bytes))),
      Effect.catchAll(() =>
        Effect.succeed(Either.left(Number(headers["content-length"]) > config.server.maxBodyBytes ? tooLarge : unreadable))
      ),
      Effect.flatMap(respond)
    )
  }
  return { handler, paths: app.paths }
})

/**
 * tollgate's routes as an `HttpRouter`, to `concat` or `mount` into the app's own router, served
 * by the app's `HttpServer`:
 *
 *   const routes = yield* Mount.router
 *   HttpRouter.empty.pipe(HttpRouter.get("/", home), HttpRouter.concat(routes), HttpServer.serve())
 */
export const router: Effect.Effect<HttpRouter.HttpRouter, never, Services> = Effect.map(make, ({ handler, paths }) => {
  let routes: HttpRouter.HttpRouter = HttpRouter.empty
  for (const path of paths) {
    routes = HttpRouter.all(routes, path as HttpRouter.PathInput, Effect.flatMap(HttpServerRequest.HttpServerRequest, handler))
  }
  return routes
})

/**
 * tollgate's routes added to the app's `HttpLayerRouter` (served with `HttpLayerRouter.serve`),
 * on the services the caller provides.
 */
export const routesWithoutDependencies: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Services> = HttpLayerRouter.use((
  router
) =>
  Effect.flatMap(make, ({ handler, paths }) =>
    Effect.forEach(paths, (path) => router.add("*", path as HttpLayerRouter.PathInput, handler), { discard: true })
  )
)

/** tollgate's routes added to the app's `HttpLayerRouter`, with tollgate's services: only the config is needed. */
export const routes: Layer.Layer<never, StoreError, HttpLayerRouter.HttpRouter | TollgateConfig> = routesWithoutDependencies.pipe(
  Layer.provide(services)
)
