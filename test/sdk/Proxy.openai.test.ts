/**
 * The official `openai` SDK against tollgate against a real mock upstream on 127.0.0.1: what the
 * client sees, what the upstream receives, what the ledger records, and what it must never hold.
 * Each test finds its own upstream request (by prompt) and its own ledger row (by request id), so
 * that any one of them can run alone, or in any order.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import * as fs from "node:fs"
import OpenAI from "openai"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const UPSTREAM_KEY = "sk-upstream-secret-0a1b2c3d"
const CLIENT_KEY = "sk-client-secret-9z8y7x"
process.env.TOLLGATE_TEST_UPSTREAM_KEY = UPSTREAM_KEY

const PROMPTS = {
  plain: "What is the capital of Burkina Faso, in one word please",
  stream: "Name three moons of Jupiter for the streaming test",
  usage: "Explain include usage in exactly seven words",
  estimate: "Count tokens for me without usage from upstream",
  raw: "Raw bytes must arrive exactly as they were sent",
  secret: "A confidential prompt that no ledger may keep"
}

class Upstream extends Effect.Tag("test/Upstream")<Upstream, MockUpstream.MockUpstream>() {}

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.make, (upstream) =>
    Layer.merge(
      Tollgate.layer({
        // Retries are Resilience.test.ts's subject; here a provider's error must come straight back.
        retry: { attempts: 0 },
        providers: { up: { kind: "openai", baseUrl: upstream.url, apiKeyEnv: "TOLLGATE_TEST_UPSTREAM_KEY" } }
      }),
      Layer.succeed(Upstream, upstream)
    ))
)

const client = (baseURL: string) => new OpenAI({ baseURL, apiKey: CLIENT_KEY, maxRetries: 0 })

/** The upstream request whose body carries `prompt` (each test has its own). */
const receivedWith = (upstream: MockUpstream.MockUpstream, prompt: string) => {
  const found = upstream.received.filter((r) => r.body.includes(prompt))
  assert.strictEqual(found.length, 1, `one upstream request for "${prompt}"`)
  return found[0]!
}

/** The ledger row of the request that got `response`, once it is written. */
const rowOf = (response: { readonly headers: { get: (name: string) => string | null } }) =>
  Effect.map(Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!]), (rows) => rows[0]!)

// gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens.
// USAGE: 1200 input of which 200 cached, 300 output.
const EXPECTED_COST = (1000 * 0.15 + 200 * 0.075 + 300 * 0.6) / 1_000_000

