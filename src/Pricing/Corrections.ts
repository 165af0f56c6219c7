/**
 * tollgate's own layer over the maintained price data (`@pydantic/genai-prices`), kept small:
 *
 * - `corrections`: where the maintained data disagrees with the provider's published pricing page,
 *   the page's price for that model, with the page and the reason. Each one names the data it
 *   corrects by a digest of that model's prices; when an update changes them, the correction stops
 *   applying (the maintainers have revisited the model) and `test/unit/Prices.reconcile.test.ts` fails
 *   on the bundled data until the decision is taken again.
 * - `additions`: models tollgate served with a price before and the maintained data does not list.
 *
 * Every decision is written down in docs/pricing.md and kept as a test in
 * test/unit/Prices.reconcile.test.ts. The config's `pricing:` still wins over both.
 */
import type { Price } from "../Config/Schema.js"

export interface OwnEntry extends Price {
  /** Who bills it: genai-prices' provider id (`anthropic`, `x-ai`, `together`...). */
  readonly provider: string
  /** The pricing page the numbers were read from. */
  readonly source: string
  /** The date the numbers were read as valid (YYYY-MM-DD). */
  readonly asOf: string
  /** Why this entry exists. */
  readonly why: string
}

export interface Correction extends OwnEntry {
  /** `digestOf(model.prices)` of the maintained entry this corrects. */
  readonly corrects: string
}

/** FNV-1a over the JSON of a model's `prices`: enough to notice that the data changed. */
export const digestOf = (prices: unknown): string => {
  const text = JSON.stringify(prices)
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return (h >>> 0).toString(16).padStart(8, "0")
}

const anthropicPage = "https://docs.anthropic.com/en/docs/about-claude/pricing#long-context-pricing"
const xaiPage = "https://docs.x.ai/docs/models"
const deepseekPage = "https://api-docs.deepseek.com/quick_start/pricing"

// DeepSeek's page since V3.2-Exp (2025-09-29): one price for deepseek-chat and deepseek-reasoner,
// and no off-peak discount (ended 2025-09-05).
const deepseekV32 = {
  provider: "deepseek",
  source: deepseekPage,
  asOf: "2025-09-29",
  input: 0.28,
  cachedInput: 0.028,
  output: 0.42,
  why: "the maintained data still has the V3/R1 prices with off-peak windows; DeepSeek bills both names as V3.2 at one price since 2025-09-29"
} as const

// xAI's model page: Grok 4 and Grok 4 Fast double every rate once a request's prompt passes 128k tokens.
const grokFastTiers = {
  provider: "x-ai",
  source: xaiPage,
  asOf: "2025-09-19",
  input: 0.2,
  cachedInput: 0.05,
  output: 0.5,
  longContext: [{ above: 128_000, input: 0.4, cachedInput: 0.1, output: 1 }],
  why: "xAI bills prompts above 128k tokens at twice every rate; the maintained data has no tier"
} as const

/** By genai-prices `provider/model id`: replaces that model's price for every name it matches. */
export const corrections: Readonly<Record<string, Correction>> = {
  "anthropic/claude-sonnet-4-0": {
    provider: "anthropic",
    source: anthropicPage,
    asOf: "2025-08-12",
    input: 3,
    cachedInput: 0.3,
    cacheWrite5m: 3.75,
    cacheWrite1h: 6,
    output: 15,
    longContext: [{ above: 200_000, input: 6, cachedInput: 0.6, cacheWrite5m: 7.5, cacheWrite1h: 12, output: 22.5 }],
    why: "Sonnet 4 with the 1M-token window bills every rate at the long-context price above 200k input tokens, as Sonnet 4.5 does (the maintained data has the tier for 4.5 only)",
    corrects: "b62367db"
  },
  "deepseek/deepseek-chat": { ...deepseekV32, corrects: "ecdf312d" },
  "deepseek/deepseek-reasoner": { ...deepseekV32, corrects: "fd56131a" },
  "x-ai/grok-4-0709": {
    provider: "x-ai",
    source: xaiPage,
    asOf: "2025-09-19",
    input: 3,
    cachedInput: 0.75,
    output: 15,
    longContext: [{ above: 128_000, input: 6, cachedInput: 1.5, output: 30 }],
    why: "xAI bills Grok 4 prompts above 128k tokens at twice every rate; the maintained data has no tier",
    corrects: "a6b236ee"
  },
  "x-ai/grok-4-fast-reasoning": { ...grokFastTiers, corrects: "48787691" },
  "x-ai/grok-4-fast-non-reasoning": { ...grokFastTiers, corrects: "48787691" },
  "google/gemini-2.5-flash-preview": {
    provider: "google",
    source: "https://ai.google.dev/gemini-api/docs/pricing",
    asOf: "2025-04-17",
    input: 0.15,
    output: 0.6,
    reasoning: 3.5,
    why: "the 2.5 Flash previews billed thinking tokens at $3.50 per 1M, apart from the $0.60 answer; the maintained data bills them as answer tokens",
    corrects: "7a562b56"
  },
  "fireworks/gpt-oss-120b": {
    provider: "fireworks",
    source: "https://docs.fireworks.ai/guides/prompt-caching",
    asOf: "2025-08-20",
    input: 0.15,
    cachedInput: 0.075,
    output: 0.6,
    why: "Fireworks bills cached prompt tokens at half the input price; the maintained data has a tenth",
    corrects: "3cb0d682"
  }
}

