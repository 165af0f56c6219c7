/**
 * tollgate composed into another Effect program, exactly as the README shows it: the package's
 * own entry point, a config given in code, the proxy served by the host program's runtime.
 */
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createServer } from "node:http"
import OpenAI from "openai"
import { Config, Http, Mount } from "tollgate"
import { tempDbPath } from "../support/Tollgate.js"

describe("library surface", () => {
  it.scopedLive("another Effect program composes the proxy's layers with its own config and serves it", () =>
    Effect.gen(function*() {
      // The README's program, with port 0 and a temporary ledger instead of 8080 and ./my-app-ledger.db.
      const Tollgate = Http.layer.pipe(
        Layer.provide(Config.layerFrom({
          server: { port: 0 },
          providers: { sim: { kind: "mock", reply: "Hello from inside my app" } },
          database: { path: tempDbPath() }
        }))
      )

      const server = Context.get(yield* Layer.build(Tollgate), HttpServer.HttpServer)
      const address = server.address
      assert.strictEqual(address._tag, "TcpAddress")
      const port = address._tag === "TcpAddress" ? address.port : 0
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused" })
      const completion = yield* Effect.promise(() =>
        client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      )
      assert.strictEqual(completion.choices[0]?.message.content, "Hello from inside my app")
    }))

  it.scopedLive("tollgate's routes mounted in the app's own HttpLayerRouter, as examples/library.mjs does: JSON and a stream", () =>
    Effect.gen(function*() {
      // examples/library.mjs, with port 0 and a temporary ledger.
      const Hello = HttpLayerRouter.add("GET", "/hello", HttpServerResponse.text("Hello from my app"))
      const Tollgate = Mount.routes.pipe(
        Layer.provide(Config.layerFrom({
          providers: { sim: { kind: "mock", reply: "Hello from inside my app" } },
          database: { path: tempDbPath() }
        }))
      )
      const App = HttpLayerRouter.serve(Layer.mergeAll(Hello, Tollgate), { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )

      const server = Context.get(yield* Layer.build(App), HttpServer.HttpServer)
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused" })
      const completion = yield* Effect.promise(() =>
        client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      )
      assert.strictEqual(completion.choices[0]?.message.content, "Hello from inside my app")
      const text = yield* Effect.promise(async () => {
        let out = ""
        const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] })
        for await (const chunk of stream) out += chunk.choices[0]?.delta.content ?? ""
        return out
      })
      assert.strictEqual(text, "Hello from inside my app")
      const hello = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/hello`).then((r) => r.text()))
      assert.strictEqual(hello, "Hello from my app")
    }))
})
