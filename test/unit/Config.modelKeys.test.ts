/**
 * `modelKeys`: a second key variable for some of a provider's models. Decoded and read at start
 * like `apiKeyEnv` (a missing variable skips those models' targets with `no_key`), sent as the
 * entry says (`as`), the kind's way by default.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option, Redacted } from "effect"
import * as Config from "../../src/Config.js"
import { missingKeyOf, modelKeyOf } from "../../src/Config/Provider.js"
import * as Router from "../../src/Router.js"
import * as RequestFacts from "../../src/Domain/RequestFacts.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const resolveWith = (input: Config.FileConfigInput, env: Record<string, string>) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, "test")).pipe(withEnv(env))

const providers = {
  claude: {
    kind: "anthropic",
    apiKeyEnv: "T_ANTHROPIC",
    modelKeys: [
      { models: ["*opus*"], apiKeyEnv: "T_OAUTH", as: "bearer" },
      { models: ["claude-haiku-?", "*-mini"], apiKeyEnv: "T_SECOND" }
    ]
  },
  openai: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "T_OPENAI", modelKeys: [{ models: ["o3*"], apiKeyEnv: "T_O3" }] }
} as const

describe("modelKeys", () => {
  it.effect("decoded, keys read from the environment, globs compiled, `as` defaulted per kind", () =>
    Effect.gen(function*() {
      const config = yield* resolveWith({ providers }, { T_ANTHROPIC: "sk-ant", T_OAUTH: "oauth-1", T_SECOND: "", T_OPENAI: "sk-oa", T_O3: "sk-o3" })
      const claude = config.providers.find((p) => p.name === "claude")!
      assert.deepStrictEqual(claude.modelKeys!.map((k) => [k.apiKeyEnv, k.as, k.missing]), [["T_OAUTH", "bearer", false], ["T_SECOND", "x-api-key", false]])
      assert.strictEqual(Redacted.value(Option.getOrThrow(modelKeyOf(claude, "claude-opus-4-1")!.apiKey)), "oauth-1")
      assert.isTrue(Option.isNone(modelKeyOf(claude, "claude-haiku-4")!.apiKey), "an empty variable: no key sent")
      assert.strictEqual(modelKeyOf(claude, "gpt-4o-mini")!.apiKeyEnv, "T_SECOND")
      assert.isUndefined(modelKeyOf(claude, "claude-sonnet-4-5"))
      assert.isUndefined(modelKeyOf(claude, "claude-haiku-45"), "? is one character")
      const openai = config.providers.find((p) => p.name === "openai")!
      assert.strictEqual(modelKeyOf(openai, "o3-mini")!.as, "bearer")
      assert.include(config.notices.join("\n"), `provider "claude" sends no key for models claude-haiku-?, *-mini (T_SECOND is empty)`)
      // The keys never print.
      assert.notInclude(JSON.stringify(config.providers) + config.notices.join(""), "oauth-1")
    }))

  it.effect("a model key variable not set: that model's targets are skipped with no_key, naming it; others are served", () =>
    Effect.gen(function*() {
      const config = yield* resolveWith({ providers: { claude: providers.claude } }, { T_ANTHROPIC: "sk-ant", T_SECOND: "x" })
      assert.include(config.notices.join("\n"), "the key variable T_OAUTH for models *opus* is not set")
      const claude = config.providers[0]!
      assert.strictEqual(missingKeyOf(claude, "claude-opus-4-1"), "T_OAUTH")
      assert.isUndefined(missingKeyOf(claude, "claude-sonnet-4-5"))
      const router = Router.make(config)
      const context: Router.DecideContext = { breakers: [] }
      const facts = (model: string) => RequestFacts.fromOpenAiChat({ model, messages: [{ role: "user", content: "hi" }] }, new Uint8Array(10), {})
      const opus = router.decide(facts("claude-opus-4-1"), context)
      assert.isTrue(opus._tag === "Left")
      if (opus._tag === "Left") assert.deepStrictEqual(opus.left.skipped.map((s) => [s.code, s.reason]), [["no_key", "provider claude has no key for claude-opus-4-1 (T_OAUTH is not set)"]])
      const sonnet = router.decide(facts("claude-sonnet-4-5"), context)
      assert.isTrue(sonnet._tag === "Right")
    }))

  it.effect("the provider's own variable missing: the models with a key of their own are still served", () =>
    Effect.gen(function*() {
      const config = yield* resolveWith({ providers: { claude: providers.claude } }, { T_OAUTH: "oauth-1", T_SECOND: "x" })
      const claude = config.providers[0]!
      assert.strictEqual(claude.missingKeyEnv, "T_ANTHROPIC")
      assert.isUndefined(missingKeyOf(claude, "claude-opus-4-1"))
      assert.strictEqual(missingKeyOf(claude, "claude-sonnet-4-5"), "T_ANTHROPIC")
    }))

  it.effect("refused with its key path: no models, an empty variable name, an unknown `as`", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.decode({
        providers: { claude: { kind: "anthropic", modelKeys: [{ models: [], apiKeyEnv: "" }, { models: ["x"], apiKeyEnv: "K", as: "basic" }] } }
      }, "test"))
      assert.isTrue(Exit.isFailure(exit))
      const message = Exit.isFailure(exit) ? JSON.stringify(exit.cause) : ""
      assert.include(message, "providers.claude.modelKeys.0.models")
      assert.include(message, "providers.claude.modelKeys.0.apiKeyEnv")
      assert.include(message, "providers.claude.modelKeys.1.as")
    }))
})
