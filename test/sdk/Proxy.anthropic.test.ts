/**
 * Anthropic both ways, end to end over real sockets: the official `@anthropic-ai/sdk` and `openai`
 * clients against tollgate, against a mock Anthropic server and a mock OpenAI-compatible server.
 * - `/v1/messages` to an Anthropic provider: bytes through untouched, both ways; headers kept.
 * - OpenAI client -> Anthropic provider, and Anthropic client -> OpenAI provider: translated,
 *   JSON and streams, tool calls included; the SDKs parse what they get.
 * - The ledger's usage counts cache reads and writes once (Anthropic's input excludes them).
 */
import Anthropic from "@anthropic-ai/sdk"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import * as Tokens from "../../src/Tokens.js"
import * as AnthropicUpstream from "../support/AnthropicUpstream.js"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const SERVER_KEY = "sk-ant-server-secret-123"
process.env.TOLLGATE_TEST_ANTHROPIC_KEY = SERVER_KEY

class Upstreams extends Effect.Tag("test/Upstreams")<Upstreams, {
  readonly anthropic: AnthropicUpstream.AnthropicUpstream
  readonly openai: MockUpstream.MockUpstream
}>() {}

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const anthropic = yield* AnthropicUpstream.make
    const openai = yield* MockUpstream.makeWith({ faulty: false })
    return Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        providers: {
          claude: { kind: "anthropic", baseUrl: anthropic.url, apiKeyEnv: "TOLLGATE_TEST_ANTHROPIC_KEY" },
          up: { kind: "openai", baseUrl: openai.url }
        },
        routes: [
          { name: "claude", match: { model: "claude-*" }, targets: [{ provider: "claude" }] },
          { name: "gpt", match: { model: "gpt-*" }, targets: [{ provider: "up" }] }
        ]
      }),
      Layer.succeed(Upstreams, { anthropic, openai })
    )
  })
)

const root = (baseUrl: string) => baseUrl.replace(/\/v1$/, "")
const anthropicClient = (baseUrl: string) => new Anthropic({ baseURL: root(baseUrl), apiKey: "sk-ant-client", maxRetries: 0 })
const openAiClient = (baseUrl: string) => new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })

const weatherTool = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] }
}

