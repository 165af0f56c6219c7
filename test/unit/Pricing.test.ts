import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Logger } from "effect"
import * as Config from "../../src/Config.js"
import type { Usage } from "../../src/Domain/Usage.js"
import { fromAnthropic, fromOpenAi } from "../../src/Domain/Usage.js"
import * as Pricing from "../../src/Pricing.js"
import type { Price } from "../../src/Config/Schema.js"
import { additions, aliases, corrections } from "../../src/Pricing/Corrections.js"
import { bundledData } from "../../src/Pricing/Data.js"

const usage = (input: number, output: number, cached = 0): Usage => ({
  inputTokens: input,
  outputTokens: output,
  cachedInputTokens: cached,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "reported"
})

const table = Pricing.make({})

/** The price a model resolves to (maintained data, tollgate's corrections and additions). */
const entry = (model: string): Price => {
  const found = table.priceOf(model)
  if (found === undefined) throw new Error(`no price for ${model}`)
  return found
}

describe("Pricing: cost per provider, from the resolved prices", () => {
  it("Anthropic: uncached input, cache reads, 5m and 1h writes, output (input_tokens excludes cache tokens)", () => {
    const p = entry("claude-sonnet-4-5")
    const u = fromAnthropic({
      input_tokens: 1_000,
      cache_read_input_tokens: 20_000,
      cache_creation_input_tokens: 5_000,
      cache_creation: { ephemeral_5m_input_tokens: 3_000, ephemeral_1h_input_tokens: 2_000 },
      output_tokens: 800
    })!
    const expected = (1_000 * p.input + 20_000 * p.cachedInput! + 3_000 * p.cacheWrite5m! + 2_000 * p.cacheWrite1h! + 800 * p.output) / 1e6
    assert.closeTo(table.costOf("claude-sonnet-4-5", u)!, expected, 1e-12)
    // The data itself: Anthropic's published multipliers hold for every Claude model with cache
    // prices. Claude 3 Haiku is the exception on Anthropic's own page ($0.30 writes, $0.03 reads, rounded).
    const anthropic = bundledData().find((p) => p.id === "anthropic")!
    const current = ["claude-opus-4-5", "claude-opus-4-1", "claude-opus-4-0", "claude-sonnet-4-5", "claude-sonnet-4-0", "claude-3-7-sonnet-latest", "claude-haiku-4-5", "claude-3-5-haiku-latest"]
    const claude = anthropic.models
      .filter((m) => current.includes(m.id))
      .map((m) => [m.id, table.priceOf(m.id)] as const)
      .filter((pair): pair is readonly [string, Price] => pair[1]?.cacheWrite5m !== undefined)
    assert.isAtLeast(claude.length, 8)
    for (const [name, e] of claude) {
      assert.closeTo(e.cacheWrite5m!, e.input * 1.25, 1e-9, name)
      assert.closeTo(e.cacheWrite1h!, e.input * 2, 1e-9, name)
      assert.closeTo(e.cachedInput!, e.input * 0.1, 1e-9, name)
    }
  })

  it("Anthropic: writes without a TTL split are 5-minute writes", () => {
    const p = entry("claude-haiku-4-5")
    const u = fromAnthropic({ input_tokens: 10, cache_read_input_tokens: 0, cache_creation_input_tokens: 4_000, output_tokens: 50 })!
    assert.closeTo(table.costOf("claude-haiku-4-5", u)!, (10 * p.input + 4_000 * p.cacheWrite5m! + 50 * p.output) / 1e6, 1e-12)
  })

  it("OpenAI: cached tokens are part of prompt_tokens, reasoning tokens are output", () => {
    for (const model of ["gpt-5", "o4-mini", "gpt-4.1-mini"]) {
      const p = entry(model)
      const u = fromOpenAi({
        prompt_tokens: 12_000,
        completion_tokens: 3_000,
        prompt_tokens_details: { cached_tokens: 8_000 },
        completion_tokens_details: { reasoning_tokens: 2_500 }
      })!
      assert.closeTo(table.costOf(model, u)!, (4_000 * p.input + 8_000 * p.cachedInput! + 3_000 * p.output) / 1e6, 1e-12, model)
    }
  })

  it("reasoning billed apart from output where the data says so (Gemini 2.5 Flash preview)", () => {
    const p = entry("gemini-2.5-flash-preview-04-17")
    assert.isDefined(p.reasoning)
    const u: Usage = { ...usage(1_000, 5_000), reasoningTokens: 4_000 }
    assert.closeTo(table.costOf("gemini-2.5-flash-preview-04-17", u)!, (1_000 * p.input + 1_000 * p.output + 4_000 * p.reasoning!) / 1e6, 1e-12)
  })

  it("DeepSeek cache hits, Gemini, xAI, Groq, Mistral, Together, Fireworks", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["deepseek-reasoner", "deepseek-reasoner"],
      ["deepseek-chat", "deepseek-chat"],
      ["gemini-2.5-flash", "gemini-2.5-flash"],
      ["grok-3-mini", "grok-3-mini"],
      ["llama-3.3-70b-versatile", "llama-3.3-70b-versatile"],
      ["mistral-large-latest", "mistral-large-latest"],
      ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"],
      ["accounts/fireworks/models/deepseek-v3", "accounts/fireworks/models/deepseek-v3"]
    ]
    for (const [model, key] of cases) {
      const p = entry(key)
      const u: Usage = { ...usage(10_000, 2_000, 6_000), reasoningTokens: 1_500 }
      const expected = (4_000 * p.input + 6_000 * (p.cachedInput ?? p.input) + 2_000 * p.output) / 1e6
      assert.closeTo(table.costOf(model, u)!, expected, 1e-12, model)
    }
  })

  it.prop(
    "every token is billed exactly once, whatever the counts (never a cache count subtracted twice)",
    {
      input: fc.nat(2_000_000),
      cached: fc.nat(2_000_000),
      writes: fc.nat(2_000_000),
      writes1h: fc.nat(2_000_000),
      output: fc.nat(100_000),
      reasoning: fc.nat(100_000),
      model: fc.constantFrom("claude-sonnet-4-5", "gpt-5", "gemini-2.5-pro", "gemini-2.5-flash-preview-04-17", "grok-4")
    },
    ({ cached, input, model, output, reasoning, writes, writes1h }) => {
      const u: Usage = {
        inputTokens: input,
        outputTokens: output,
        cachedInputTokens: cached,
        cacheWriteTokens: writes,
        cacheWrite1hTokens: writes1h,
        reasoningTokens: reasoning,
        source: "reported"
      }
      const b = table.breakdown(model, u)!
      const tokens = (names: ReadonlyArray<string>) =>
        b.components.filter((c) => names.includes(c.name)).reduce((n, c) => n + c.tokens, 0)
      assert.strictEqual(tokens(["input", "cached input", "cache write 5m", "cache write 1h"]), input)
      assert.strictEqual(tokens(["output", "reasoning"]), output)
      assert.isTrue(b.components.every((c) => c.tokens >= 0 && c.usd >= 0))
      assert.closeTo(b.totalUsd, b.components.reduce((s, c) => s + c.usd, 0), 1e-9)
      assert.strictEqual(table.costOf(model, u), b.totalUsd)
    }
  )
})

