/**
 * Routing, cascade and budgets through the real listener with the official `openai` client: what
 * the proxy does must be what `tollgate route explain` says, and the ledger must show it.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"
import * as Yaml from "yaml"
import * as Cli from "../../src/Cli.js"
import type * as Config from "../../src/Config.js"
import type { Price } from "../../src/Config/Schema.js"
import * as Pricing from "../../src/Pricing.js"
import * as SdkStream from "../support/SdkStream.js"
import * as Tollgate from "../support/Tollgate.js"

const config: Config.FileConfigInput = {
  providers: {
    small: { kind: "mock", reply: "I'm not sure, it could be several cities." },
    big: { kind: "mock", reply: "Paris." },
    plain: { kind: "mock" },
    // Ignores max_tokens, as a provider that misbehaves would: the guard must stop it.
    chatty: { kind: "mock", reply: "word ".repeat(400), chunks: 40 }
  },
  // The simulated provider is free unless tollgate.yaml prices its models: these tests count its
  // spend (cascade steps, budgets) at OpenAI's list prices.
  pricing: {
    "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
    "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 }
  },
  models: {
    aliases: { fast: "gpt-4o-mini" },
    overrides: { "gpt-4-turbo": "gpt-4.1-mini" }
  },
  routes: [
    {
      name: "ladder",
      match: { model: "ask-*" },
      cascade: {
        targets: [{ provider: "small", model: "gpt-4o-mini" }, { provider: "big", model: "gpt-4o" }],
        signals: { uncertainty: ["not sure"] }
      }
    },
    { name: "chatty", match: { model: "chatty" }, targets: [{ provider: "chatty", model: "gpt-4o" }] },
    {
      name: "long-output",
      match: { model: "gpt-4o-mini" },
      targets: [{ provider: "plain", model: "gpt-4o-mini" }, { provider: "plain", model: "gpt-4.1-mini" }]
    }
  ],
  budget: {
    enabled: true,
    enforceMidStream: true,
    limits: [
      { window: "perRequest", usd: 0.08 },
      { scope: "project", key: "squeezed", window: "daily", usd: 0.002, onBreach: "downgrade" }
    ]
  }
}

const configFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-routing-")), "tollgate.yaml")
fs.writeFileSync(configFile, Yaml.stringify(config))

const client = (baseURL: string, headers: Record<string, string> = {}) =>
  new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, defaultHeaders: headers })

/** `tollgate route explain --json` for this request, run in-process on the same config file. */
const explain = (request: Record<string, unknown>) =>
  Effect.gen(function*() {
    const file = path.join(path.dirname(configFile), `req-${Math.random().toString(36).slice(2)}.json`)
    fs.writeFileSync(file, JSON.stringify(request))
    const lines: Array<string> = []
    const current = yield* Effect.console
    const capture: Console.Console = {
      ...current,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(xs.map(String).join(" ")))
    }
    yield* Cli.main(["node", "tollgate", "route", "explain", "--file", file, "--config", configFile, "--json"]).pipe(
      Effect.withConsole(capture),
      Effect.provide(NodeContext.layer)
    )
    return JSON.parse(lines.join("\n")) as { route: string | null; targets: Array<string> }
  })

