/**
 * Per-model credentials (`modelKeys`) over sockets: an opus model's request reaches a fake
 * Anthropic server with the OAuth token as `Authorization: Bearer` and no `x-api-key`; another
 * model with the provider's `x-api-key`; an OpenAI provider's model key sent as it says; a model
 * whose key variable is not set is refused with 503 naming the variable. The keys never reach
 * the ledger or the log.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"
import * as AnthropicUpstream from "../support/AnthropicUpstream.js"
import * as OpenAiPlatform from "../support/OpenAiPlatform.js"
import * as Tollgate from "../support/Tollgate.js"

const KEYS = {
  TOLLGATE_TEST_MK_ANTHROPIC: "sk-ant-provider-key-1",
  TOLLGATE_TEST_MK_OAUTH: "sk-ant-oat01-oauth-token-2",
  TOLLGATE_TEST_MK_OPENAI: "sk-openai-provider-key-3",
  TOLLGATE_TEST_MK_O3: "sk-openai-o3-key-4"
}
Object.assign(process.env, KEYS)
delete process.env["TOLLGATE_TEST_MK_UNSET"]

const logs: Array<string> = []
const collectLogs = Layer.merge(
  Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${JSON.stringify(message)}`))),
  Logger.minimumLogLevel(LogLevel.All)
)

class Upstreams extends Effect.Tag("test/ModelKeysUpstreams")<Upstreams, {
  readonly anthropic: AnthropicUpstream.AnthropicUpstream
  readonly platform: OpenAiPlatform.OpenAiPlatform
}>() {}

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const anthropic = yield* AnthropicUpstream.make
    const platform = yield* OpenAiPlatform.make
    return Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        providers: {
          claude: {
            kind: "anthropic",
            baseUrl: anthropic.url,
            apiKeyEnv: "TOLLGATE_TEST_MK_ANTHROPIC",
            modelKeys: [
              { models: ["*opus*"], apiKeyEnv: "TOLLGATE_TEST_MK_OAUTH", as: "bearer" },
              { models: ["claude-unset-*"], apiKeyEnv: "TOLLGATE_TEST_MK_UNSET" }
            ]
          },
          openai: {
            kind: "openai",
            baseUrl: platform.url,
            apiKeyEnv: "TOLLGATE_TEST_MK_OPENAI",
            modelKeys: [{ models: ["o3-*"], apiKeyEnv: "TOLLGATE_TEST_MK_O3", as: "x-api-key" }]
          }
        },
        routes: [
          { name: "claude", match: { model: "claude-*" }, targets: [{ provider: "claude" }] },
          { name: "openai", match: { model: "*" }, targets: [{ provider: "openai" }] }
        ]
      }).pipe(Layer.provide(collectLogs)),
      Layer.succeed(Upstreams, { anthropic, platform })
    )
  })
)

describe("modelKeys over sockets", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("opus goes with the OAuth token as a bearer token, other models with x-api-key; OpenAI's model key as configured; keys never in the ledger or the log", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic, platform } = yield* Upstreams
        const claude = new Anthropic({ baseURL: baseUrl.replace(/\/v1$/, ""), apiKey: "sk-client-anthropic", maxRetries: 0 })
        const openai = new OpenAI({ baseURL: baseUrl, apiKey: "sk-client-openai", maxRetries: 0 })
        const ids: Array<string> = []

        const opus = yield* Effect.promise(() => claude.messages.create({ model: "claude-opus-4-1", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).withResponse())
        ids.push(opus.response.headers.get("x-tollgate-request-id")!)
        let sent = anthropic.received.at(-1)!.headers
        assert.strictEqual(sent["authorization"], `Bearer ${KEYS.TOLLGATE_TEST_MK_OAUTH}`)
        assert.isUndefined(sent["x-api-key"])

        const sonnet = yield* Effect.promise(() => claude.messages.create({ model: "claude-custom-model", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).withResponse())
        ids.push(sonnet.response.headers.get("x-tollgate-request-id")!)
        sent = anthropic.received.at(-1)!.headers
        assert.strictEqual(sent["x-api-key"], KEYS.TOLLGATE_TEST_MK_ANTHROPIC)
        assert.isUndefined(sent["authorization"])

        // An OpenAI client asking for opus: translated, and still the opus key.
        const translated = yield* Effect.promise(() => openai.chat.completions.create({ model: "claude-opus-4-1", messages: [{ role: "user", content: "hi" }] }).withResponse())
        ids.push(translated.response.headers.get("x-tollgate-request-id")!)
        sent = anthropic.received.at(-1)!.headers
        assert.strictEqual(sent["authorization"], `Bearer ${KEYS.TOLLGATE_TEST_MK_OAUTH}`)
        assert.isUndefined(sent["x-api-key"])

        const o3 = yield* Effect.promise(() => openai.chat.completions.create({ model: "o3-mini", messages: [{ role: "user", content: "hi" }] }).withResponse())
        ids.push(o3.response.headers.get("x-tollgate-request-id")!)
        let forwarded = platform.received.at(-1)!.headers
        assert.strictEqual(forwarded["x-api-key"], KEYS.TOLLGATE_TEST_MK_O3)
        assert.isUndefined(forwarded["authorization"])

        const gpt = yield* Effect.promise(() => openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).withResponse())
        ids.push(gpt.response.headers.get("x-tollgate-request-id")!)
        forwarded = platform.received.at(-1)!.headers
        assert.strictEqual(forwarded["authorization"], `Bearer ${KEYS.TOLLGATE_TEST_MK_OPENAI}`)
        assert.isUndefined(forwarded["x-api-key"])

        const rows = yield* Tollgate.awaitRequests(ids)
        assert.deepStrictEqual(rows.map((r) => r.status), [200, 200, 200, 200, 200])
        // The log has lines (the unpriced model's warning, at least), none with a key.
        assert.isAbove(logs.length, 0)
        const written = JSON.stringify(rows) + "\n" + logs.join("\n")
        for (const key of Object.values(KEYS)) assert.notInclude(written, key)
      }))

    it.effect("a model whose key variable is not set: 503 naming the variable, nothing sent, and the row says no_key", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { anthropic } = yield* Upstreams
        const before = anthropic.received.length
        const answer = yield* Effect.promise(() =>
          fetch(`${baseUrl}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
            body: JSON.stringify({ model: "claude-unset-1", max_tokens: 16, messages: [{ role: "user", content: "hi" }] })
          })
        )
        assert.strictEqual(answer.status, 503)
        const body = (yield* Effect.promise(() => answer.json())) as { error: { message: string } }
        assert.include(body.error.message, "TOLLGATE_TEST_MK_UNSET is not set")
        assert.strictEqual(anthropic.received.length, before)
        const [row] = yield* Tollgate.awaitRequests([answer.headers.get("x-tollgate-request-id")!])
        assert.include(String(row!.skipped), "claude/claude-unset-1:no_key")
      }))
  })
})
