/**
 * Today's clients of the Responses API, for real, through tollgate over sockets: the official
 * `openai` SDK (`responses.create`, JSON and stream, function tools, structured output;
 * `embeddings.create`; `completions.create`), the Vercel AI SDK's default OpenAI provider
 * (`generateText`, `streamText`, with a tool) and the real Codex CLI (`codex exec`). Each against an
 * OpenAI-shaped provider that serves the Responses API (passthrough) and against chat-only and
 * Anthropic providers (translated); the ledger is read back for every endpoint.
 */
import { createOpenAI } from "@ai-sdk/openai"
import { assert, describe, layer } from "@effect/vitest"
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import * as AnthropicUpstream from "../support/AnthropicUpstream.js"
import * as OpenAiPlatform from "../support/OpenAiPlatform.js"
import * as Tollgate from "../support/Tollgate.js"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const CODEX = path.join(ROOT, "node_modules", ".bin", "codex")

class Upstreams extends Effect.Tag("test/ResponsesUpstreams")<Upstreams, {
  readonly platform: OpenAiPlatform.OpenAiPlatform
  readonly anthropic: AnthropicUpstream.AnthropicUpstream
}>() {}

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const platform = yield* OpenAiPlatform.make
    const anthropic = yield* AnthropicUpstream.make
    return Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        providers: {
          // The same server twice: once as OpenAI itself (Responses served natively), once as a chat-only API.
          platform: { kind: "openai", baseUrl: platform.url, responsesApi: true },
          chatonly: { kind: "openai", baseUrl: platform.url },
          claude: { kind: "anthropic", baseUrl: anthropic.url, apiKeyEnv: "TOLLGATE_TEST_RESPONSES_ANTHROPIC_KEY" },
          sim: { kind: "mock" }
        },
        routes: [
          { name: "native", match: { model: "pass-*" }, targets: [{ provider: "platform" }] },
          { name: "chat", match: { model: "chat-*" }, targets: [{ provider: "chatonly" }] },
          { name: "claude", match: { model: "claude-*" }, targets: [{ provider: "claude" }] },
          { name: "sim", match: { model: "sim-*" }, targets: [{ provider: "sim" }] }
        ]
      }),
      Layer.succeed(Upstreams, { platform, anthropic })
    )
  })
)
process.env["TOLLGATE_TEST_RESPONSES_ANTHROPIC_KEY"] = "sk-ant-test"

const client = (baseUrl: string) => new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })
const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true
}

/** The request id tollgate gave this answer (`x-tollgate-request-id`). */
const idOf = (headers: Headers) => headers.get("x-tollgate-request-id")!

/** `codex exec "say pong"` with tollgate as its model provider, in a fresh CODEX_HOME. */
const runCodex = (baseUrl: string, model: string, websockets: boolean) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-codex-"))
    const child = execFile(CODEX, [
      "exec",
      "--skip-git-repo-check",
      "-c",
      `model_providers.tollgate={name="tollgate",base_url="${baseUrl}",env_key="TOLLGATE_TEST_CODEX_KEY",wire_api="responses",supports_websockets=${websockets}}`,
      "-c",
      "model_provider=tollgate",
      "-m",
      model,
      "say pong"
    ], { cwd: home, env: { ...process.env, CODEX_HOME: home, TOLLGATE_TEST_CODEX_KEY: "sk-codex" }, timeout: 60_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })))
    // Codex reads a piped stdin as more prompt: give it an empty one.
    child.stdin?.end()
    return Effect.sync(() => child.kill())
  })

