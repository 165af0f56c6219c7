/**
 * Presets for OpenAI-compatible providers: `kind: openai` with `preset: groq` needs no `baseUrl`
 * and no `apiKeyEnv`. What the file says still wins over the preset, field by field, so a preset
 * never hides a deliberate setting (a regional endpoint, a differently named key variable).
 *
 * Plain data (no Schema import): `Config/Schema.ts` applies it while decoding, and `Pricing` reads
 * `pricedAs` to list the models a configured provider can serve.
 */

export const PRESET_NAMES = [
  "openrouter",
  "deepseek",
  "groq",
  "mistral",
  "together",
  "fireworks",
  "xai",
  "gemini",
  "ollama"
] as const

export type PresetName = typeof PRESET_NAMES[number]

export interface Preset {
  readonly baseUrl: string
  /** Environment variable holding the key; absent for servers that take none (ollama). */
  readonly apiKeyEnv?: string
  /** Headers the provider documents as expected or useful, sent on every request. */
  readonly headers: Readonly<Record<string, string>>
  /** The `provider` of the price-table entries this preset serves (none for local models). */
  readonly pricedAs: string | undefined
}

export const presets: Readonly<Record<PresetName, Preset>> = {
  // OpenRouter names the calling app from `X-Title` (documented, optional); `HTTP-Referer` is the
  // app's own site, which only the user knows: add it under `headers:` to appear in its rankings.
  openrouter: {
    baseUrl: "https://openrouter.ai/api/v1",
    apiKeyEnv: "OPENROUTER_API_KEY",
    headers: { "X-Title": "tollgate" },
    pricedAs: "openrouter"
  },
  deepseek: { baseUrl: "https://api.deepseek.com/v1", apiKeyEnv: "DEEPSEEK_API_KEY", headers: {}, pricedAs: "deepseek" },
  groq: { baseUrl: "https://api.groq.com/openai/v1", apiKeyEnv: "GROQ_API_KEY", headers: {}, pricedAs: "groq" },
  mistral: { baseUrl: "https://api.mistral.ai/v1", apiKeyEnv: "MISTRAL_API_KEY", headers: {}, pricedAs: "mistral" },
  together: { baseUrl: "https://api.together.xyz/v1", apiKeyEnv: "TOGETHER_API_KEY", headers: {}, pricedAs: "together" },
  fireworks: {
    baseUrl: "https://api.fireworks.ai/inference/v1",
    apiKeyEnv: "FIREWORKS_API_KEY",
    headers: {},
    pricedAs: "fireworks"
  },
  xai: { baseUrl: "https://api.x.ai/v1", apiKeyEnv: "XAI_API_KEY", headers: {}, pricedAs: "xai" },
  // Gemini's OpenAI-compatible endpoint (https://ai.google.dev/gemini-api/docs/openai).
  gemini: {
    baseUrl: "https://generativelanguage.googleapis.com/v1beta/openai",
    apiKeyEnv: "GEMINI_API_KEY",
    headers: {},
    pricedAs: "google"
  },
  // A local server takes no key and bills nothing: its models are not in the price table.
  ollama: { baseUrl: "http://127.0.0.1:11434/v1", headers: {}, pricedAs: undefined }
}

/** The fields a preset fills, merged under what the file says. */
export const applyPreset = <A extends {
  readonly baseUrl?: string | undefined
  readonly apiKeyEnv?: string | undefined
  readonly headers: Readonly<Record<string, string>>
}>(name: PresetName, declared: A): A & { readonly baseUrl: string } => {
  const preset = presets[name]
  const apiKeyEnv = declared.apiKeyEnv ?? preset.apiKeyEnv
  return {
    ...declared,
    baseUrl: declared.baseUrl ?? preset.baseUrl,
    ...(apiKeyEnv === undefined ? {} : { apiKeyEnv }),
    headers: { ...preset.headers, ...declared.headers }
  }
}
