/**
 * The public HTTP listener: serves `Http/Routes.ts` on the configured host and port with Node's
 * `http` server. Its layer also outputs the `HttpServer`, so a caller can read the bound address
 * (port 0 picks a free one).
 */
import { HttpMiddleware, HttpServer } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Circuit from "./Circuit.js"
import { Config } from "./Config.js"
import * as Routes from "./Http/Routes.js"
import * as Pricing from "./Pricing.js"
import * as Proxy from "./Proxy.js"
import type { StoreError } from "./Store.js"

export const layerWithoutDependencies: Layer.Layer<HttpServer.HttpServer, ServeError, Config | Proxy.Proxy | Pricing.Pricing | Circuit.Circuit> =
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* Config
      const app = yield* Routes.make
      // No span per request: tracing costs CPU on the hot path and nothing exports it (yet).
      return HttpServer.serve(app).pipe(
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: config.server.port, host: config.server.host }))
      )
    })
  )

/** The whole proxy, serving: everything but the `Config`, which the caller provides. */
export const layer: Layer.Layer<HttpServer.HttpServer, ServeError | StoreError, Config> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(Proxy.layer, Pricing.layer, Circuit.layer))
)
