/**
 * The public HTTP listener: serves `Http/Routes.ts` on the configured host and port with Node's
 * `http` server. Its layer also outputs the `HttpServer`, so a caller can read the bound address
 * (port 0 picks a free one).
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Scheduler from "effect/Scheduler"
import { createServer } from "node:http"
import * as Circuit from "./Circuit.js"
import { Config } from "./Config.js"
import * as Routes from "./Http/Routes.js"
import * as Pricing from "./Pricing.js"
import * as Proxy from "./Proxy.js"
import type { StoreError } from "./Store.js"

/**
 * Request fibers run their scheduled work from `setImmediate`, not from microtasks. Effect's
 * default scheduler drains fibers in microtasks, which under load starves Node's I/O callbacks:
 * socket reads and writes wait for long microtask runs. Measured here (one core, 50 connections,
 * JSON passthrough): ~450 -> ~900 req/s and p50 86 -> 43 ms; at one connection p50 2 -> 1 ms.
 */
const ioScheduler = Scheduler.makeBatched((run) => setImmediate(run))

export const layerWithoutDependencies: Layer.Layer<HttpServer.HttpServer, ServeError, Config | Proxy.Proxy | Pricing.Pricing | Circuit.Circuit> =
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* Config
      const app = yield* Routes.make
      // No span per request: tracing costs CPU on the hot path and nothing exports it (yet).
      return HttpServer.serve(app).pipe(
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.locally(FiberRef.currentScheduler, ioScheduler),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: config.server.port, host: config.server.host }))
      )
    })
  )

/** The whole proxy, serving: everything but the `Config`, which the caller provides. */
export const layer: Layer.Layer<HttpServer.HttpServer, ServeError | StoreError, Config> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(Proxy.layer, Pricing.layer, Circuit.layer))
)