describe("Pricing: long-context tiers", () => {
  it("Claude Sonnet 4.5 switches every rate above 200k input tokens (cache tokens count)", () => {
    const p = entry("claude-sonnet-4-5")
    const tier = p.longContext![0]!
    assert.strictEqual(tier.above, 200_000)
    const at = (input: number, cached: number) => table.breakdown("claude-sonnet-4-5", usage(input, 1_000, cached))!
    assert.closeTo(at(200_000, 0).totalUsd, (200_000 * p.input + 1_000 * p.output) / 1e6, 1e-12)
    assert.isNull(at(200_000, 0).tierAbove)
    const over = at(200_001, 150_000)
    assert.strictEqual(over.tierAbove, 200_000)
    assert.closeTo(over.totalUsd, (50_001 * tier.input + 150_000 * tier.cachedInput! + 1_000 * tier.output) / 1e6, 1e-12)
  })

  it("Gemini 2.5 Pro above 200k (maintained data), grok-4 above 128k (tollgate's correction); GPT-4.1 has no tier", () => {
    const pro = entry("gemini-2.5-pro").longContext![0]!
    assert.closeTo(table.costOf("gemini-2.5-pro", usage(300_000, 10))!, (300_000 * pro.input + 10 * pro.output) / 1e6, 1e-12)
    const grok = entry("grok-4").longContext![0]!
    assert.strictEqual(grok.above, 128_000)
    assert.strictEqual(table.resolve("grok-4")?.origin, "correction")
    assert.closeTo(table.costOf("grok-4", usage(128_001, 0))!, (128_001 * grok.input) / 1e6, 1e-12)
    const p = entry("gpt-4.1")
    assert.isUndefined(p.longContext)
    assert.closeTo(table.costOf("gpt-4.1", usage(900_000, 0))!, (900_000 * p.input) / 1e6, 1e-12)
  })
})

