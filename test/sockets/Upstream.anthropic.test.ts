/**
 * The `anthropic` adapter against a local mock of Anthropic's API (real sockets on 127.0.0.1):
 * what it forwards (version, beta, server key vs the client's own credentials, the body bytes
 * untouched), how it types failures (429 + Retry-After, 529, 400 with Anthropic's body kept), and
 * the usage read from JSON messages and event streams (cache reads, 5-minute and 1-hour writes).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Layer, Option, Stream } from "effect"
import * as Config from "../../src/Config.js"
import { fromStatus } from "../../src/Domain/Errors.js"
import * as AnthropicSse from "../../src/Sse/Anthropic.js"
import * as Upstream from "../../src/Upstream.js"
import * as MockAnthropic from "../support/MockAnthropic.js"
import * as Bytes from "../../src/Bytes.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The resolved config for `providers`, with `env` as the whole environment. */
const configFor = (providers: Config.FileConfigInput["providers"], env: Record<string, string>) =>
  Effect.flatMap(Config.decode({ providers }, "test"), (file) => Config.resolve(file, undefined)).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

/** An `Upstream` built from that config (the real `make`, so the kind's registration is covered). */
const upstreamFor = (providers: Config.FileConfigInput["providers"], env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const config = yield* configFor(providers, env)
    const upstream = yield* Layer.build(Upstream.layer.pipe(Layer.provide(Layer.succeed(Config.TollgateConfig, config))))
    return { config, send: Upstream.Upstream.pipe(Effect.provide(upstream)) }
  })

const body = (json: object) => encoder.encode(JSON.stringify(json))
const headers = (record: Record<string, string>) => record as unknown as Upstream.UpstreamRequest["clientHeaders"]

const ask = (model: string, extra: object = {}) => ({ model, max_tokens: 100, messages: [{ role: "user", content: "hi" }], ...extra })

