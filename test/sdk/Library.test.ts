/**
 * tollgate composed into another Effect program, exactly as the README shows it: the package's
 * own entry point, a config given in code, the proxy served by the host program's runtime.
 */
import { HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import OpenAI from "openai"
import { Config, Http } from "tollgate"
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
})
