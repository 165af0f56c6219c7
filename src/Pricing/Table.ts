/**
 * List prices in USD per 1M tokens, as published by the providers, one entry per model with the
 * page it comes from and the date it was read as valid. Prices change: `pricing:` in tollgate.yaml
 * overrides any entry and adds models not listed here. A model in neither place is unpriced (cost
 * NULL), never $0.
 *
 * Conventions, so one formula prices every provider (`Pricing.computeCost`):
 * - `cachedInput` is a prompt-cache read; `cacheWrite5m` / `cacheWrite1h` are cache writes (Anthropic:
 *   1.25x and 2x input, reads 0.1x). Providers that do not charge for writes have no write rate.
 * - `reasoning` appears only where thinking tokens are billed apart from output; elsewhere they are
 *   output tokens and billed as such.
 * - `longContext` tiers replace every rate once the request's input tokens (cache reads and writes
 *   included) exceed `above`.
 */
import type { Price } from "../Config/Schema.js"

/** Bumped whenever an entry changes; `cost explain` prints it beside each price. */
export const PRICE_TABLE_VERSION = "2025.11.2"
/** The newest `asOf` in the table. */
export const PRICES_AS_OF = "2025-11-24"

export interface PriceEntry extends Price {
  /** Who bills this price: `openai`, `anthropic`, `google`, `deepseek`, `groq`, ... */
  readonly provider: string
  /** The pricing page the numbers were read from. */
  readonly source: string
  /** The date the numbers were valid (YYYY-MM-DD). */
  readonly asOf: string
}

const group = (provider: string, source: string, asOf: string, prices: Readonly<Record<string, Price & { readonly asOf?: string }>>) =>
  Object.fromEntries(
    Object.entries(prices).map(([model, price]): [string, PriceEntry] => [model, { asOf, ...price, provider, source }])
  )

const openai = group("openai", "https://openai.com/api/pricing/", "2025-08-07", {
  // GPT-5 family
  "gpt-5": { input: 1.25, cachedInput: 0.125, output: 10 },
  "gpt-5-mini": { input: 0.25, cachedInput: 0.025, output: 2 },
  "gpt-5-nano": { input: 0.05, cachedInput: 0.005, output: 0.4 },
  "gpt-5-chat-latest": { input: 1.25, cachedInput: 0.125, output: 10 },
  "gpt-5-codex": { input: 1.25, cachedInput: 0.125, output: 10, asOf: "2025-09-23" },
  "gpt-5-pro": { input: 15, output: 120, asOf: "2025-10-06" },
  "gpt-5.1": { input: 1.25, cachedInput: 0.125, output: 10, asOf: "2025-11-13" },
  "gpt-5.1-chat-latest": { input: 1.25, cachedInput: 0.125, output: 10, asOf: "2025-11-13" },
  "gpt-5.1-codex": { input: 1.25, cachedInput: 0.125, output: 10, asOf: "2025-11-13" },
  "gpt-5.1-codex-mini": { input: 0.25, cachedInput: 0.025, output: 2, asOf: "2025-11-13" },
  // GPT-4.1 family (no long-context surcharge: the 1M window is billed at one rate)
  "gpt-4.1": { input: 2, cachedInput: 0.5, output: 8 },
  "gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, output: 1.6 },
  "gpt-4.1-nano": { input: 0.1, cachedInput: 0.025, output: 0.4 },
  // GPT-4o family
  "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 },
  "gpt-4o-2024-05-13": { input: 5, output: 15 },
  "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
  "gpt-4o-search-preview": { input: 2.5, output: 10 },
  "gpt-4o-mini-search-preview": { input: 0.15, output: 0.6 },
  "chatgpt-4o-latest": { input: 5, output: 15 },
  // reasoning models: reasoning tokens are billed as output
  "o1": { input: 15, cachedInput: 7.5, output: 60 },
  "o1-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
  "o1-pro": { input: 150, output: 600 },
  "o3": { input: 2, cachedInput: 0.5, output: 8 },
  "o3-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
  "o3-pro": { input: 20, output: 80 },
  "o3-deep-research": { input: 10, cachedInput: 2.5, output: 40 },
  "o4-mini": { input: 1.1, cachedInput: 0.275, output: 4.4 },
  "o4-mini-deep-research": { input: 2, cachedInput: 0.5, output: 8 },
  "codex-mini-latest": { input: 1.5, cachedInput: 0.375, output: 6 },
  // open-weight models OpenAI publishes but does not serve are priced under the host serving them
  // older
  "gpt-4-turbo": { input: 10, output: 30 },
  "gpt-4": { input: 30, output: 60 },
  "gpt-3.5-turbo": { input: 0.5, output: 1.5 }
})

