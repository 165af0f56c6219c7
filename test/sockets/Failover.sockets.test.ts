/**
 * Failover with real sockets on 127.0.0.1: a provider that resets, one that never sends its
 * first byte, and a stream that stalls, or whose connection dies, after its first chunk.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import * as MockUpstream from "../support/MockUpstream.js"
import * as SdkStream from "../support/SdkStream.js"
import * as Tollgate from "../support/Tollgate.js"

class Backup extends Effect.Tag("test/Backup")<Backup, MockUpstream.MockUpstream>() {}

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const flaky = yield* MockUpstream.makeWith({ faulty: true })
    const backup = yield* MockUpstream.makeWith({ faulty: false })
    return Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        providers: {
          flaky: { kind: "openai", baseUrl: flaky.url, timeouts: { firstByte: "300ms", idle: "300ms" } },
          backup: { kind: "openai", baseUrl: backup.url }
        },
        routes: [{ name: "chat", targets: [{ provider: "flaky" }, { provider: "backup" }] }]
      }),
      Layer.succeed(Backup, backup)
    )
  })
)

const client = (baseURL: string) => new OpenAI({ baseURL, apiKey: "k", maxRetries: 0 })

/** The ledger row of the request that got `response` (each test finds its own, by request id). */
const rowOf = (response: Response) =>
  Effect.map(Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!]), (rows) => rows[0]!)

/** Requests the backup received with `prompt` in their body (each test has its own). */
const receivedWith = (backup: MockUpstream.MockUpstream, prompt: string) => backup.received.filter((r) => r.body.includes(prompt)).length

/**
 * Streams `model` with the SDK, which must see its first chunk and then an error event; returns
 * the response (for its request id).
 */
const brokenAfterFirstChunk = (baseUrl: string, model: string, prompt: string) =>
  Effect.gen(function*() {
    const { data: stream, response } = yield* Effect.promise(() =>
      client(baseUrl).chat.completions.create({ model, stream: true, messages: [{ role: "user", content: prompt }] }).withResponse()
    )
    const { chunks, failure } = yield* SdkStream.readToEnd(stream)
    assert.isAbove(chunks.length, 0, "the first chunk reached the client")
    assert.instanceOf(failure, OpenAI.APIError)
    assert.include(String((failure as Error).message), "stream failed")
    return response
  })

describe("failover over real sockets", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a provider that resets the connection: the backup answers", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const backup = yield* Backup
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "reset", messages: [{ role: "user", content: "hello after a reset" }] }).withResponse()
        )
        assert.strictEqual(data.choices[0]?.message.content, "Echo from upstream: hello after a reset")
        assert.strictEqual(response.headers.get("x-tollgate-failover"), "backup/reset")
        assert.strictEqual(response.headers.get("x-tollgate-attempts"), "2")
        assert.strictEqual(receivedWith(backup, "hello after a reset"), 1)
        const row = yield* rowOf(response)
        assert.deepInclude(row, { provider: "backup", failover: 1, attempts: 2, status: 200 })
        assert.match(row.attempt_errors as string, /^flaky\/reset:upstream_unreachable$/)
      }))

    it.effect("a provider that never sends its first byte times out, then the backup answers", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data: stream, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "hang", stream: true, messages: [{ role: "user", content: "wait" }] }).withResponse()
        )
        let text = ""
        yield* Effect.promise(async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
        })
        assert.include(text, "Echo from upstream: wait")
        assert.deepInclude(yield* rowOf(response), {
          provider: "backup",
          failover: 1,
          attempt_errors: "flaky/hang:upstream_timeout_firstByte",
          stream: 1,
          error_type: null
        })
      }))

    it.effect("a stream that stalls after its first chunk ends with an error event: no failover, the row says so", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const backup = yield* Backup
        const response = yield* brokenAfterFirstChunk(baseUrl, "stall", "stall after one")
        assert.strictEqual(receivedWith(backup, "stall after one"), 0, "no failover once bytes went out")
        assert.deepInclude(yield* rowOf(response), { provider: "flaky", failover: 0, stream: 1, status: 200, error_type: "stream_upstream_timeout_idle" })
      }))

    it.effect("a stream whose connection dies after its first chunk ends with an error event; the row says unreachable", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const response = yield* brokenAfterFirstChunk(baseUrl, "cut-stream", "cut after one")
        assert.deepInclude(yield* rowOf(response), { provider: "flaky", failover: 0, stream: 1, status: 200, error_type: "stream_upstream_unreachable" })
      }))
  })
})

const LonelyEnv = Layer.unwrapScoped(
  Effect.map(MockUpstream.makeWith({ faulty: true }), (flaky) =>
    Tollgate.layer({
      retry: { attempts: 0 },
      circuit: { failureThreshold: 1, cooldown: "1h" },
      providers: { flaky: { kind: "openai", baseUrl: flaky.url } },
      routes: [{ name: "only", targets: [{ provider: "flaky", model: "reset" }] }]
    }))
)

describe("readiness follows the breakers", () => {
  layer(LonelyEnv, { excludeTestServices: true })((it) => {
    it.effect("/readyz lists breaker states and answers 503 once every route target is open", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const root = baseUrl.replace(/\/v1$/, "")
        const before = yield* Effect.promise(() => fetch(`${root}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as any })))
        assert.strictEqual(before.status, 200)
        assert.deepInclude(before.body.targets[0], { target: "flaky/reset", state: "closed" })

        const failed = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "anything", messages: [{ role: "user", content: "x" }] }) })
        )
        assert.strictEqual(failed.status, 502)
        const skipped = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "anything", messages: [{ role: "user", content: "x" }] }) })
        )
        assert.strictEqual(skipped.status, 503)
        assert.isAbove(Number(skipped.headers.get("retry-after")), 3500)

        const after = yield* Effect.promise(() => fetch(`${root}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as any })))
        assert.strictEqual(after.status, 503)
        assert.strictEqual(after.body.status, "unavailable")
        assert.deepInclude(after.body.targets[0], { target: "flaky/reset", state: "open" })
      }))
  })
})
