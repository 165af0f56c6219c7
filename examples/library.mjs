// tollgate's routes in your own Effect HTTP app: the app's router serves its own routes and
// tollgate's (/v1/chat/completions, /v1/messages, /v1/models, /healthz, /readyz) on its own server.
// JSON and streamed answers, a client that leaves (its upstream call is aborted) and the ledger
// row of every request work as on `tollgate start`.
//
//   npm install tollgate effect @effect/platform-node
//   node library.mjs      (then: curl localhost:3000/v1/chat/completions -d '{"model":"m","messages":[{"role":"user","content":"hi"}]}')
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { createServer } from "node:http"
import { Config, Mount } from "tollgate"

// The app's own route...
const Hello = HttpLayerRouter.add("GET", "/hello", HttpServerResponse.text("Hello from my app"))

// ...and tollgate's, with its services (router, budget, cache, ledger) built once from this config.
const Tollgate = Mount.routes.pipe(
  Layer.provide(Config.layerFrom({
    providers: { sim: { kind: "mock", reply: "Hello from inside my app" } },
    database: { path: "./my-app-ledger.db" }
  }))
)

HttpLayerRouter.serve(Layer.mergeAll(Hello, Tollgate)).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(process.env.PORT ?? 3000), host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
