/**
 * The reconciliation of tollgate's old hand-written table (newest entry 2025-11) with the maintained
 * data (`@pydantic/genai-prices`, bundled): for each model x usage case where the two disagreed by
 * more than 0.5%, which one is right, from the provider's published pricing page, and why. Where the
 * maintained data is wrong, tollgate bundles a correction (src/Pricing/Corrections.ts); where the
 * old table was wrong, the data's price stands and is asserted here. docs/pricing.md has the table.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import type { Usage } from "../../src/Domain/Usage.js"
import * as Pricing from "../../src/Pricing.js"
import { corrections, digestOf } from "../../src/Pricing/Corrections.js"
import { BUNDLED_VERSION, bundledData } from "../../src/Pricing/Data.js"

const pricing = Pricing.make({})

const usage = (input: number, output: number, parts: Partial<Usage> = {}): Usage => ({
  inputTokens: input,
  outputTokens: output,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "reported",
  ...parts
})
const plain = usage(10_000, 1_000)
const cacheRead = usage(100_000, 1_000, { cachedInputTokens: 80_000 })
const long = usage(300_000, 2_000)

const cost = (model: string, u: Usage) => pricing.costOf(model, u)!
const close = (actual: number, expected: number, message: string) => assert.closeTo(actual, expected, 1e-12, message)

describe("the bundled data and tollgate's corrections", () => {
  it("the bundled genai-prices is the version the code names", () => {
    // The package's exports do not include package.json: read it beside its entry point.
    const entry = createRequire(import.meta.url).resolve("@pydantic/genai-prices")
    const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8")) as { version: string }
    assert.strictEqual(manifest.version, BUNDLED_VERSION)
  })

  it("every correction still corrects what the bundled data says (else: decide again, see docs/pricing.md)", () => {
    const data = bundledData()
    for (const [key, correction] of Object.entries(corrections)) {
      const [provider, ...rest] = key.split("/")
      const model = data.find((p) => p.id === provider)?.models.find((m) => m.id === rest.join("/"))
      assert.isDefined(model, key)
      assert.strictEqual(digestOf(model!.prices), correction.corrects, key)
      // The name a client sends for it (Fireworks' are `accounts/fireworks/models/...`).
      const name = "equals" in model!.match ? model!.match.equals : model!.id
      assert.strictEqual(pricing.resolve(name)?.origin, "correction", key)
    }
  })
})

describe("where the maintained data is wrong: tollgate's correction", () => {
  it("claude-sonnet-4 above 200k input: every rate at the long-context price", () => {
    // https://docs.anthropic.com/en/docs/about-claude/pricing#long-context-pricing lists Sonnet 4 and
    // Sonnet 4.5 together: above 200k input tokens (1M-token window) $6 input, $22.50 output, writes
    // $7.50 / $12, reads $0.60. The data has the tier for 4.5 only. Without the 1M window a request
    // over 200k is refused, so any request that long is billed at the long-context rates.
    close(cost("claude-sonnet-4-20250514", long), (300_000 * 6 + 2_000 * 22.5) / 1e6, "sonnet 4")
    close(cost("claude-sonnet-4-5", long), (300_000 * 6 + 2_000 * 22.5) / 1e6, "sonnet 4.5, from the data")
    close(cost("claude-sonnet-4", plain), (10_000 * 3 + 1_000 * 15) / 1e6, "under 200k")
  })

  it("grok-4, grok-4-fast-(non-)reasoning above 128k: every rate doubled", () => {
    // https://docs.x.ai/docs/models: Grok 4 $3 / $0.75 cached / $15, and "higher context pricing"
    // for requests over 128k tokens at twice those; Grok 4 Fast $0.20 / $0.50 and $0.40 / $1.00
    // above 128k. The data has no tier (it has one for later Grok models, at 200k).
    close(cost("grok-4", long), (300_000 * 6 + 2_000 * 30) / 1e6, "grok-4")
    close(cost("grok-4-0709", plain), (10_000 * 3 + 1_000 * 15) / 1e6, "grok-4 under 128k")
    close(cost("grok-4-fast-reasoning", long), (300_000 * 0.4 + 2_000 * 1) / 1e6, "grok-4-fast-reasoning")
    close(cost("grok-4-fast-non-reasoning", long), (300_000 * 0.4 + 2_000 * 1) / 1e6, "grok-4-fast-non-reasoning")
  })

  it("deepseek-chat and deepseek-reasoner: V3.2 at one price, no off-peak windows", () => {
    // https://api-docs.deepseek.com/quick_start/pricing since 2025-09-29 (V3.2-Exp): both names
    // $0.28 input (cache miss), $0.028 cache hit, $0.42 output; the off-peak discount ended
    // 2025-09-05. The data still has V3's and R1's prices ($0.27 / $1.10, $0.55 / $2.19) with
    // half-price night windows, so the same request cost differed by the hour.
    for (const model of ["deepseek-chat", "deepseek-reasoner"]) {
      close(cost(model, plain), (10_000 * 0.28 + 1_000 * 0.42) / 1e6, model)
      close(cost(model, cacheRead), (20_000 * 0.28 + 80_000 * 0.028 + 1_000 * 0.42) / 1e6, model)
      const night = Date.parse("2026-12-07T20:00:00Z")
      const day = Date.parse("2026-12-07T08:00:00Z")
      assert.strictEqual(pricing.costOf(model, plain, null, night), pricing.costOf(model, plain, null, day), model)
    }
  })

  it("gemini-2.5-flash-preview-04-17: thinking tokens at $3.50, apart from the $0.60 answer", () => {
    // https://ai.google.dev/gemini-api/docs/pricing (April 2025): 2.5 Flash Preview output $0.60
    // non-thinking, $3.50 thinking. The data bills thinking as answer tokens. Retired, but ledger
    // rows of it are still repriced.
    close(cost("gemini-2.5-flash-preview-04-17", usage(1_000, 5_000, { reasoningTokens: 4_000 })), (1_000 * 0.15 + 1_000 * 0.6 + 4_000 * 3.5) / 1e6, "preview")
  })

  it("gpt-4o-mini-search-preview: cached tokens are input (no cache price on OpenAI's page)", () => {
    // https://platform.openai.com/docs/pricing lists the search previews with no cached-input
    // price. The data folds the mini one into gpt-4o-mini, with gpt-4o-mini's $0.075 cache reads.
    close(cost("gpt-4o-mini-search-preview", cacheRead), (100_000 * 0.15 + 1_000 * 0.6) / 1e6, "search preview")
    close(cost("gpt-4o-mini", cacheRead), (20_000 * 0.15 + 80_000 * 0.075 + 1_000 * 0.6) / 1e6, "gpt-4o-mini keeps its discount")
  })

  it("Fireworks gpt-oss-120b: cached prompt tokens at half the input price", () => {
    // https://docs.fireworks.ai/guides/prompt-caching: cached prompt tokens cost 50% of the input
    // price. The data has $0.014 (a tenth). The least certain decision here: see docs/pricing.md.
    close(cost("accounts/fireworks/models/gpt-oss-120b", cacheRead), (20_000 * 0.15 + 80_000 * 0.075 + 1_000 * 0.6) / 1e6, "fireworks")
  })
})

describe("where tollgate's old table was wrong: the maintained data stands", () => {
  it("Gemini 2.5 Pro, Flash, Flash-Lite cache reads at a tenth of input", () => {
    // https://ai.google.dev/gemini-api/docs/pricing: context caching for the 2.5 models is 10% of
    // the input price ($0.125 / $0.25 above 200k for Pro, $0.03 Flash, $0.01 Flash-Lite). The old
    // table had the 25% rates from before the 90% cache discount.
    close(cost("gemini-2.5-pro", cacheRead), (20_000 * 1.25 + 80_000 * 0.125 + 1_000 * 10) / 1e6, "pro")
    close(cost("gemini-2.5-flash", cacheRead), (20_000 * 0.3 + 80_000 * 0.03 + 1_000 * 2.5) / 1e6, "flash")
    close(cost("gemini-2.5-flash-lite", cacheRead), (20_000 * 0.1 + 80_000 * 0.01 + 1_000 * 0.4) / 1e6, "flash-lite")
  })

  it("Groq gpt-oss-120b / gpt-oss-20b list prices and cache reads; Kimi K2 cache reads", () => {
    // https://groq.com/pricing: GPT-OSS 120B $0.15 / $0.60, 20B $0.075 / $0.30, and prompt caching
    // at half the input price on these and Kimi K2 ($1 / $3). The old table had the launch prices
    // ($0.75 and $0.10 / $0.50) and no cache price.
    close(cost("openai/gpt-oss-120b", cacheRead), (20_000 * 0.15 + 80_000 * 0.075 + 1_000 * 0.6) / 1e6, "120b")
    close(cost("openai/gpt-oss-20b", plain), (10_000 * 0.075 + 1_000 * 0.3) / 1e6, "20b")
    close(cost("moonshotai/kimi-k2-instruct", cacheRead), (20_000 * 1 + 80_000 * 0.5 + 1_000 * 3) / 1e6, "kimi")
  })

  it("Mistral Medium cache reads", () => {
    // https://mistral.ai/pricing#api-pricing: Medium 3 at $0.40 / $2. The old table had no cache
    // price because none was published when it was written (2025-08), not because cached tokens
    // cost full price; the data (2026-09) has $0.04 and nothing here contradicts it.
    close(cost("mistral-medium", cacheRead), (20_000 * 0.4 + 80_000 * 0.04 + 1_000 * 2) / 1e6, "medium")
  })
})