describe("the openai SDK's Responses API through tollgate", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("passthrough to a provider that serves Responses: JSON bytes untouched, usage booked as responses", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { platform } = yield* Upstreams
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl).responses.create({ model: "pass-model", input: "hello", store: false }).withResponse()
        )
        assert.strictEqual(data.output_text, "PONG: hello")
        const forwarded = platform.received.at(-1)!
        assert.strictEqual(forwarded.url, "/v1/responses")
        assert.deepStrictEqual(JSON.parse(forwarded.body), { model: "pass-model", input: "hello", store: false })
        const [row] = yield* Tollgate.awaitRequests([idOf(response.headers)])
        assert.deepInclude(row, { endpoint: "/v1/responses", status: 200, input_tokens: 1000, output_tokens: 200, cached_input_tokens: 100, reasoning_tokens: 20, provider: "platform" })
      }))

    it.effect("passthrough stream: the event stream byte for byte, no [DONE], usage from response.completed", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { platform } = yield* Upstreams
        const raw = yield* Effect.promise(() =>
          fetch(`${baseUrl}/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "pass-model", input: "stream it", stream: true }) })
        )
        const bytes = Buffer.from(yield* Effect.promise(() => raw.arrayBuffer()))
        assert.isTrue(bytes.equals(platform.sent.at(-1)!), "the stream reached the client as the provider sent it")
        assert.notInclude(bytes.toString("utf8"), "[DONE]")
        const [row] = yield* Tollgate.awaitRequests([idOf(raw.headers)])
        assert.deepInclude(row, { endpoint: "/v1/responses", stream: 1, status: 200, input_tokens: 1000, output_tokens: 200 })

        const events: Array<string> = []
        const stream = yield* Effect.promise(() => client(baseUrl).responses.create({ model: "pass-model", input: "stream it", stream: true }))
        yield* Effect.promise(async () => {
          for await (const event of stream) events.push(event.type)
        })
        assert.strictEqual(events[0], "response.created")
        assert.strictEqual(events.at(-1), "response.completed")
      }))

    for (const model of ["chat-model", "claude-model"]) {
      it.effect(`translated to ${model === "chat-model" ? "a chat-only provider" : "an Anthropic provider"}: JSON, stream, a function tool round trip, structured output`, () =>
        Effect.gen(function*() {
          const { baseUrl } = yield* Tollgate.TestInfo
          const openai = client(baseUrl)
          const { data, response } = yield* Effect.promise(() =>
            openai.responses.create({ model, instructions: "Be brief.", input: [{ role: "user", content: "ping" }], max_output_tokens: 64 }).withResponse()
          )
          assert.strictEqual(data.object, "response")
          assert.strictEqual(data.status, "completed")
          assert.isAbove(data.output_text.length, 0)
          assert.isAbove(data.usage!.input_tokens, 0)
          const [row] = yield* Tollgate.awaitRequests([idOf(response.headers)])
          assert.deepInclude(row, { endpoint: "/v1/responses", status: 200 })
          assert.isAbove(row!.output_tokens as number, 0)

          // A tool call, then its result sent back.
          const called = yield* Effect.promise(() => openai.responses.create({ model, input: "weather in Paris?", tools: [weather] }))
          const call = called.output.find((item) => item.type === "function_call")
          assert.isDefined(call, JSON.stringify(called.output))
          if (call?.type !== "function_call") return
          assert.strictEqual(call.name, "get_weather")
          assert.isString(JSON.parse(call.arguments).city)
          const answered = yield* Effect.promise(() =>
            openai.responses.create({
              model,
              tools: [weather],
              input: [
                { role: "user", content: "weather in Paris?" },
                { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
                { type: "function_call_output", call_id: call.call_id, output: "sunny" }
              ]
            })
          )
          assert.isAbove(answered.output_text.length, 0)

          // A stream: the SDK assembles the text and sees the strict event order.
          const events: Array<{ type: string; sequence_number: number }> = []
          const stream = yield* Effect.promise(() => openai.responses.create({ model, input: "stream please", stream: true }))
          yield* Effect.promise(async () => {
            for await (const event of stream) events.push(event)
          })
          assert.deepStrictEqual(events.slice(0, 2).map((e) => e.type), ["response.created", "response.in_progress"])
          assert.strictEqual(events.at(-1)!.type, "response.completed")
          assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))

          // Structured output: text.format reaches the provider as its own structured-output request.
          const structured = yield* Effect.promise(() =>
            openai.responses.create({
              model,
              input: "a city",
              text: { format: { type: "json_schema", name: "city", schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"], additionalProperties: false }, strict: true } }
            })
          )
          assert.strictEqual(structured.status, "completed")
        }))
    }

    it.effect("cached like chat: a deterministic Responses request that stores nothing is a hit the second time (objects and streams apart); embeddings always", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const send = (body: Record<string, unknown>, path = "/responses") =>
          Effect.promise(async () => {
            const r = await fetch(`${baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
            return { cache: r.headers.get("x-tollgate-cache"), text: await r.text() }
          })
        const request = { model: "pass-model", input: "cache me", temperature: 0, store: false }
        const first = yield* send(request)
        const again = yield* send(request)
        assert.deepStrictEqual([first.cache, again.cache], ["miss", "hit"])
        assert.strictEqual(again.text, first.text)
        const streamed = yield* send({ ...request, stream: true })
        assert.strictEqual(streamed.cache, "miss", "a stored object does not answer a stream request")
        const streamedAgain = yield* send({ ...request, stream: true })
        assert.strictEqual(streamedAgain.cache, "hit")
        assert.strictEqual(streamedAgain.text, streamed.text)
        // Stored upstream (store defaults to true): never served from tollgate's cache.
        const stored = yield* send({ model: "pass-model", input: "cache me", temperature: 0 })
        assert.strictEqual(stored.cache, "off")
        const embed = { model: "pass-embed", input: "same text" }
        assert.deepStrictEqual([(yield* send(embed, "/embeddings")).cache, (yield* send(embed, "/embeddings")).cache], ["miss", "hit"])
      }))

    it.effect("what a translated target cannot serve is a 400 in the Responses error shape", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const refused = yield* Effect.promise(() =>
          client(baseUrl).responses.create({ model: "chat-model", input: "again", previous_response_id: "resp_123" }).then(() => undefined, (e: unknown) => e)
        )
        assert.instanceOf(refused, OpenAI.BadRequestError)
        assert.include((refused as InstanceType<typeof OpenAI.BadRequestError>).message, "previous_response_id")
        const forced = yield* Effect.promise(() =>
          client(baseUrl).responses.create({ model: "chat-model", input: "search", tools: [{ type: "web_search" }], tool_choice: { type: "web_search" } as never }).then(() => undefined, (e: unknown) => e)
        )
        assert.instanceOf(forced, OpenAI.BadRequestError)
      }))

    it.effect("embeddings: routed, booked with their input tokens, float and base64 through", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl).embeddings.create({ model: "pass-embed", input: ["one", "two"], encoding_format: "float" }).withResponse()
        )
        assert.deepStrictEqual(data.data[1]!.embedding, [0.25, -0.5, 0.125])
        const base64 = yield* Effect.promise(() => client(baseUrl).embeddings.create({ model: "pass-embed", input: "one" }))
        assert.strictEqual(base64.data[0]!.embedding.length, 3, "the SDK asks for base64 and decodes it")
        const [row] = yield* Tollgate.awaitRequests([idOf(response.headers)])
        assert.deepInclude(row, { endpoint: "/v1/embeddings", status: 200, input_tokens: 8, output_tokens: 0 })
      }))

    it.effect("legacy completions pass through to OpenAI-compatible providers; usage booked; a 400 for Anthropic targets", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data, response } = yield* Effect.promise(() => client(baseUrl).completions.create({ model: "chat-complete", prompt: "hello" }).withResponse())
        assert.strictEqual(data.choices[0]!.text, " world")
        const [row] = yield* Tollgate.awaitRequests([idOf(response.headers)])
        assert.deepInclude(row, { endpoint: "/v1/completions", status: 200, input_tokens: 5, output_tokens: 7 })
        const refused = yield* Effect.promise(() => client(baseUrl).completions.create({ model: "claude-x", prompt: "hi" }).then(() => undefined, (e: unknown) => e))
        assert.instanceOf(refused, OpenAI.BadRequestError)
      }))

    it.effect("the Vercel AI SDK's default provider (Responses): generateText and streamText with a tool", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const provider = createOpenAI({ baseURL: baseUrl, apiKey: "sk-client" })
        const getWeather = tool({
          description: "Weather for a city",
          inputSchema: jsonSchema<{ city: string }>({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }),
          execute: async ({ city }) => `sunny in ${city}`
        })
        // The SDK's default (`store: true`) refers back to earlier output items by id: a provider
        // that serves Responses resolves them itself; for a translated one tollgate remembers the
        // items of the answers it translated. `store: false` sends them again instead.
        for (const [model, providerOptions] of [["pass-model", {}], ["chat-model", {}], ["chat-model", { openai: { store: false } }]] as const) {
          const generated = yield* Effect.promise(() =>
            generateText({ model: provider(model), prompt: "weather in Paris?", tools: { get_weather: getWeather }, stopWhen: stepCountIs(3), providerOptions })
          )
          assert.include(generated.text, "PONG: tool said", model)
          assert.strictEqual(generated.steps[0]!.toolCalls[0]!.toolName, "get_weather")
          const streamed = streamText({ model: provider(model), prompt: "weather in Paris?", tools: { get_weather: getWeather }, stopWhen: stepCountIs(3), providerOptions })
          const text = yield* Effect.promise(() => streamed.text)
          assert.include(text, "PONG", model)
        }
      }))

    it.effect("an item reference resolves only to items tollgate translated for the same client; others are a 400", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const called = yield* Effect.promise(() => client(baseUrl).responses.create({ model: "chat-model", input: "weather in Paris?", tools: [weather] }))
        const call = called.output.find((item) => item.type === "function_call")!
        if (call.type !== "function_call") return assert.fail("no function call")
        const input = [
          { role: "user" as const, content: "weather in Paris?" },
          { type: "item_reference" as const, id: call.id! },
          { type: "function_call_output" as const, call_id: call.call_id, output: "sunny" }
        ]
        const same = yield* Effect.promise(() => client(baseUrl).responses.create({ model: "chat-model", tools: [weather], input }))
        assert.include(same.output_text, "PONG: tool said sunny")
        const other = new OpenAI({ baseURL: baseUrl, apiKey: "sk-another-client", maxRetries: 0 })
        const refused = yield* Effect.promise(() => other.responses.create({ model: "chat-model", tools: [weather], input }).then(() => undefined, (e: unknown) => e))
        assert.instanceOf(refused, OpenAI.BadRequestError)
        assert.include((refused as Error).message, "item references")
      }))

    it.effect("the real Codex CLI: codex exec through tollgate prints the model's answer and exits 0, with a ledger row", () =>
      Effect.gen(function*() {
        const { baseUrl, dbPath } = yield* Tollgate.TestInfo
        const codex = (model: string) => runCodex(baseUrl, model, false)
        for (const [model, answer] of [["pass-codex", "PONG: say pong"], ["sim-codex", ""]] as const) {
          const run = yield* codex(model)
          assert.strictEqual(run.code, 0, `${model}: ${run.stderr}`)
          if (answer !== "") assert.include(run.stdout, answer)
          else assert.isAbove(run.stdout.trim().length, 0)
        }
        const rows = yield* Tollgate.awaitRows(1)
        const codexRows = rows.filter((r) => r.endpoint === "/v1/responses" && String(r.user_agent ?? "").startsWith("codex"))
        assert.isAtLeast(codexRows.length, 2, `rows in ${dbPath}`)
        assert.isTrue(codexRows.every((r) => r.status === 200))
      }), { timeout: 180_000 })

    it.effect("Codex with supports_websockets = true: its WebSocket try gets 426, it falls back to POST, exits 0, and the request is booked", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const run = yield* runCodex(baseUrl, "sim-codex-ws", true)
        assert.strictEqual(run.code, 0, run.stderr)
        assert.isAbove(run.stdout.trim().length, 0)
        const rows = yield* Tollgate.awaitRowsWhere((r) => r.requested_model === "sim-codex-ws")
        const mine = rows.filter((r) => r.requested_model === "sim-codex-ws")
        assert.isAtLeast(mine.length, 1)
        assert.isTrue(mine.every((r) => r.endpoint === "/v1/responses" && r.status === 200 && String(r.user_agent).startsWith("codex")))
      }), { timeout: 180_000 })
  })
})