/** By model name (and its snapshots, `-latest` and vendor spellings, as any name). */
export const additions: Readonly<Record<string, OwnEntry>> = {
  // OpenAI's page lists no cached-input price for the search previews: cached tokens are input.
  // The maintained data prices the mini one as gpt-4o-mini, with gpt-4o-mini's cache discount.
  "gpt-4o-mini-search-preview": {
    provider: "openai",
    source: "https://platform.openai.com/docs/pricing",
    asOf: "2025-08-07",
    input: 0.15,
    output: 0.6,
    why: "priced as gpt-4o-mini in the maintained data, whose cache-read discount the search preview does not have"
  },
  "gpt-4o-mini-search-preview-2025-03-11": {
    provider: "openai",
    source: "https://platform.openai.com/docs/pricing",
    asOf: "2025-08-07",
    input: 0.15,
    output: 0.6,
    why: "the dated name of gpt-4o-mini-search-preview"
  },
  // Hosts' names the maintained data does not list; tollgate priced them before, from these pages.
  "devstral-medium": {
    provider: "mistral",
    source: "https://mistral.ai/pricing#api-pricing",
    asOf: "2025-08-12",
    input: 0.4,
    output: 2,
    why: "not in the maintained data"
  },
  "deepseek-ai/DeepSeek-V3": {
    provider: "together",
    source: "https://www.together.ai/pricing",
    asOf: "2025-08-20",
    input: 1.25,
    output: 1.25,
    why: "not in the maintained data"
  },
  "deepseek-ai/DeepSeek-R1": {
    provider: "together",
    source: "https://www.together.ai/pricing",
    asOf: "2025-08-20",
    input: 3,
    output: 7,
    why: "not in the maintained data"
  },
  "Qwen/Qwen2.5-72B-Instruct-Turbo": {
    provider: "together",
    source: "https://www.together.ai/pricing",
    asOf: "2025-08-20",
    input: 1.2,
    output: 1.2,
    why: "not in the maintained data"
  },
  "accounts/fireworks/models/llama-v3p3-70b-instruct": {
    provider: "fireworks",
    source: "https://fireworks.ai/pricing",
    asOf: "2025-08-20",
    input: 0.9,
    output: 0.9,
    why: "not in the maintained data"
  },
  "accounts/fireworks/models/deepseek-v3": {
    provider: "fireworks",
    source: "https://fireworks.ai/pricing",
    asOf: "2025-08-20",
    input: 0.9,
    output: 0.9,
    why: "not in the maintained data"
  },
  "accounts/fireworks/models/kimi-k2-instruct": {
    provider: "fireworks",
    source: "https://fireworks.ai/pricing",
    asOf: "2025-08-20",
    input: 0.6,
    output: 2.5,
    why: "not in the maintained data"
  }
}

/**
 * Names billed as another name that the generic rules (dated snapshots, `-latest`, `vendor/`
 * prefixes, `4.5` for `4-5`) and the maintained data's own matching do not reach.
 */
export const aliases: Readonly<Record<string, string>> = {
  "mistral-small": "mistral-small-latest",
  "grok-4-fast": "grok-4-fast-reasoning"
}

/** OpenRouter's vendor prefixes, and the provider that bills that vendor's own models. */
export const vendorProviders: Readonly<Record<string, string>> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "google",
  deepseek: "deepseek",
  "x-ai": "x-ai",
  xai: "x-ai",
  mistralai: "mistral",
  mistral: "mistral",
  moonshotai: "moonshotai"
}