const anthropicSource = "https://docs.anthropic.com/en/docs/about-claude/pricing"
// Sonnet 4 and 4.5 with the 1M-token context window: every rate changes above 200k input tokens.
const sonnetLongContext = [{ above: 200_000, input: 6, cachedInput: 0.6, cacheWrite5m: 7.5, cacheWrite1h: 12, output: 22.5 }]
const anthropic = group("anthropic", anthropicSource, "2025-08-12", {
  "claude-opus-4-5": { input: 5, cachedInput: 0.5, cacheWrite5m: 6.25, cacheWrite1h: 10, output: 25, asOf: "2025-11-24" },
  "claude-opus-4-1": { input: 15, cachedInput: 1.5, cacheWrite5m: 18.75, cacheWrite1h: 30, output: 75 },
  "claude-opus-4": { input: 15, cachedInput: 1.5, cacheWrite5m: 18.75, cacheWrite1h: 30, output: 75 },
  "claude-sonnet-4-5": {
    input: 3,
    cachedInput: 0.3,
    cacheWrite5m: 3.75,
    cacheWrite1h: 6,
    output: 15,
    longContext: sonnetLongContext,
    asOf: "2025-09-29"
  },
  "claude-sonnet-4": { input: 3, cachedInput: 0.3, cacheWrite5m: 3.75, cacheWrite1h: 6, output: 15, longContext: sonnetLongContext },
  "claude-3-7-sonnet": { input: 3, cachedInput: 0.3, cacheWrite5m: 3.75, cacheWrite1h: 6, output: 15 },
  "claude-3-5-sonnet": { input: 3, cachedInput: 0.3, cacheWrite5m: 3.75, cacheWrite1h: 6, output: 15 },
  "claude-haiku-4-5": { input: 1, cachedInput: 0.1, cacheWrite5m: 1.25, cacheWrite1h: 2, output: 5, asOf: "2025-10-15" },
  "claude-3-5-haiku": { input: 0.8, cachedInput: 0.08, cacheWrite5m: 1, cacheWrite1h: 1.6, output: 4 },
  "claude-3-opus": { input: 15, cachedInput: 1.5, cacheWrite5m: 18.75, cacheWrite1h: 30, output: 75 },
  "claude-3-haiku": { input: 0.25, cachedInput: 0.03, cacheWrite5m: 0.3, cacheWrite1h: 0.5, output: 1.25 }
})

// Gemini through its OpenAI-compatible endpoint. Text/image/video input rates; context-cache
// storage (per hour) is billed separately by Google and is not a per-request cost.
const google = group("google", "https://ai.google.dev/gemini-api/docs/pricing", "2025-07-22", {
  "gemini-2.5-pro": {
    input: 1.25,
    cachedInput: 0.31,
    output: 10,
    longContext: [{ above: 200_000, input: 2.5, cachedInput: 0.625, output: 15 }]
  },
  "gemini-2.5-flash": { input: 0.3, cachedInput: 0.075, output: 2.5 },
  "gemini-2.5-flash-lite": { input: 0.1, cachedInput: 0.025, output: 0.4 },
  // The preview billed thinking apart from the answer: $0.60 per 1M plain output, $3.50 thinking.
  "gemini-2.5-flash-preview-04-17": { input: 0.15, output: 0.6, reasoning: 3.5, asOf: "2025-04-17" },
  "gemini-2.0-flash": { input: 0.1, cachedInput: 0.025, output: 0.4 },
  "gemini-2.0-flash-lite": { input: 0.075, output: 0.3 }
})