describe("routing through tollgate", () => {
  layer(Tollgate.layer(config), { excludeTestServices: true })((it) => {
    it.effect("an alias resolves, and the proxy serves exactly what route explain says", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const request = { model: "fast", messages: [{ role: "user" as const, content: "hello" }] }
        const { response } = yield* Effect.promise(() => client(baseUrl).chat.completions.create(request).withResponse())
        const explained = yield* explain(request)
        assert.strictEqual(response.headers.get("x-tollgate-route"), explained.route)
        assert.strictEqual(response.headers.get("x-tollgate-route"), "long-output")
        assert.strictEqual(`${response.headers.get("x-tollgate-provider")}/${response.headers.get("x-tollgate-model")}`, explained.targets[0])
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { requested_model: "fast", served_model: "gpt-4o-mini", route: "long-output" })
      }))

    it.effect("GET /v1/models lists the aliases clients may ask for, and the ladder's models", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const models = yield* Effect.promise(() => client(baseUrl).models.list())
        const ids = models.data.map((m) => m.id)
        assert.includeMembers(ids, ["fast", "tollgate:auto", "tollgate:cheap", "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"])
      }))

    it.effect("an override rewrites silently; the ledger keeps the requested model", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "gpt-4-turbo", messages: [{ role: "user", content: "hi" }] }).withResponse()
        )
        assert.strictEqual(data.model, "gpt-4.1-mini")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { requested_model: "gpt-4-turbo", served_model: "gpt-4.1-mini" })
      }))

    it.effect("a target that cannot give max_tokens is skipped with its reason; the next one serves", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // gpt-4o-mini can write at most 16,384 tokens; gpt-4.1-mini 32,768.
        const request = { model: "gpt-4o-mini", max_tokens: 30_000, messages: [{ role: "user" as const, content: "a long story" }] }
        const { response } = yield* Effect.promise(() => client(baseUrl).chat.completions.create(request).withResponse())
        assert.strictEqual(response.headers.get("x-tollgate-model"), "gpt-4.1-mini")
        const explained = yield* explain(request)
        assert.strictEqual(explained.targets[0], "plain/gpt-4.1-mini")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.include(String(row!.skipped), "plain/gpt-4o-mini:max_output")
      }))

    it.effect("cascade: the small model hedges, the big one answers; both are paid for, the client gets the second", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data, response } = yield* Effect.promise(() =>
          // max_tokens: the worst case of both steps (reserved up front) must fit the $0.08 per-request limit.
          client(baseUrl).chat.completions.create({ model: "ask-capital", max_tokens: 2_000, messages: [{ role: "user", content: "Capital of France?" }] })
            .withResponse()
        )
        assert.strictEqual(data.choices[0]?.message.content, "Paris.")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { served_model: "gpt-4o", attempts: 2, route: "ladder" })
        const [model, signal, usd] = String(row!.cascade).split(":")
        assert.strictEqual(model, "gpt-4o-mini")
        assert.strictEqual(signal, "uncertainty")
        const pricing = Pricing.make(config.pricing as Record<string, Price>)
        const last = pricing.costOf("gpt-4o", {
          inputTokens: row!.input_tokens as number,
          outputTokens: row!.output_tokens as number,
          cachedInputTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
          source: "reported"
        })!
        assert.isAbove(Number(usd), 0)
        assert.closeTo(row!.cost_usd as number, Number(usd) + last, 1e-9, "the row's cost is both steps")
      }))

    it.effect("a streamed request on a cascade rule is served by its first step, as a stream", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const stream = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({ model: "ask-capital", stream: true, max_tokens: 2_000, messages: [{ role: "user", content: "Capital?" }] })
        )
        let text = ""
        yield* Effect.promise(async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
        })
        assert.include(text, "not sure")
      }))

    it.effect("budget: a cascade is reserved at the sum of its steps: one that could pass the per-request limit is refused up front", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // With no max_tokens each step may write its model's whole max output: gpt-4o-mini's costs
        // under $0.01, gpt-4o's $0.16, so the ladder may cost more than $0.08 even though its first step would not.
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "ask-capital", messages: [{ role: "user", content: "Capital of France?" }] })
          })
        )
        assert.strictEqual(response.status, 429)
        const body = (yield* Effect.promise(() => response.json())) as { error: { type: string; message: string } }
        assert.strictEqual(body.error.type, "budget_exceeded")
      }))

    it.effect("budget: a request whose worst case passes the per-request limit is refused with 429 budget_exceeded", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // gpt-4o output is $10/1M: 10,000 tokens of worst case is $0.10 > $0.08.
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o", max_tokens: 10_000, messages: [{ role: "user", content: "hi" }] })
          })
        )
        assert.strictEqual(response.status, 429)
        const body = (yield* Effect.promise(() => response.json())) as { error: { type: string; message: string } }
        assert.strictEqual(body.error.type, "budget_exceeded")
        assert.include(body.error.message, "0.08")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { status: 429, error_type: "budget_exceeded", attempts: 0 })
      }))

    it.effect("budget: a stream that runs past its reservation is ended with an error event, and the row says so", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { data: stream, response } = yield* Effect.promise(() =>
          client(baseUrl).chat.completions.create({
            model: "chatty",
            stream: true,
            max_tokens: 5,
            messages: [{ role: "user", content: "talk" }]
          }).withResponse()
        )
        const { failure, text } = yield* SdkStream.readToEnd(stream)
        assert.include(String((failure as Error | undefined)?.message), "budget reservation")
        assert.isBelow(text.length, "word ".repeat(400).length, "the stream was cut short")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { error_type: "budget_exceeded_mid_stream", stream: 1 })
      }))

    it.effect("budget: the guard also ends a stream translated for an Anthropic client", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const anthropic = new Anthropic({ baseURL: baseUrl.replace(/\/v1$/, ""), apiKey: "sk-test", maxRetries: 0 })
        const stream = anthropic.messages.stream({ model: "chatty", max_tokens: 5, messages: [{ role: "user", content: "talk" }] })
        const failure = yield* Effect.promise(() => stream.finalMessage().then(() => undefined, (e: unknown) => e as Error))
        assert.include(String(failure?.message), "budget reservation")
        const id = (yield* Effect.promise(() => stream.withResponse())).response.headers.get("x-tollgate-request-id")!
        const [row] = yield* Tollgate.awaitRequests([id])
        assert.deepInclude(row, { error_type: "budget_exceeded_mid_stream", endpoint: "/v1/messages", stream: 1 })
      }))

    it.effect("budget: a project over its daily limit is downgraded to a cheaper model, and told so", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // Worst case on gpt-4o: 1,000 output tokens = $0.01 > $0.002 for project "squeezed".
        const { data, response } = yield* Effect.promise(() =>
          client(baseUrl, { "x-tollgate-project": "squeezed" }).chat.completions.create({
            model: "gpt-4o",
            max_tokens: 1000,
            messages: [{ role: "user", content: "hi" }]
          }).withResponse()
        )
        assert.strictEqual(data.model, "gpt-4o-mini")
        assert.include(response.headers.get("x-tollgate-downgraded") ?? "", "gpt-4o -> gpt-4o-mini")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { requested_model: "gpt-4o", served_model: "gpt-4o-mini", downgraded_from: "gpt-4o", project: "squeezed" })
      }))
  })
})
