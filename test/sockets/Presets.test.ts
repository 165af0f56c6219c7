import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted } from "effect"
import * as Config from "../../src/Config.js"
import * as Tollgate from "../support/Tollgate.js"

const provider = (declared: Record<string, unknown>) =>
  Config.decode({ providers: { p: declared } }, "test").pipe(
    Effect.map((file) => {
      const p = file.providers.p!
      if (p.kind !== "openai") throw new Error(`expected an openai provider, got ${p.kind}`)
      return p
    })
  )

// What each service documents: base URL and the key variable users already have.
const expected: ReadonlyArray<readonly [string, string, string | undefined]> = [
  ["openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"],
  ["deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"],
  ["groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"],
  ["mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"],
  ["together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"],
  ["fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"],
  ["xai", "https://api.x.ai/v1", "XAI_API_KEY"],
  ["gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"],
  ["ollama", "http://127.0.0.1:11434/v1", undefined]
]

describe("provider presets", () => {
  it.effect("fill baseUrl and the key's variable name", () =>
    Effect.gen(function*() {
      for (const [preset, baseUrl, apiKeyEnv] of expected) {
        const p = yield* provider({ kind: "openai", preset })
        assert.strictEqual(p.baseUrl, baseUrl, preset)
        assert.strictEqual(p.apiKeyEnv, apiKeyEnv, preset)
        assert.strictEqual(p.preset, preset)
      }
    }))

  it.effect("what the file says wins, field by field; preset headers merge under the file's", () =>
    Effect.gen(function*() {
      const p = yield* provider({
        kind: "openai",
        preset: "openrouter",
        baseUrl: "https://eu.openrouter.example/api/v1",
        apiKeyEnv: "MY_OR_KEY",
        headers: { "HTTP-Referer": "https://myapp.example", "X-Title": "my app" }
      })
      assert.strictEqual(p.baseUrl, "https://eu.openrouter.example/api/v1")
      assert.strictEqual(p.apiKeyEnv, "MY_OR_KEY")
      assert.deepStrictEqual(p.headers, { "HTTP-Referer": "https://myapp.example", "X-Title": "my app" })
      const plain = yield* provider({ kind: "openai", preset: "openrouter" })
      assert.deepStrictEqual(plain.headers, { "X-Title": "tollgate" })
    }))

  it.effect("without a preset, baseUrl is still required; an unknown preset is refused", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(provider({ kind: "openai" }))
      assert.include(missing.message, "providers.p.baseUrl")
      const unknown = yield* Effect.flip(provider({ kind: "openai", preset: "openruoter" }))
      assert.include(unknown.message, "providers.p")
      const plain = yield* provider({ kind: "openai", baseUrl: "https://api.openai.com/v1", apiKeyEnv: "OPENAI_API_KEY" })
      assert.isUndefined(plain.preset)
      assert.deepStrictEqual(plain.headers, {})
    }))

  it.effect("the preset's key is read from the environment; ollama needs none, and start says it sends none", () =>
    Effect.gen(function*() {
      const file = yield* Config.decode({ providers: { groq: { kind: "openai", preset: "groq" }, local: { kind: "openai", preset: "ollama" } } }, "test")
      const config = yield* Config.resolve(file, undefined).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GROQ_API_KEY", "gsk-test"]])))
      )
      const groq = config.providers.find((p) => p.name === "groq")!
      assert.strictEqual(Option.map(groq.apiKey, Redacted.value).pipe(Option.getOrUndefined), "gsk-test")
      const local = config.providers.find((p) => p.name === "local")!
      assert.isTrue(Option.isNone(local.apiKey))
      assert.isUndefined(local.missingKeyEnv)
      assert.deepStrictEqual(config.notices.filter((n) => n.includes("local")), [`provider "local" sends no key (no apiKeyEnv)`])
    }))
})

describe("GET /v1/models", () => {
  layer(
    Tollgate.layer({
      providers: { groq: { kind: "openai", preset: "groq" }, sim: { kind: "mock" } },
      routes: [{ name: "house", match: { model: "house-*" }, targets: [{ provider: "sim", model: "house-special" }] }],
      pricing: { "my-finetune": { input: 1, output: 2 } }
    }),
    { excludeTestServices: true }
  )((it) => {
    it.effect("lists route targets, the models priced for the configured providers, and overrides", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const body = yield* Effect.promise(() => fetch(`${baseUrl}/models`).then((r) => r.json() as Promise<{ data: Array<{ id: string }> }>))
        const ids = body.data.map((m) => m.id)
        assert.includeMembers(ids, ["house-special", "llama-3.3-70b-versatile", "gpt-4o", "my-finetune"])
        assert.notInclude(ids, "claude-sonnet-4-5")
        assert.notInclude(ids, "deepseek-chat")
      }))
  })
})