// deepseek-chat and deepseek-reasoner are both V3.2-Exp since 2025-09-29, at one price; a cache
// hit is the discounted input rate. Reasoner's thinking is output.
const deepseek = group("deepseek", "https://api-docs.deepseek.com/quick_start/pricing", "2025-09-29", {
  "deepseek-chat": { input: 0.28, cachedInput: 0.028, output: 0.42 },
  "deepseek-reasoner": { input: 0.28, cachedInput: 0.028, output: 0.42 }
})

const groq = group("groq", "https://groq.com/pricing", "2025-08-20", {
  "llama-3.3-70b-versatile": { input: 0.59, output: 0.79 },
  "llama-3.1-8b-instant": { input: 0.05, output: 0.08 },
  "meta-llama/llama-4-scout-17b-16e-instruct": { input: 0.11, output: 0.34 },
  "meta-llama/llama-4-maverick-17b-128e-instruct": { input: 0.2, output: 0.6 },
  "openai/gpt-oss-120b": { input: 0.15, output: 0.75 },
  "openai/gpt-oss-20b": { input: 0.1, output: 0.5 },
  "moonshotai/kimi-k2-instruct": { input: 1, output: 3 },
  "qwen/qwen3-32b": { input: 0.29, output: 0.59 }
})

const mistral = group("mistral", "https://mistral.ai/pricing#api-pricing", "2025-08-12", {
  "mistral-large": { input: 2, output: 6 },
  "mistral-medium": { input: 0.4, output: 2 },
  "mistral-small": { input: 0.1, output: 0.3 },
  "magistral-medium": { input: 2, output: 5 },
  "magistral-small": { input: 0.5, output: 1.5 },
  "codestral": { input: 0.3, output: 0.9 },
  "devstral-medium": { input: 0.4, output: 2 },
  "devstral-small": { input: 0.1, output: 0.3 },
  "pixtral-large": { input: 2, output: 6 },
  "ministral-8b": { input: 0.1, output: 0.1 },
  "ministral-3b": { input: 0.04, output: 0.04 },
  "open-mistral-nemo": { input: 0.15, output: 0.15 }
})

// Grok 4 doubles every rate above 128k input tokens; reasoning tokens are billed as output.
const xai = group("xai", "https://docs.x.ai/docs/models", "2025-09-19", {
  "grok-4": {
    input: 3,
    cachedInput: 0.75,
    output: 15,
    longContext: [{ above: 128_000, input: 6, cachedInput: 1.5, output: 30 }]
  },
  "grok-4-fast-reasoning": {
    input: 0.2,
    cachedInput: 0.05,
    output: 0.5,
    longContext: [{ above: 128_000, input: 0.4, cachedInput: 0.1, output: 1 }]
  },
  "grok-4-fast-non-reasoning": {
    input: 0.2,
    cachedInput: 0.05,
    output: 0.5,
    longContext: [{ above: 128_000, input: 0.4, cachedInput: 0.1, output: 1 }]
  },
  "grok-code-fast-1": { input: 0.2, cachedInput: 0.02, output: 1.5 },
  "grok-3": { input: 3, cachedInput: 0.75, output: 15 },
  "grok-3-mini": { input: 0.3, cachedInput: 0.075, output: 0.5 }
})

const together = group("together", "https://www.together.ai/pricing", "2025-08-20", {
  "meta-llama/Llama-3.3-70B-Instruct-Turbo": { input: 0.88, output: 0.88 },
  "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": { input: 0.18, output: 0.18 },
  "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo": { input: 3.5, output: 3.5 },
  "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": { input: 0.27, output: 0.85 },
  "deepseek-ai/DeepSeek-V3": { input: 1.25, output: 1.25 },
  "deepseek-ai/DeepSeek-R1": { input: 3, output: 7 },
  "Qwen/Qwen2.5-72B-Instruct-Turbo": { input: 1.2, output: 1.2 },
  "moonshotai/Kimi-K2-Instruct": { input: 1, output: 3 }
})

