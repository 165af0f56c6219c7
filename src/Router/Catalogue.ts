/**
 * What known models can do: context window, max output tokens, tools, vision, JSON mode, and a
 * rough quality rank (higher is better; used by `:quality` and `tollgate:best|auto`).
 *
 * Built in for current OpenAI, Anthropic, Google Gemini, DeepSeek, xAI, Mistral and Groq-hosted
 * models, as published by the providers (CATALOGUE_AS_OF); `models.catalogue` in tollgate.yaml
 * overrides any field and adds models, `models.quality` overrides ranks. Lookup tolerates dated
 * snapshots (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`), `-latest` and OpenRouter-style
 * `vendor/model` names. A model in neither place is *unknown*: its capabilities are not checked
 * (it is kept, and the trace says so), because refusing every unlisted model would break local and
 * fine-tuned models.
 *
 * JSON mode: Anthropic models are marked `json: false` because the Messages API has no
 * `response_format`; a request that asks for one is sent to a model that honours it.
 */
import type { CatalogueEntry } from "./Settings.js"

export const CATALOGUE_AS_OF = "2025-08-07"

export type Vendor = "openai" | "anthropic" | "google" | "deepseek" | "xai" | "mistral" | "meta" | "other"

export interface ModelInfo {
  readonly model: string
  readonly vendor: Vendor
  readonly contextWindow: number
  readonly maxOutput: number
  readonly tools: boolean
  readonly vision: boolean
  readonly json: boolean
  readonly quality: number
  /** Providers that serve it when no rule says otherwise (from config). */
  readonly providers: ReadonlyArray<string> | undefined
}

type Row = readonly [vendor: Vendor, context: number, maxOutput: number, tools: boolean, vision: boolean, json: boolean, quality: number]

const T = true
const F = false

const BUILT_IN: Readonly<Record<string, Row>> = {
  // OpenAI
  "gpt-5": ["openai", 400_000, 128_000, T, T, T, 95],
  "gpt-5-mini": ["openai", 400_000, 128_000, T, T, T, 86],
  "gpt-5-nano": ["openai", 400_000, 128_000, T, T, T, 72],
  "gpt-5-chat-latest": ["openai", 128_000, 16_384, F, T, T, 88],
  "gpt-4.1": ["openai", 1_047_576, 32_768, T, T, T, 84],
  "gpt-4.1-mini": ["openai", 1_047_576, 32_768, T, T, T, 76],
  "gpt-4.1-nano": ["openai", 1_047_576, 32_768, T, T, T, 62],
  "gpt-4o": ["openai", 128_000, 16_384, T, T, T, 80],
  "gpt-4o-mini": ["openai", 128_000, 16_384, T, T, T, 66],
  "chatgpt-4o-latest": ["openai", 128_000, 16_384, F, T, T, 81],
  "o1": ["openai", 200_000, 100_000, T, T, T, 88],
  "o1-mini": ["openai", 128_000, 65_536, F, F, F, 74],
  "o1-pro": ["openai", 200_000, 100_000, T, T, T, 91],
  "o3": ["openai", 200_000, 100_000, T, T, T, 92],
  "o3-mini": ["openai", 200_000, 100_000, T, F, T, 82],
  "o3-pro": ["openai", 200_000, 100_000, T, T, T, 93],
  "o4-mini": ["openai", 200_000, 100_000, T, T, T, 85],
  "gpt-4-turbo": ["openai", 128_000, 4_096, T, T, T, 72],
  "gpt-4": ["openai", 8_192, 8_192, T, F, F, 64],
  "gpt-3.5-turbo": ["openai", 16_385, 4_096, T, F, T, 45],
  // Anthropic
  "claude-opus-4-1": ["anthropic", 200_000, 32_000, T, T, F, 95],
  "claude-opus-4": ["anthropic", 200_000, 32_000, T, T, F, 93],
  "claude-sonnet-4-5": ["anthropic", 200_000, 64_000, T, T, F, 94],
  "claude-sonnet-4": ["anthropic", 200_000, 64_000, T, T, F, 90],
  "claude-3-7-sonnet": ["anthropic", 200_000, 64_000, T, T, F, 85],
  "claude-3-5-sonnet": ["anthropic", 200_000, 8_192, T, T, F, 82],
  "claude-haiku-4-5": ["anthropic", 200_000, 64_000, T, T, F, 83],
  "claude-3-5-haiku": ["anthropic", 200_000, 8_192, T, F, F, 68],
  "claude-3-haiku": ["anthropic", 200_000, 4_096, T, T, F, 55],
  "claude-3-opus": ["anthropic", 200_000, 4_096, T, T, F, 78],
  // Google Gemini
  "gemini-2.5-pro": ["google", 1_048_576, 65_536, T, T, T, 93],
  "gemini-2.5-flash": ["google", 1_048_576, 65_536, T, T, T, 84],
  "gemini-2.5-flash-lite": ["google", 1_048_576, 65_536, T, T, T, 72],
  "gemini-2.0-flash": ["google", 1_048_576, 8_192, T, T, T, 74],
  "gemini-2.0-flash-lite": ["google", 1_048_576, 8_192, T, T, T, 65],
  "gemini-1.5-pro": ["google", 2_097_152, 8_192, T, T, T, 76],
  "gemini-1.5-flash": ["google", 1_048_576, 8_192, T, T, T, 62],
  // DeepSeek
  "deepseek-chat": ["deepseek", 128_000, 8_192, T, F, T, 82],
  "deepseek-reasoner": ["deepseek", 128_000, 64_000, F, F, F, 87],
  // xAI
  "grok-4": ["xai", 256_000, 64_000, T, T, T, 92],
  "grok-3": ["xai", 131_072, 16_384, T, F, T, 82],
  "grok-3-mini": ["xai", 131_072, 16_384, T, F, T, 70],
  // Mistral
  "mistral-large": ["mistral", 128_000, 8_192, T, F, T, 78],
  "mistral-medium": ["mistral", 128_000, 8_192, T, T, T, 76],
  "mistral-small": ["mistral", 128_000, 8_192, T, T, T, 64],
  "codestral": ["mistral", 256_000, 8_192, T, F, T, 70],
  // Open models (Groq, Together, Fireworks names)
  "llama-3.3-70b-versatile": ["meta", 131_072, 32_768, T, F, T, 72],
  "llama-3.1-8b-instant": ["meta", 131_072, 8_192, T, F, T, 48]
}