describe("Pricing: names", () => {
  it("dated snapshots, -latest and aliases resolve to the base entry unless they have their own", () => {
    // pricedAs is the maintained data's model id (claude-sonnet-4-0 is its name for Sonnet 4).
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
      ["claude-3-5-haiku-latest", "claude-3-5-haiku-latest"],
      ["claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"],
      ["claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"],
      ["claude-sonnet-4", "claude-sonnet-4-0"],
      ["claude-sonnet-4-20250514", "claude-sonnet-4-0"],
      ["claude-opus-4-1-20250805", "claude-opus-4-1"],
      ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"],
      ["gpt-4o-2024-05-13", "gpt-4o-2024-05-13"],
      ["gpt-3.5-turbo-0125", "gpt-3.5-turbo"],
      ["mistral-large-2411", "mistral-large"],
      ["mistral-small", "mistral-small-latest"],
      ["gemini-2.0-flash-001", "gemini-2.0-flash"],
      ["gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"],
      ["grok-4", "grok-4-0709"],
      ["grok-4-latest", "grok-4-0709"]
    ]
    for (const [model, pricedAs] of cases) assert.strictEqual(table.resolve(model)?.pricedAs, pricedAs, model)
  })

  it("OpenRouter vendor/model names are billed at the vendor's own price; :free is free", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"],
      ["anthropic/claude-3.7-sonnet:thinking", "claude-3-7-sonnet-latest"],
      ["anthropic/claude-opus-4.1", "claude-opus-4-1"],
      ["openai/gpt-4o", "gpt-4o"],
      ["openai/gpt-4o-2024-08-06", "gpt-4o"],
      ["google/gemini-2.5-pro", "gemini-2.5-pro"],
      ["x-ai/grok-4", "grok-4-0709"],
      ["models/gemini-2.5-flash", "gemini-2.5-flash"]
    ]
    for (const [model, pricedAs] of cases) {
      const resolved = table.resolve(model)
      assert.strictEqual(resolved?.pricedAs, pricedAs, model)
      assert.deepStrictEqual(resolved?.price, table.resolve(pricedAs)?.price, model)
      assert.notStrictEqual(resolved?.provider, "openrouter", model)
    }
    // A name no vendor prices is billed at what OpenRouter lists for it.
    assert.strictEqual(table.resolve("meta-llama/llama-3.3-70b-instruct")?.provider, "openrouter")
    assert.strictEqual(table.costOf("meta-llama/llama-3.3-70b-instruct:free", usage(1_000, 1_000)), 0)
    // A vendor prefix only reaches that vendor's own models.
    assert.isUndefined(table.resolve("google/deepseek-chat"))
    assert.isUndefined(table.resolve("somecloud/gpt-4o"))
  })

  it("tollgate's own entries have a pricing page, a date and a reason; aliases land", () => {
    for (const [name, e] of [...Object.entries(corrections), ...Object.entries(additions)]) {
      assert.match(e.source, /^https:\/\//, name)
      assert.match(e.asOf, /^\d{4}-\d{2}-\d{2}$/, name)
      assert.isAtLeast(e.why.length, 10, name)
    }
    for (const [name, key] of Object.entries(aliases)) {
      assert.isDefined(table.resolve(key), name)
      assert.strictEqual(table.resolve(name)?.pricedAs, table.resolve(key)?.pricedAs, name)
    }
  })
})

describe("Pricing: config overrides", () => {
  const pricing = Pricing.make({
    "my-local-model": { input: 0, output: 0 },
    "gpt-4o": { input: 3, output: 12 },
    "claude-sonnet-4-5": { input: 2, cachedInput: 0.2, cacheWrite5m: 2.5, cacheWrite1h: 4, output: 10 }
  })

  it("win at the same name and reach its snapshots and vendor names; a built-in snapshot price still wins", () => {
    assert.closeTo(pricing.costOf("gpt-4o", usage(1_000_000, 0))!, 3, 1e-12)
    assert.closeTo(pricing.costOf("openai/gpt-4o", usage(1_000_000, 0))!, 3, 1e-12)
    assert.closeTo(pricing.costOf("gpt-4o-2024-05-13", usage(1_000_000, 0))!, entry("gpt-4o-2024-05-13").input, 1e-12)
    const u = fromAnthropic({ input_tokens: 100, cache_read_input_tokens: 1_000, cache_creation_input_tokens: 0, output_tokens: 10 })!
    const expected = (100 * 2 + 1_000 * 0.2 + 10 * 10) / 1e6
    assert.closeTo(pricing.costOf("claude-sonnet-4-5-20250929", u)!, expected, 1e-12)
    assert.closeTo(pricing.costOf("anthropic/claude-sonnet-4.5", u)!, expected, 1e-12)
    assert.strictEqual(pricing.resolve("claude-sonnet-4-5")?.origin, "config")
  })

  it("can price a model at zero; unknown models are null, not $0", () => {
    assert.strictEqual(pricing.costOf("my-local-model", usage(500, 500)), 0)
    assert.isNull(pricing.costOf("some-unknown-model", usage(500, 500)))
    assert.isNull(pricing.breakdown("some-unknown-model", usage(500, 500)))
  })

  it.effect("come from tollgate.yaml's pricing: section with the new fields", () =>
    Effect.gen(function*() {
      const pricing = yield* Pricing.Pricing
      const b = pricing.breakdown("house-model", { ...usage(3_000, 1_000, 1_000), cacheWriteTokens: 1_000, reasoningTokens: 400 })!
      assert.strictEqual(b.source, "tollgate.yaml pricing:")
      assert.deepStrictEqual(
        b.components.map((c) => [c.name, c.tokens, c.rate]),
        [["input", 1_000, 1], ["cached input", 1_000, 0.5], ["cache write 5m", 1_000, 2], ["cache write 1h", 0, 2], ["output", 600, 4], ["reasoning", 400, 8]]
      )
    }).pipe(Effect.provide(Pricing.layer.pipe(Layer.provide(Config.layerFrom({
      providers: { sim: { kind: "mock" } },
      pricing: { "house-model": { input: 1, cachedInput: 0.5, cacheWrite5m: 2, output: 4, reasoning: 8 } }
    }))))))
})