describe("anthropic adapter", () => {
  it.scopedLive("sends the body bytes untouched with the server key, the configured version and the client's beta", () =>
    Effect.gen(function*() {
      const mock = yield* MockAnthropic.make
      const { config, send } = yield* upstreamFor({ claude: { kind: "anthropic", baseUrl: mock.url } }, { ANTHROPIC_API_KEY: "sk-ant-server" })
      const upstream = yield* send
      // Odd spacing and key order: any re-serialisation would show.
      const raw = encoder.encode(`{"max_tokens":100,  "model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hé"}]}`)
      const response = yield* upstream.send({
        provider: config.providers[0]!,
        path: "/v1/messages",
        body: raw,
        stream: false,
        clientHeaders: headers({
          "anthropic-beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
          authorization: "Bearer client-token",
          "x-api-key": "client-key",
          "x-tollgate-project": "p",
          "content-type": "application/json"
        })
      })
      assert.strictEqual(response.status, 200)
      const got = mock.received[0]!
      assert.strictEqual(got.url, "/v1/messages")
      assert.isTrue(Buffer.from(raw).equals(got.body))
      assert.strictEqual(got.headers["x-api-key"], "sk-ant-server")
      assert.isUndefined(got.headers["authorization"])
      assert.strictEqual(got.headers["anthropic-version"], "2023-06-01")
      assert.strictEqual(got.headers["anthropic-beta"], "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14")
      assert.isUndefined(got.headers["x-tollgate-project"])
      if (response.body._tag !== "Bytes") return assert.fail("expected bytes")
      const read = AnthropicSse.readMessage(response.body.bytes)
      assert.strictEqual(read.model, "claude-sonnet-4-5")
      assert.deepStrictEqual(read.usage, {
        inputTokens: 120 + 9000 + 3000,
        outputTokens: 55,
        cachedInputTokens: 9000,
        cacheWriteTokens: 3000,
        cacheWrite1hTokens: 2000,
        reasoningTokens: 0,
        source: "reported"
      })
    }))

  it.scopedLive("the client's anthropic-version wins; count_tokens goes to its own path", () =>
    Effect.gen(function*() {
      const mock = yield* MockAnthropic.make
      const { config, send } = yield* upstreamFor({ claude: { kind: "anthropic", baseUrl: mock.url, version: "2024-01-01" } })
      const upstream = yield* send
      const response = yield* upstream.send({
        provider: config.providers[0]!,
        path: "/v1/messages/count_tokens",
        body: body(ask("claude-sonnet-4-5")),
        stream: false,
        clientHeaders: headers({ "anthropic-version": "2023-06-01" })
      })
      assert.strictEqual(mock.received[0]!.url, "/v1/messages/count_tokens")
      assert.strictEqual(mock.received[0]!.headers["anthropic-version"], "2023-06-01")
      // No key configured in this environment: nothing is invented.
      assert.isUndefined(mock.received[0]!.headers["x-api-key"])
      if (response.body._tag !== "Bytes") return assert.fail("expected bytes")
      assert.deepStrictEqual(JSON.parse(decoder.decode(response.body.bytes)), { input_tokens: 42 })

      yield* upstream.send({ provider: config.providers[0]!, path: "/v1/messages", body: body(ask("m")), stream: false, clientHeaders: headers({}) })
      assert.strictEqual(mock.received[1]!.headers["anthropic-version"], "2024-01-01")
    }))

  it.scopedLive("passthroughAuth forwards the client's x-api-key, or its bearer token as it came, never the server key", () =>
    Effect.gen(function*() {
      const mock = yield* MockAnthropic.make
      const { config, send } = yield* upstreamFor(
        { claude: { kind: "anthropic", baseUrl: mock.url, passthroughAuth: true } },
        { ANTHROPIC_API_KEY: "sk-ant-server" }
      )
      const upstream = yield* send
      const request = (clientHeaders: Record<string, string>) =>
        upstream.send({ provider: config.providers[0]!, path: "/v1/messages", body: body(ask("m")), stream: false, clientHeaders: headers(clientHeaders) })
      yield* request({ "x-api-key": "sk-ant-client" })
      yield* request({ authorization: "Bearer sk-ant-oat01-subscription" })
      assert.strictEqual(mock.received[0]!.headers["x-api-key"], "sk-ant-client")
      assert.isUndefined(mock.received[0]!.headers["authorization"])
      assert.strictEqual(mock.received[1]!.headers["authorization"], "Bearer sk-ant-oat01-subscription")
      assert.isUndefined(mock.received[1]!.headers["x-api-key"])
    }))

  it.scopedLive("429 is rate limited with Retry-After, 529 unavailable, 400 rejected with Anthropic's body kept", () =>
    Effect.gen(function*() {
      const mock = yield* MockAnthropic.make
      const { config, send } = yield* upstreamFor({ claude: { kind: "anthropic", baseUrl: mock.url } })
      const upstream = yield* send
      const fail = (model: string) =>
        Effect.flip(upstream.send({ provider: config.providers[0]!, path: "/v1/messages", body: body(ask(model)), stream: false, clientHeaders: headers({}) }))
      const limited = yield* fail("rate-limited")
      if (limited._tag !== "UpstreamRateLimited") return assert.fail(limited._tag)
      assert.strictEqual(limited.retryAfterMs, 7000)
      assert.strictEqual(limited.status, 429)
      const overloaded = yield* fail("overloaded")
      assert.strictEqual(overloaded._tag, "UpstreamUnavailable")
      const rejected = yield* fail("bad")
      if (rejected._tag !== "UpstreamRejected") return assert.fail(rejected._tag)
      assert.strictEqual(decoder.decode(rejected.body), MockAnthropic.errorBody("invalid_request_error", "max_tokens: Field required"))
      assert.strictEqual(rejected.headers["request-id"], "req_mock")
      // The same classification the OpenAI adapter uses.
      assert.strictEqual(fromStatus({ provider: "x", status: 529, headers: {}, body: new Uint8Array(), retryAfterMs: undefined })._tag, "UpstreamUnavailable")
    }))

  it.scopedLive("a stream passes through the tap byte for byte; usage, model and the end are read on the way", () =>
    Effect.gen(function*() {
      const mock = yield* MockAnthropic.make
      const { config, send } = yield* upstreamFor({ claude: { kind: "anthropic", baseUrl: mock.url } })
      const upstream = yield* send
      const response = yield* upstream.send({
        provider: config.providers[0]!,
        path: "/v1/messages",
        body: body(ask("claude-opus-4-1", { stream: true })),
        stream: true,
        clientHeaders: headers({})
      })
      if (response.body._tag !== "Stream") return assert.fail("expected a stream")
      const tap = new AnthropicSse.AnthropicSseTap()
      const out = yield* Bytes.toStream(response.body.source).pipe(Stream.map((chunk) => tap.push(chunk)), Stream.runCollect)
      tap.end()
      const text = Chunk.toReadonlyArray(out).map((b) => decoder.decode(b)).join("")
      assert.strictEqual(text, MockAnthropic.streamEvents("claude-opus-4-1").join(""))
      assert.isTrue(tap.done)
      assert.strictEqual(tap.model, "claude-opus-4-1")
      assert.deepInclude(tap.usage!, { inputTokens: 12120, outputTokens: 55, cachedInputTokens: 9000, cacheWriteTokens: 3000, cacheWrite1hTokens: 2000 })
      assert.strictEqual(tap.completionText(), "Hello from Claude")
    }))
})