const fireworks = group("fireworks", "https://fireworks.ai/pricing", "2025-08-20", {
  "accounts/fireworks/models/llama-v3p3-70b-instruct": { input: 0.9, output: 0.9 },
  "accounts/fireworks/models/llama-v3p1-8b-instruct": { input: 0.2, output: 0.2 },
  "accounts/fireworks/models/deepseek-v3": { input: 0.9, output: 0.9 },
  "accounts/fireworks/models/deepseek-r1-0528": { input: 3, output: 8 },
  "accounts/fireworks/models/qwen3-235b-a22b": { input: 0.22, output: 0.88 },
  "accounts/fireworks/models/kimi-k2-instruct": { input: 0.6, output: 2.5 },
  "accounts/fireworks/models/gpt-oss-120b": { input: 0.15, output: 0.6 }
})

/** Every built-in entry, by the model name a provider reports. */
export const builtInPrices: Readonly<Record<string, PriceEntry>> = {
  ...openai,
  ...anthropic,
  ...google,
  ...deepseek,
  ...groq,
  ...mistral,
  ...xai,
  ...together,
  ...fireworks
}

/**
 * Names that are billed as another entry and that the generic rules (dated snapshots, `-latest`,
 * `vendor/` prefixes, `4.5` for `4-5`) do not reach.
 */
export const aliases: Readonly<Record<string, string>> = {
  "claude-sonnet-4-0": "claude-sonnet-4",
  "claude-opus-4-0": "claude-opus-4",
  "gemini-2.5-flash-preview-09-2025": "gemini-2.5-flash",
  "gemini-2.5-flash-lite-preview-09-2025": "gemini-2.5-flash-lite",
  "grok-4-0709": "grok-4",
  "grok-4-latest": "grok-4",
  "grok-3-latest": "grok-3",
  "grok-3-mini-latest": "grok-3-mini"
}

/**
 * OpenRouter pass-through names: billed at the vendor's own list price (OpenRouter passes it
 * through; its credit-purchase fee is not per request). Listed for `/v1/models`; other
 * `vendor/model` names resolve by rule.
 */
export const OPENROUTER_SOURCE = "https://openrouter.ai/models"
export const openRouterModels: Readonly<Record<string, string>> = {
  "anthropic/claude-opus-4.5": "claude-opus-4-5",
  "anthropic/claude-opus-4.1": "claude-opus-4-1",
  "anthropic/claude-opus-4": "claude-opus-4",
  "anthropic/claude-sonnet-4.5": "claude-sonnet-4-5",
  "anthropic/claude-sonnet-4": "claude-sonnet-4",
  "anthropic/claude-3.7-sonnet": "claude-3-7-sonnet",
  "anthropic/claude-haiku-4.5": "claude-haiku-4-5",
  "anthropic/claude-3.5-haiku": "claude-3-5-haiku",
  "anthropic/claude-3-haiku": "claude-3-haiku",
  "openai/gpt-5": "gpt-5",
  "openai/gpt-5-mini": "gpt-5-mini",
  "openai/gpt-5-nano": "gpt-5-nano",
  "openai/gpt-4.1": "gpt-4.1",
  "openai/gpt-4.1-mini": "gpt-4.1-mini",
  "openai/gpt-4o": "gpt-4o",
  "openai/gpt-4o-mini": "gpt-4o-mini",
  "openai/o3": "o3",
  "openai/o4-mini": "o4-mini",
  "google/gemini-2.5-pro": "gemini-2.5-pro",
  "google/gemini-2.5-flash": "gemini-2.5-flash",
  "google/gemini-2.5-flash-lite": "gemini-2.5-flash-lite",
  "google/gemini-2.0-flash-001": "gemini-2.0-flash",
  "deepseek/deepseek-chat": "deepseek-chat",
  "x-ai/grok-4": "grok-4",
  "x-ai/grok-3": "grok-3",
  "x-ai/grok-3-mini": "grok-3-mini",
  "x-ai/grok-code-fast-1": "grok-code-fast-1",
  "mistralai/mistral-large": "mistral-large",
  "mistralai/mistral-medium-3": "mistral-medium",
  "mistralai/codestral-2508": "codestral"
}

/** OpenRouter's vendor prefixes, and the table's provider that bills that vendor's own models. */
export const vendorProviders: Readonly<Record<string, string>> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "google",
  deepseek: "deepseek",
  "x-ai": "xai",
  xai: "xai",
  mistralai: "mistral",
  mistral: "mistral"
}
