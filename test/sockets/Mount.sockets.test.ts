/**
 * tollgate's routes mounted in an app's own router on the platform's Node server
 * (`NodeHttpServer.layer`, port 0), beside a route of the app's: a JSON answer, a stream to its
 * [DONE], and a client that leaves mid-stream (its upstream call is cut off), each with its ledger
 * row. Both ways to mount: `Mount.router` in an `HttpRouter`, `Mount.routes` in an
 * `HttpLayerRouter`. Real sockets on both sides; every wait is on an event, never on time.
 */
import { HttpLayerRouter, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Config from "../../src/Config.js"
import * as Mount from "../../src/Mount.js"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

class Upstream extends Context.Tag("test/MountUpstream")<Upstream, MockUpstream.MockUpstream>() {}
class BaseUrl extends Context.Tag("test/MountBaseUrl")<BaseUrl, string>() {}

const Server = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })

const hello = HttpServerResponse.text("hello from the app")

/** The app's own `HttpRouter`, with tollgate's routes concatenated, served by `HttpServer.serve`. */
const WithHttpRouter = Layer.unwrapEffect(
  Effect.map(Mount.router, (tollgate) => HttpRouter.empty.pipe(HttpRouter.get("/hello", hello), HttpRouter.concat(tollgate), HttpServer.serve()))
)

/** The app's own `HttpLayerRouter`, with tollgate's routes added, served by `HttpLayerRouter.serve`. */
const WithHttpLayerRouter = HttpLayerRouter.serve(Layer.mergeAll(HttpLayerRouter.add("GET", "/hello", hello), Mount.routesWithoutDependencies))

/** The app on the platform's server, a mock provider behind it, tollgate's services shared with the test (it reads the ledger). */
const envWith = (app: Layer.Layer<never, never, HttpServer.HttpServer | HttpLayerRouter.HttpRouter | Mount.Services>) =>
  Layer.unwrapScoped(
    Effect.map(MockUpstream.make, (upstream) => {
      const ConfigLive = Config.layerFrom({
        retry: { attempts: 0 },
        cache: { enabled: false, coalesce: false },
        providers: { up: { kind: "openai", baseUrl: upstream.url } },
        database: { path: Tollgate.tempDbPath() }
      })
      const Address = Layer.effect(
        BaseUrl,
        Effect.map(HttpServer.HttpServer, (server) =>
          server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}` : "unreachable")
      )
      return Layer.mergeAll(Layer.succeed(Upstream, upstream), Address).pipe(
        Layer.provideMerge(app),
        Layer.provideMerge(Layer.mergeAll(Server, HttpLayerRouter.layer)),
        Layer.provideMerge(Mount.services),
        Layer.provide(ConfigLive)
      )
    })
  )

const post = (baseUrl: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal })
  })

/** Reads until the body contains `marker`; returns the reader (to continue or cancel) and what came. */
const readUntil = (response: Response, marker: string) =>
  Effect.promise(async () => {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes(marker)) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    return { reader, text }
  })

for (const [name, app] of [["HttpRouter (Mount.router)", WithHttpRouter], ["HttpLayerRouter (Mount.routes)", WithHttpLayerRouter]] as const) {
  describe(`tollgate mounted in an app's own ${name} on NodeHttpServer`, () => {
    layer(envWith(app), { excludeTestServices: true })((it) => {
      it.effect("the app's own route answers beside tollgate's", () =>
        Effect.gen(function*() {
          const baseUrl = yield* BaseUrl
          const response = yield* Effect.promise(() => fetch(`${baseUrl}/hello`))
          assert.strictEqual(yield* Effect.promise(() => response.text()), "hello from the app")
        }))

      it.effect("tollgate's GET routes answer too: the model list, and one model by its id", () =>
        Effect.gen(function*() {
          const baseUrl = yield* BaseUrl
          const list = yield* Effect.promise(() => fetch(`${baseUrl}/v1/models`).then((r) => r.json() as Promise<{ data: Array<{ id: string }> }>))
          const id = list.data[0]!.id
          const one = yield* Effect.promise(() => fetch(`${baseUrl}/v1/models/${encodeURIComponent(id)}`))
          assert.strictEqual(one.status, 200)
          assert.strictEqual((yield* Effect.promise(() => one.json() as Promise<{ id: string }>)).id, id)
        }))

      it.effect("a JSON request is answered and leaves its ledger row", () =>
        Effect.gen(function*() {
          const baseUrl = yield* BaseUrl
          const response = yield* Effect.promise(() => post(baseUrl, { model: "gpt-4o-mini", messages: [{ role: "user", content: "json please" }] }))
          assert.strictEqual(response.status, 200)
          const json = yield* Effect.promise(() => response.json() as Promise<{ choices: Array<{ message: { content: string } }> }>)
          assert.strictEqual(json.choices[0]!.message.content, "Echo from upstream: json please")
          const id = response.headers.get("x-tollgate-request-id")!
          const [row] = yield* Tollgate.awaitRequests([id])
          assert.deepInclude(row!, { status: 200, stream: 0, aborted: 0, error_type: null, input_tokens: 1200, output_tokens: 300 })
        }))

      it.effect("a stream is passed on to its [DONE] and leaves its ledger row", () =>
        Effect.gen(function*() {
          const baseUrl = yield* BaseUrl
          const response = yield* Effect.promise(() =>
            post(baseUrl, { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "stream please" }] })
          )
          assert.strictEqual(response.status, 200)
          assert.include(response.headers.get("content-type"), "text/event-stream")
          const text = yield* Effect.promise(() => response.text())
          assert.isTrue(text.trimEnd().endsWith("data: [DONE]"), text)
          const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
          assert.deepInclude(row!, { status: 200, stream: 1, aborted: 0, error_type: null, usage_source: "reported" })
        }))

      it.effect("a client that leaves mid-stream: the upstream call is cut off, and the row says aborted", () =>
        Effect.gen(function*() {
          const baseUrl = yield* BaseUrl
          const upstream = yield* Upstream
          const client = new AbortController()
          const prompt = `leaving early via ${name}`
          const response = yield* Effect.promise(() =>
            post(baseUrl, { model: "slow-stream", stream: true, messages: [{ role: "user", content: prompt }] }, client.signal)
          )
          // The first chunk is through: the stream is under way on both sides.
          yield* readUntil(response, "\n\n")
          client.abort()
          // tollgate hung up on the provider: its socket for this request closed before the answer ended.
          yield* upstream.awaitClosed((received) => received.body.includes(prompt))
          const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
          assert.deepInclude(row!, { stream: 1, aborted: 1, error_type: "client_aborted" })
        }))
    })
  })
}