describe("anthropic provider config", () => {
  it.effect("a bare `kind: anthropic` gets the public API, ANTHROPIC_API_KEY and version 2023-06-01", () =>
    Effect.gen(function*() {
      const config = yield* configFor({ claude: { kind: "anthropic" } }, { ANTHROPIC_API_KEY: "sk-ant" })
      const provider = config.providers[0]!
      assert.deepInclude(provider.config, {
        kind: "anthropic",
        baseUrl: "https://api.anthropic.com",
        apiKeyEnv: "ANTHROPIC_API_KEY",
        passthroughAuth: false,
        version: "2023-06-01"
      })
      assert.isTrue(Option.isSome(provider.apiKey))
    }))

  it.effect("ANTHROPIC_API_KEY with no provider configured adds an anthropic provider", () =>
    Effect.gen(function*() {
      const config = yield* configFor({}, { ANTHROPIC_API_KEY: "sk-ant" })
      assert.deepStrictEqual(config.providers.map((p) => [p.name, p.config.kind]), [["anthropic", "anthropic"]])
      const withoutKey = yield* configFor({}, {})
      assert.deepStrictEqual(withoutKey.providers.map((p) => p.config.kind), ["mock"])
    }))
})

describe("anthropic SSE tap", () => {
  const events = MockAnthropic.streamEvents("claude-sonnet-4-5").join("")

  it("reads the same whatever the chunking, and forwards every byte as it came", () => {
    const bytes = encoder.encode(events)
    for (const size of [1, 3, 17, bytes.length]) {
      const tap = new AnthropicSse.AnthropicSseTap()
      const out: Array<number> = []
      for (let i = 0; i < bytes.length; i += size) out.push(...tap.push(bytes.slice(i, i + size)))
      out.push(...tap.end())
      assert.deepStrictEqual(Uint8Array.from(out), bytes)
      assert.strictEqual(tap.bytes, bytes.length)
      assert.isTrue(tap.done)
      assert.strictEqual(tap.usage?.outputTokens, 55)
      assert.strictEqual(tap.usage?.inputTokens, 12120)
    }
  })

  it("a message_delta that repeats input fields overrides them; an error event is kept; no message_stop is not done", () => {
    const tap = new AnthropicSse.AnthropicSseTap()
    const sse = (event: string, data: object) => encoder.encode(`event: ${event}\r\ndata: ${JSON.stringify(data)}\r\n\r\n`)
    tap.push(sse("message_start", { type: "message_start", message: { model: "claude-haiku-4-5", usage: { input_tokens: 10, output_tokens: 1 } } }))
    assert.deepInclude(tap.usage!, { inputTokens: 10, outputTokens: 1 })
    tap.push(sse("message_delta", { type: "message_delta", delta: { stop_reason: null }, usage: { input_tokens: 12, cache_read_input_tokens: 100, output_tokens: 9 } }))
    tap.push(sse("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }))
    tap.end()
    assert.deepInclude(tap.usage!, { inputTokens: 112, cachedInputTokens: 100, outputTokens: 9 })
    assert.deepStrictEqual(tap.error, { type: "overloaded_error", message: "Overloaded" })
    assert.isFalse(tap.done)
  })

  it("readMessage: no usage in a body that is not a message", () => {
    assert.deepStrictEqual(AnthropicSse.readMessage(encoder.encode("not json")), { model: undefined, usage: undefined })
  })
})