const SNAPSHOT = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$/

/** The name the catalogue knows a model by: `openai/gpt-4o-2024-08-06` -> `gpt-4o`. */
const baseName = (model: string): string => {
  const slash = model.lastIndexOf("/")
  const bare = slash === -1 ? model : model.slice(slash + 1)
  return bare.replace(SNAPSHOT, "")
}

const fromRow = (model: string, row: Row): ModelInfo => ({
  model,
  vendor: row[0],
  contextWindow: row[1],
  maxOutput: row[2],
  tools: row[3],
  vision: row[4],
  json: row[5],
  quality: row[6],
  providers: undefined
})

export interface Catalogue {
  /** What a model can do, or `undefined` when it is unknown. Memoised per name. */
  readonly lookup: (model: string) => ModelInfo | undefined
  /** The configured rank, else the catalogue's; `undefined` for an unranked model. */
  readonly qualityOf: (model: string) => number | undefined
  /** Every model the catalogue knows (built-in and configured). */
  readonly models: ReadonlyArray<string>
}

/** The built-in catalogue overlaid with `models.catalogue` and `models.quality`. */
export const make = (
  extensions: Readonly<Record<string, CatalogueEntry>> = {},
  quality: Readonly<Record<string, number>> = {}
): Catalogue => {
  const table = new Map<string, ModelInfo>()
  for (const [model, row] of Object.entries(BUILT_IN)) table.set(model, fromRow(model, row))
  for (const [model, entry] of Object.entries(extensions)) {
    const base = table.get(model) ?? table.get(baseName(model))
    table.set(model, {
      model,
      vendor: base?.vendor ?? "other",
      // An added model with no window given is taken as unbounded rather than guessed small.
      contextWindow: entry.contextWindow ?? base?.contextWindow ?? Number.POSITIVE_INFINITY,
      maxOutput: entry.maxOutput ?? base?.maxOutput ?? Number.POSITIVE_INFINITY,
      tools: entry.tools ?? base?.tools ?? true,
      vision: entry.vision ?? base?.vision ?? false,
      json: entry.json ?? base?.json ?? true,
      quality: entry.quality ?? base?.quality ?? 0,
      providers: entry.providers ?? base?.providers
    })
  }
  for (const [model, rank] of Object.entries(quality)) {
    const info = table.get(model) ?? table.get(baseName(model))
    if (info !== undefined) table.set(model, { ...info, model, quality: rank })
  }
  // Names are looked up on every request; snapshots and vendor prefixes resolve once.
  const memo = new Map<string, ModelInfo | null>()
  const lookup = (model: string): ModelInfo | undefined => {
    const hit = memo.get(model)
    if (hit !== undefined) return hit ?? undefined
    const info = table.get(model) ?? table.get(baseName(model)) ?? null
    // Bounded: client-chosen names must not grow this without limit.
    if (memo.size < 10_000) memo.set(model, info)
    return info ?? undefined
  }
  const qualityOf = (model: string): number | undefined =>
    quality[model] ?? quality[baseName(model)] ?? lookup(model)?.quality
  return { lookup, qualityOf, models: [...table.keys()] }
}