describe("openai SDK through tollgate", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("non-streaming: the answer is the upstream's, the ledger has its tokens and cost", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: PROMPTS.plain }]
          }).withResponse()
        )
        assert.strictEqual(data.choices[0]?.message.content, `Echo from upstream: ${PROMPTS.plain}`)
        assert.deepStrictEqual(data.usage, MockUpstream.USAGE)
        assert.strictEqual(response.headers.get("x-tollgate-provider"), "up")
        assert.strictEqual(response.headers.get("x-tollgate-model"), "gpt-4o-mini")
        assert.match(response.headers.get("x-tollgate-request-id") ?? "", /^req_[0-9a-f]{32}$/)
        assert.strictEqual(Number(response.headers.get("x-tollgate-cost")), Number(EXPECTED_COST.toFixed(8)))
        assert.strictEqual(response.headers.get("x-request-id"), "up-1", "upstream headers pass through")

        // The provider key is added server-side; the client's key never reaches the provider.
        const received = receivedWith(upstream, PROMPTS.plain)
        assert.strictEqual(received.headers.authorization, `Bearer ${UPSTREAM_KEY}`)
        assert.strictEqual(received.url, "/v1/chat/completions")

        const row = yield* rowOf(response)
        assert.deepInclude(row, {
          provider: "up",
          requested_model: "gpt-4o-mini",
          served_model: "gpt-4o-mini-2025-01-01",
          stream: 0,
          status: 200,
          input_tokens: 1200,
          output_tokens: 300,
          cached_input_tokens: 200,
          reasoning_tokens: 50,
          priced: 1,
          usage_source: "reported",
          aborted: 0
        })
        assert.closeTo(row.cost_usd as number, EXPECTED_COST, 1e-12)
        assert.match(row.client_hash as string, /^[0-9a-f]{16}$/)
      }))

    it.effect("streaming without include_usage: tollgate asks for usage and hides the usage chunk", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const before = upstream.sentEvents.length
        const { data: stream, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({
            model: "gpt-4o-mini",
            stream: true,
            messages: [{ role: "user", content: PROMPTS.stream }]
          }).withResponse()
        )
        const chunks: Array<unknown> = []
        yield* Effect.promise(async () => {
          for await (const chunk of stream) chunks.push(chunk)
        })
        const sent = upstream.sentEvents[before]!
        const forwarded = JSON.parse(receivedWith(upstream, PROMPTS.stream).body)
        assert.deepStrictEqual(forwarded.stream_options, { include_usage: true }, "the proxy asked upstream for usage")
        const expected = sent.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e)).filter((c) => c.usage === undefined)
        assert.strictEqual(expected.length, sent.length - 2)
        assert.deepStrictEqual(chunks, expected, "the client sees exactly what upstream sent, minus the usage chunk")
        const text = chunks.map((c) => (c as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? "").join("")
        assert.include(text, PROMPTS.stream)

        assert.deepInclude(yield* rowOf(response), {
          stream: 1,
          status: 200,
          input_tokens: 1200,
          output_tokens: 300,
          usage_source: "reported",
          aborted: 0,
          error_type: null
        })
      }))

    it.effect("streaming with include_usage: the client gets the usage chunk, the bytes go up unchanged", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const before = upstream.sentEvents.length
        const { data: stream, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({
            model: "gpt-4o-mini",
            stream: true,
            stream_options: { include_usage: true },
            messages: [{ role: "user", content: PROMPTS.usage }]
          }).withResponse()
        )
        const chunks: Array<OpenAI.ChatCompletionChunk> = []
        yield* Effect.promise(async () => {
          for await (const chunk of stream) chunks.push(chunk)
        })
        const sent = upstream.sentEvents[before]!.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e))
        assert.deepStrictEqual(chunks, sent)
        assert.deepStrictEqual(chunks[chunks.length - 1]?.usage, MockUpstream.USAGE)
        assert.deepInclude(yield* rowOf(response), { stream: 1, input_tokens: 1200, output_tokens: 300, usage_source: "reported" })
      }))

    it.effect("a stream without usage is estimated with the tokenizer and marked so", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data: stream, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({
            model: "no-usage",
            stream: true,
            messages: [{ role: "user", content: PROMPTS.estimate }]
          }).withResponse()
        )
        yield* Effect.promise(async () => {
          for await (const _ of stream) { /* read to the end */ }
        })
        const row = yield* rowOf(response)
        assert.strictEqual(row.usage_source, "estimated")
        assert.isAbove(row.input_tokens as number, 5)
        assert.isAbove(row.output_tokens as number, 5)
        assert.strictEqual(row.priced, 0, "no-usage is not a priced model")
        assert.strictEqual(row.cost_usd, null, "unpriced is NULL, never $0")
      }))

    it.effect("the client's bytes reach the provider unchanged", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const raw = `{ "messages" : [ {"content":"${PROMPTS.raw}","role":"user"} ],\n  "model":"gpt-4o-mini", "temperature": 0.25 }`
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: raw })
        )
        assert.strictEqual(response.status, 200)
        yield* Effect.promise(() => response.arrayBuffer())
        assert.strictEqual(receivedWith(upstream, PROMPTS.raw).body, raw)
      }))

    it.effect("a provider error goes back unchanged: status, body, Retry-After", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            body: JSON.stringify({ model: "rate-limited", messages: [{ role: "user", content: "hi" }] })
          })
        )
        assert.strictEqual(response.status, 429)
        assert.strictEqual(response.headers.get("retry-after"), "7")
        const body = yield* Effect.promise(() => response.json())
        assert.deepStrictEqual(body, { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } })
        assert.deepInclude(yield* rowOf(response), { status: 429, error_type: "upstream_429", provider: "up" })
      }))

    it.effect("a client that disconnects mid-stream aborts the upstream call; the row says aborted", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const controller = new AbortController()
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            signal: controller.signal,
            body: JSON.stringify({ model: "slow-stream", stream: true, messages: [{ role: "user", content: "go slowly" }] })
          })
        )
        assert.strictEqual(response.status, 200)
        const reader = response.body!.getReader()
        const first = yield* Effect.promise(() => reader.read())
        assert.isFalse(first.done)
        yield* Deferred.await(upstream.streamStarted)
        controller.abort()
        yield* upstream.awaitClosed((r) => r.body.includes("go slowly"))
        assert.deepInclude(yield* rowOf(response), { stream: 1, aborted: 1, error_type: "client_aborted", requested_model: "slow-stream" })
      }))

    it.effect("the ledger file holds none of the prompts, completions or keys", () =>
      Effect.gen(function*() {
        const { baseUrl, dbPath } = yield* Tollgate.TestInfo
        // Its own requests, JSON and a stream, with a prompt and the client's key; whatever the
        // other tests sent before this one is in the scan too.
        const { response: json } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPTS.secret }] }).withResponse()
        )
        const { data: stream, response: streamed } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: PROMPTS.secret }] })
            .withResponse()
        )
        yield* Effect.promise(async () => {
          for await (const _ of stream) { /* read to the end */ }
        })
        yield* Tollgate.awaitRequests([json, streamed].map((r) => r.headers.get("x-tollgate-request-id")!))
        const bytes = Buffer.concat(
          [dbPath, `${dbPath}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f))
        ).toString("latin1")
        assert.isAbove(bytes.length, 0)
        assert.include(bytes, "gpt-4o-mini", "the scan reads real ledger content")
        for (const secret of [...Object.values(PROMPTS), UPSTREAM_KEY, CLIENT_KEY, "Echo from upstream", "go slowly"]) {
          assert.notInclude(bytes, secret)
        }
      }))
  })
})