describe("Pricing: unknown models", () => {
  it.effect("are unpriced and warned about once per model, not per request", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
      })
      const pricing = yield* Pricing.makeLogged({}).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      for (let i = 0; i < 3; i++) assert.isNull(pricing.costOf("mystery-model", usage(10, 10)))
      assert.isNull(pricing.costOf("other-mystery", usage(10, 10)))
      assert.isNotNull(pricing.costOf("gpt-4o", usage(10, 10)))
      assert.strictEqual(warnings.length, 2)
      assert.include(warnings[0]!, "mystery-model")
      assert.include(warnings[1]!, "other-mystery")
    }))
})

describe("Pricing: models a config can serve", () => {
  it("by provider kind and preset, plus overrides", () => {
    const pricing = Pricing.make({ "house-model": { input: 1, output: 1 } })
    const groq = pricing.modelsFor([{ kind: "openai", preset: "groq" }])
    assert.include(groq, "llama-3.3-70b-versatile")
    assert.include(groq, "house-model")
    assert.notInclude(groq, "gpt-4o")
    assert.include(pricing.modelsFor([{ kind: "anthropic" }]), "claude-sonnet-4-5")
    assert.include(pricing.modelsFor([{ kind: "openai", preset: "openrouter" }]), "anthropic/claude-sonnet-4.5")
    assert.include(pricing.modelsFor([{ kind: "openai" }]), "gpt-4o")
    assert.deepStrictEqual(pricing.modelsFor([{ kind: "openai", preset: "ollama" }]), ["house-model"])
  })
})

describe("Pricing: the simulated provider", () => {
  it("books what a mock provider serves at $0, unless tollgate.yaml prices the model", () => {
    const pricing = Pricing.make({ "house-model": { input: 1, output: 1 } }, { simulated: ["sim"] })
    const u = usage(1_000_000, 1_000_000)
    assert.strictEqual(pricing.costOf("gpt-4o-mini", u, "sim"), 0)
    assert.strictEqual(pricing.costOf("mystery-model", u, "sim"), 0)
    assert.closeTo(pricing.costOf("gpt-4o-mini", u, "openai")!, 0.15 + 0.6, 1e-12)
    assert.closeTo(pricing.costOf("gpt-4o-mini", u)!, 0.15 + 0.6, 1e-12)
    assert.strictEqual(pricing.costOf("house-model", u, "sim"), 2)
    assert.isTrue(pricing.isSimulated("sim"))
    assert.isFalse(pricing.isSimulated(null))
  })

  it.effect("the layer knows the config's mock providers", () =>
    Effect.gen(function*() {
      const pricing = yield* Pricing.Pricing
      assert.strictEqual(pricing.costOf("gpt-4o-mini", usage(1_000, 1_000), "sim"), 0)
      assert.isAbove(pricing.costOf("gpt-4o-mini", usage(1_000, 1_000), "real")!, 0)
      // The built-in simulated provider's name, as earlier demo rows carry it.
      assert.strictEqual(pricing.costOf("gpt-4o-mini", usage(1_000, 1_000), "mock"), 0)
    }).pipe(Effect.provide(Pricing.layer.pipe(Layer.provide(Config.layerFrom({
      providers: { sim: { kind: "mock" }, real: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1" } }
    }))))))
})