describe("Anthropic through tollgate", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("/v1/messages to an Anthropic provider is byte-identical both ways; keys and headers as they should be", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic } = yield* Upstreams
        // Odd spacing and key order: any re-serialisation would show.
        const body = `{ "max_tokens":64,  "model":"claude-sonnet-4-5","messages":[{"role":"user","content":"héllo ☃"}] }`
        const response = yield* Effect.promise(() =>
          fetch(`${root(baseUrl)}/v1/messages`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-api-key": "sk-ant-client",
              "anthropic-version": "2023-06-01",
              "anthropic-beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
            },
            body
          })
        )
        const bytes = Buffer.from(yield* Effect.promise(() => response.arrayBuffer()))
        const received = anthropic.received[anthropic.received.length - 1]!
        assert.strictEqual(received.url, "/v1/messages")
        assert.strictEqual(received.body.toString("utf8"), body, "request bytes untouched")
        assert.isTrue(bytes.equals(anthropic.sent[anthropic.sent.length - 1]!), "response bytes untouched")
        assert.strictEqual(received.headers["x-api-key"], SERVER_KEY, "the server-side key replaces the client's")
        assert.strictEqual(received.headers["anthropic-version"], "2023-06-01")
        assert.strictEqual(received.headers["anthropic-beta"], "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14")
        assert.strictEqual(response.headers.get("x-tollgate-provider"), "claude")

        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        // Anthropic's input_tokens (100) excludes cache reads (2000) and writes (300): counted once here.
        assert.deepInclude(row, {
          endpoint: "/v1/messages",
          provider: "claude",
          served_model: "claude-sonnet-4-5",
          input_tokens: 2400,
          cached_input_tokens: 2000,
          cache_write_tokens: 300,
          output_tokens: 50,
          usage_source: "reported",
          priced: 1
        })
      }))

    it.effect("a /v1/messages stream from an Anthropic provider reaches the client byte-identical; the SDK parses it; usage in the ledger", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic } = yield* Upstreams
        const prompt = "stream me the odd bytes"
        const body = `{"stream":true, "model":"claude-odd-stream","max_tokens":64,"messages":[{"role":"user","content":"${prompt}"}]}`
        const response = yield* Effect.promise(() =>
          fetch(`${root(baseUrl)}/v1/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01" },
            body
          })
        )
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
        const bytes = Buffer.from(yield* Effect.promise(() => response.arrayBuffer()))
        const index = anthropic.received.findIndex((r) => r.body.toString("utf8") === body)
        assert.isAtLeast(index, 0, "the request bytes reached the provider untouched")
        const sent = anthropic.sent[index]!
        assert.include(sent.toString("utf8"), "data:{", "the provider sent its odd bytes")
        assert.isTrue(bytes.equals(sent), `stream bytes untouched:\n${bytes.toString("utf8")}\n---\n${sent.toString("utf8")}`)
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { endpoint: "/v1/messages", stream: 1, status: 200, input_tokens: 2400, output_tokens: 50, error_type: null })

        // The same bytes, parsed by the official client.
        const final = yield* Effect.promise(() =>
          anthropicClient(baseUrl).messages.stream({ model: "claude-odd-stream", max_tokens: 64, messages: [{ role: "user", content: prompt }] })
            .finalMessage()
        )
        assert.deepStrictEqual(final.content.map((b) => (b.type === "text" ? b.text : b.type)), ["héllo ☃ wörld"])
        assert.strictEqual(final.stop_reason, "end_turn")
      }))

    it.effect("the Anthropic SDK streams through: tool input assembled, usage in the ledger", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const stream = anthropicClient(baseUrl).messages.stream({
          model: "claude-sonnet-4-5",
          max_tokens: 128,
          tools: [weatherTool],
          messages: [{ role: "user", content: "Weather in Ouagadougou?" }]
        })
        const final = yield* Effect.promise(() => stream.finalMessage())
        const tool = final.content.find((b) => b.type === "tool_use")
        assert.deepStrictEqual(tool?.type === "tool_use" ? tool.input : undefined, { city: "Ouagadougou" })
        assert.strictEqual(final.stop_reason, "tool_use")
        const id = (yield* Effect.promise(() => stream.withResponse())).response.headers.get("x-tollgate-request-id")!
        const [row] = yield* Tollgate.awaitRequests([id])
        assert.deepInclude(row, { stream: 1, status: 200, input_tokens: 2400, output_tokens: 50, error_type: null })
      }))

    it.effect("an OpenAI client asking for claude gets an OpenAI answer translated from Anthropic, tool calls included", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic } = yield* Upstreams
        const completion = yield* Effect.promise(() =>
          openAiClient(baseUrl).chat.completions.create({
            model: "claude-sonnet-4-5",
            messages: [{ role: "system", content: "Be brief" }, { role: "user", content: "Weather in Ouagadougou?" }],
            tools: [{ type: "function", function: { name: "get_weather", parameters: weatherTool.input_schema } }]
          })
        )
        const sent = JSON.parse(anthropic.received[anthropic.received.length - 1]!.body.toString("utf8"))
        assert.strictEqual(sent.system, "Be brief")
        assert.strictEqual(sent.tools[0].name, "get_weather")
        const choice = completion.choices[0]!
        assert.strictEqual(choice.finish_reason, "tool_calls")
        assert.strictEqual(choice.message.content, "Let me look that up.")
        const call = choice.message.tool_calls?.[0]
        assert.strictEqual(call?.type === "function" ? call.function.name : undefined, "get_weather")
        assert.deepStrictEqual(JSON.parse(call?.type === "function" ? call.function.arguments : "null"), { city: "Ouagadougou" })
        assert.strictEqual(completion.usage?.prompt_tokens, 2400)
        assert.strictEqual(completion.usage?.prompt_tokens_details?.cached_tokens, 2000)

        const stream = yield* Effect.promise(() =>
          openAiClient(baseUrl).chat.completions.create({
            model: "claude-sonnet-4-5",
            stream: true,
            stream_options: { include_usage: true },
            messages: [{ role: "user", content: "Weather in Ouagadougou?" }]
          })
        )
        let text = ""
        let args = ""
        let finish: string | null = null
        let usage: OpenAI.CompletionUsage | null | undefined
        yield* Effect.promise(async () => {
          for await (const chunk of stream) {
            const choice = chunk.choices[0]
            text += choice?.delta.content ?? ""
            args += choice?.delta.tool_calls?.[0]?.function?.arguments ?? ""
            finish = choice?.finish_reason ?? finish
            usage = chunk.usage ?? usage
          }
        })
        assert.strictEqual(text, "Let me look that up.")
        assert.deepStrictEqual(JSON.parse(args), { city: "Ouagadougou" })
        assert.strictEqual(finish, "tool_calls")
        assert.strictEqual(usage?.prompt_tokens, 2400)
      }))

    it.effect("an Anthropic client asking for a GPT model gets an Anthropic message translated from OpenAI", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { openai } = yield* Upstreams
        const message = yield* Effect.promise(() =>
          anthropicClient(baseUrl).messages.create({
            model: "gpt-4o-mini",
            max_tokens: 100,
            system: "Be brief",
            messages: [{ role: "user", content: "Say hi" }]
          })
        )
        const sent = JSON.parse(openai.received[openai.received.length - 1]!.body)
        assert.deepStrictEqual(sent.messages[0], { role: "system", content: "Be brief" })
        assert.strictEqual(message.type, "message")
        assert.strictEqual(message.content[0]?.type === "text" ? message.content[0].text : undefined, "Echo from upstream: Say hi")
        assert.strictEqual(message.stop_reason, "end_turn")
        // OpenAI's 1200 prompt tokens include 200 cached; Anthropic's input_tokens excludes them.
        assert.strictEqual(message.usage.input_tokens, 1000)
        assert.strictEqual(message.usage.cache_read_input_tokens, 200)

        const final = yield* Effect.promise(() =>
          anthropicClient(baseUrl).messages.stream({
            model: "gpt-4o-mini",
            max_tokens: 100,
            messages: [{ role: "user", content: "Stream hi" }]
          }).finalMessage()
        )
        // (The mock streams word by word, each followed by a space.)
        assert.strictEqual(final.content[0]?.type === "text" ? final.content[0].text.trim() : undefined, "Echo from upstream: Stream hi")
        assert.strictEqual(final.usage.output_tokens, 300)
      }))

    it.effect("errors on /v1/messages have Anthropic's shape; a provider's error passes through or is translated", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const invalid = yield* Effect.promise(() =>
          fetch(`${root(baseUrl)}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"messages":[]}` })
        )
        assert.strictEqual(invalid.status, 400)
        const body = (yield* Effect.promise(() => invalid.json())) as { type: string; error: { type: string; message: string } }
        assert.strictEqual(body.type, "error")
        assert.strictEqual(body.error.type, "invalid_request_error")
        assert.include(body.error.message, "model")

        const viaSdk = yield* Effect.promise(() =>
          anthropicClient(baseUrl).messages.create({ model: "claude-overloaded", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
            .then(() => undefined, (e: unknown) => e)
        )
        assert.instanceOf(viaSdk, Anthropic.BadRequestError)
        assert.include((viaSdk as Error).message, "prompt is too long")

        const viaOpenAi = yield* Effect.promise(() =>
          openAiClient(baseUrl).chat.completions.create({ model: "claude-overloaded", messages: [{ role: "user", content: "x" }] })
            .then(() => undefined, (e: unknown) => e)
        )
        assert.instanceOf(viaOpenAi, OpenAI.BadRequestError)
        assert.include((viaOpenAi as Error).message, "prompt is too long")

        const unsupported = yield* Effect.promise(() =>
          openAiClient(baseUrl).chat.completions.create({ model: "claude-sonnet-4-5", n: 3, messages: [{ role: "user", content: "x" }] })
            .then(() => undefined, (e: unknown) => e)
        )
        assert.instanceOf(unsupported, OpenAI.BadRequestError, "a feature Anthropic lacks is a clear 400, not a silent drop")
      }))

    it.effect("count_tokens: the provider's count for Anthropic targets, an estimate otherwise", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const client = anthropicClient(baseUrl)
        const counted = yield* Effect.promise(() =>
          client.messages.countTokens({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hello" }] })
        )
        assert.strictEqual(counted.input_tokens, 4242)
        // The estimate is the tokenizer's count of every text (system included), plus a few framing
        // tokens per message: long enough texts that a count of only part of them shows.
        const system = "You are a careful assistant who answers in French. ".repeat(20)
        const turns = [
          "Tell me about the history of the bicycle, from the draisine to carbon frames. ".repeat(15),
          "The draisine came first, in 1817; pedals came in the 1860s. ".repeat(10),
          "And what about gears? Describe derailleurs and hub gears in detail. ".repeat(12)
        ]
        const messages = turns.map((content, i) => ({ role: i % 2 === 0 ? "user" as const : "assistant" as const, content }))
        const estimated = yield* Effect.promise(() => client.messages.countTokens({ model: "gpt-4o-mini", system, messages }))
        const textTokens = [system, ...turns].reduce((sum, text) => sum + Tokens.count(text), 0)
        const FRAMING_AT_MOST = 3 + 4 * messages.length
        assert.isAtLeast(estimated.input_tokens, textTokens)
        assert.isAtMost(estimated.input_tokens, textTokens + FRAMING_AT_MOST)
      }))

    it.effect("Claude Code details: count_tokens under ?beta=true, X-Claude-Code-Session-Id as the session, thinking blocks and unknown parameters through untouched", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic } = yield* Upstreams
        // The SDK's beta client is what Claude Code calls: `/v1/messages/count_tokens?beta=true`.
        const counted = yield* Effect.promise(() =>
          anthropicClient(baseUrl).beta.messages.countTokens({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hello" }] })
        )
        assert.strictEqual(counted.input_tokens, 4242)

        // A turn replaying a thinking block with its signature, and a parameter tollgate does not know.
        const body = JSON.stringify({
          model: "claude-session-check",
          max_tokens: 64,
          context_management: { edits: [{ type: "clear_tool_uses_20250919" }] },
          thinking: { type: "enabled", budget_tokens: 1024 },
          messages: [
            { role: "user", content: "first" },
            { role: "assistant", content: [{ type: "thinking", thinking: "hmm…", signature: "EqQBCkYIAxgCIkD+/sig==" }, { type: "text", text: "ok" }] },
            { role: "user", content: "second" }
          ]
        })
        const send = (headers: Record<string, string>) =>
          Effect.promise(() =>
            fetch(`${root(baseUrl)}/v1/messages`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01", ...headers },
              body
            })
          )
        const claudeCode = yield* send({ "x-claude-code-session-id": "cc-session-1" })
        const explicit = yield* send({ "x-claude-code-session-id": "cc-session-2", "x-tollgate-session": "mine" })
        assert.strictEqual(claudeCode.status, 200)
        assert.isTrue(anthropic.received.some((r) => r.body.toString("utf8") === body), "the body reached the provider byte for byte")
        const rows = yield* Tollgate.awaitRequests([claudeCode.headers.get("x-tollgate-request-id")!, explicit.headers.get("x-tollgate-request-id")!])
        assert.deepStrictEqual(rows.map((r) => r.session), ["cc-session-1", "mine"])
      }))
  })
})
