/**
 * The maintained price data: `@pydantic/genai-prices`' providers and models, as the package bundles
 * them or as `tollgate prices update` last fetched them, read into tollgate's `Price` shape.
 *
 * The file is the genai-prices project's own (`Provider[]`): each model has a `match` (equals,
 * starts_with, regex...) and either one set of prices or a list conditioned on a start date or a
 * time of day. Prices are keyed by unit (`input_mtok`, `cache_read_mtok`, ...); a key may be tiered
 * on the request's input tokens, which tollgate reads as long-context tiers. Units tollgate does
 * not count (audio, images, web searches...) are left out.
 */
import * as Schema from "effect/Schema"
import { existsSync, readFileSync } from "node:fs"
import type { Price, PriceTier } from "../Config/Schema.js"

/** The bundled package, as pinned in package.json (a test checks it against node_modules). */
export const BUNDLED_VERSION = "0.1.8"
/** When that version was published: the date of the bundled data. */
export const BUNDLED_DATE = "2026-09-23"
/**
 * Where the genai-prices project publishes its data file: the package's `REMOTE_DATA_JSON_URL`,
 * copied so that loading prices does not load the package (a test holds the two equal).
 */
export const DEFAULT_DATA_URL = "https://raw.githubusercontent.com/pydantic/genai-prices/main/prices/new_data/v2/data.json"

/** The package's data as JSON, written beside the build by scripts/build-bin.mjs. */
export const BUILT_DATA_FILE = "genai-prices.json"

// ---------------------------------------------------------------------------------------------
// The file's schema: what tollgate reads of it. Unknown keys pass, so a newer file still loads.

export type MatchLogic =
  | { readonly equals: string }
  | { readonly starts_with: string }
  | { readonly ends_with: string }
  | { readonly contains: string }
  | { readonly regex: string }
  | { readonly or: ReadonlyArray<MatchLogic> }
  | { readonly and: ReadonlyArray<MatchLogic> }

export const MatchLogic: Schema.Schema<MatchLogic> = Schema.Union(
  Schema.Struct({ equals: Schema.String }),
  Schema.Struct({ starts_with: Schema.String }),
  Schema.Struct({ ends_with: Schema.String }),
  Schema.Struct({ contains: Schema.String }),
  Schema.Struct({ regex: Schema.String }),
  Schema.Struct({ or: Schema.Array(Schema.suspend(() => MatchLogic)) }),
  Schema.Struct({ and: Schema.Array(Schema.suspend(() => MatchLogic)) })
)

const Rate = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const Tiered = Schema.Struct({
  base: Rate,
  tiers: Schema.Array(Schema.Struct({ start: Schema.Int.pipe(Schema.nonNegative()), price: Rate }))
})
export const ModelPrice = Schema.Record({ key: Schema.String, value: Schema.Union(Rate, Tiered) })
export type ModelPrice = typeof ModelPrice.Type

const TimeOfDay = Schema.String.pipe(Schema.pattern(/^\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/))
export const Constraint = Schema.Union(
  Schema.Struct({ start_date: Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}$/)), type: Schema.optional(Schema.Literal("start_date")) }),
  Schema.Struct({ start_time: TimeOfDay, end_time: TimeOfDay, type: Schema.optional(Schema.Literal("time_of_date")) })
)
export type Constraint = typeof Constraint.Type

export const ModelInfo = Schema.Struct({
  id: Schema.String,
  name: Schema.optional(Schema.String),
  match: MatchLogic,
  prices: Schema.Union(
    ModelPrice,
    Schema.NonEmptyArray(Schema.Struct({ constraint: Schema.optional(Constraint), prices: ModelPrice }))
  ),
  price_comments: Schema.optional(Schema.String),
  deprecated: Schema.optional(Schema.Boolean)
})
export type ModelInfo = typeof ModelInfo.Type

export const Provider = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  pricing_urls: Schema.optional(Schema.Array(Schema.String)),
  model_match: Schema.optional(MatchLogic),
  fallback_model_providers: Schema.optional(Schema.Array(Schema.String)),
  models: Schema.Array(ModelInfo)
})
export type Provider = typeof Provider.Type

/** The data file genai-prices publishes (and bundles). */
export const DataFile = Schema.Array(Provider).pipe(Schema.minItems(1))
export type DataFile = typeof DataFile.Type

// ---------------------------------------------------------------------------------------------

/** Where a set of data came from, for `prices show` and `cost explain`. */
export interface DataOrigin {
  readonly kind: "bundled" | "updated"
  /** YYYY-MM-DD: the package's publish date, or the day the file was fetched. */
  readonly date: string
  /** `genai-prices 0.1.8 (bundled)`, `genai-prices file of 2026-12-01 (updated)`. */
  readonly label: string
  readonly url?: string | undefined
}

export const bundledOrigin: DataOrigin = {
  kind: "bundled",
  date: BUNDLED_DATE,
  label: `bundled genai-prices v${BUNDLED_VERSION} (${BUNDLED_DATE})`
}

export const updatedOrigin = (date: string, url: string): DataOrigin => ({
  kind: "updated",
  date,
  label: `updated genai-prices file of ${date}`,
  url
})

/**
 * The package's data as the build wrote it (dist/genai-prices.json, found from dist/bin.js or from
 * dist/Pricing/): parsed JSON holds a fraction of what the package's own module (one large
 * object literal, kept with its source and code) holds. From src/ (tests), the package itself.
 */
const builtData = (): DataFile | null | undefined => {
  for (const candidate of [`./${BUILT_DATA_FILE}`, `../${BUILT_DATA_FILE}`]) {
    const file = new URL(candidate, import.meta.url)
    if (file.protocol === "file:" && existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as DataFile
  }
  return undefined
}

// The package resolves its active data asynchronously; with nothing updating it, that is the data
// it ships with. Read once, when this module loads.
const bundledProviders = builtData() ??
  ((await (await import("@pydantic/genai-prices")).waitForUpdate()) as unknown as DataFile | null)

export const bundledData = (): DataFile => {
  if (bundledProviders === null) throw new Error("@pydantic/genai-prices has no bundled data")
  return bundledProviders
}

// ---------------------------------------------------------------------------------------------
// Matching model names, as genai-prices does: case-insensitive, regexes on the lowercased name.

const regexes = new Map<string, RegExp>()
const regexOf = (source: string): RegExp => {
  let re = regexes.get(source)
  if (re === undefined) {
    re = new RegExp(source)
    regexes.set(source, re)
  }
  return re
}

/** `name` is already lowercased. */
export const matches = (logic: MatchLogic, name: string): boolean => {
  if ("or" in logic) return logic.or.some((l) => matches(l, name))
  if ("and" in logic) return logic.and.every((l) => matches(l, name))
  if ("equals" in logic) return name === logic.equals.toLowerCase()
  if ("starts_with" in logic) return name.startsWith(logic.starts_with.toLowerCase())
  if ("ends_with" in logic) return name.endsWith(logic.ends_with.toLowerCase())
  if ("contains" in logic) return name.includes(logic.contains.toLowerCase())
  return regexOf(logic.regex).test(name)
}

/** The names a match accepts exactly (its `equals` leaves that are not under an `and`). */
const exactNames = (logic: MatchLogic, out: Array<string>): Array<string> => {
  if ("equals" in logic) out.push(logic.equals.toLowerCase())
  else if ("or" in logic) for (const l of logic.or) exactNames(l, out)
  return out
}

// genai-prices reads a dated snapshot `-20250514` also as `-2025-05-14`.
const COMPACT_DATE = /(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)/g

// ---------------------------------------------------------------------------------------------
// Prices in tollgate's shape.

/** One model's prices, with the conditions under which each applies (last that holds wins). */
export interface Schedule {
  readonly entries: ReadonlyArray<{ readonly constraint: Constraint | undefined; readonly price: Price }>
}

type Key = "input" | "cachedInput" | "cacheWrite5m" | "cacheWrite1h" | "output" | "reasoning"
const KEYS: ReadonlyArray<readonly [string, Key]> = [
  ["input_mtok", "input"],
  ["cache_read_mtok", "cachedInput"],
  ["cache_write_mtok", "cacheWrite5m"],
  ["cache_write_1h_mtok", "cacheWrite1h"],
  ["output_mtok", "output"],
  ["output_reasoning_mtok", "reasoning"]
]

const rateAbove = (value: number | typeof Tiered.Type, tokens: number): number => {
  if (typeof value === "number") return value
  let rate = value.base
  for (const tier of value.tiers) if (tokens > tier.start) rate = tier.price
  return rate
}

/**
 * genai-prices' unit prices as a tollgate `Price`, or `undefined` when the model has no per-token
 * input or output price (an image or audio model). Tiers are per key there; here one tier replaces
 * every rate, so each distinct start becomes a tier with every key's rate at that size.
 */
export const toPrice = (prices: ModelPrice): Price | undefined => {
  if (prices.input_mtok === undefined && prices.output_mtok === undefined) return undefined
  const starts = new Set<number>()
  for (const [key] of KEYS) {
    const value = prices[key]
    if (value !== undefined && typeof value !== "number") for (const tier of value.tiers) starts.add(tier.start)
  }
  const ratesAt = (tokens: number) => {
    const rates: { -readonly [K in Key]?: number } = {}
    for (const [key, name] of KEYS) {
      const value = prices[key]
      if (value !== undefined) rates[name] = rateAbove(value, tokens)
    }
    return { ...rates, input: rates.input ?? 0, output: rates.output ?? 0 }
  }
  const base = ratesAt(0)
  if (starts.size === 0) return base
  const longContext: Array<PriceTier> = [...starts].sort((a, b) => a - b).map((start) => ({
    above: Math.max(1, start),
    ...ratesAt(start + 1)
  }))
  return { ...base, longContext }
}

export const scheduleOf = (model: ModelInfo): Schedule | undefined => {
  if (!Array.isArray(model.prices)) {
    const price = toPrice(model.prices as ModelPrice)
    return price === undefined ? undefined : { entries: [{ constraint: undefined, price }] }
  }
  const entries: Array<Schedule["entries"][number]> = []
  for (const entry of model.prices as ReadonlyArray<{ readonly constraint?: Constraint; readonly prices: ModelPrice }>) {
    const price = toPrice(entry.prices)
    if (price !== undefined) entries.push({ constraint: entry.constraint, price })
  }
  return entries.length === 0 ? undefined : { entries }
}

const secondsOfDay = (time: string): number => {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(time)
  if (m === null) return 0
  const offset = m[4] === "Z" ? 0 : (m[5] === "+" ? 1 : -1) * (Number(m[6]) * 3600 + Number(m[7]) * 60)
  return (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) - offset + 86_400) % 86_400
}

const holds = (constraint: Constraint, atMs: number): boolean => {
  if ("start_date" in constraint) return atMs >= Date.parse(`${constraint.start_date}T00:00:00Z`)
  const d = new Date(atMs)
  const now = d.getUTCHours() * 3600 + d.getUTCMinutes() * 60 + d.getUTCSeconds()
  const from = secondsOfDay(constraint.start_time)
  const to = secondsOfDay(constraint.end_time)
  return to < from ? now >= from || now < to : now >= from && now < to
}

/** The price in force at `atMs`: the last entry whose condition holds (genai-prices' rule). */
export const priceAt = (schedule: Schedule, atMs: number): Price => {
  const entries = schedule.entries
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!
    if (entry.constraint === undefined || holds(entry.constraint, atMs)) return entry.price
  }
  return entries[0]!.price
}

/** The day a dated price took effect, for `asOf`: the newest start date at or before `atMs`. */
export const startDateAt = (schedule: Schedule, atMs: number): string | undefined => {
  let found: string | undefined
  for (const entry of schedule.entries) {
    const c = entry.constraint
    if (c !== undefined && "start_date" in c && holds(c, atMs) && (found === undefined || c.start_date > found)) found = c.start_date
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// An index over one data file.

export interface Found {
  /** genai-prices' provider id (`openai`, `anthropic`, `x-ai`, `openrouter`...). */
  readonly provider: string
  readonly providerName: string
  readonly model: ModelInfo
  readonly pricingUrl: string | undefined
}

/**
 * The providers whose list prices tollgate bills by name, in the order a name is looked up: the
 * first-party APIs and the hosts it has presets for. Resellers (clouds, routers) bill their own
 * names and prices and are left out; OpenRouter is asked last, for names no vendor has.
 */
export const FIRST_PARTY: ReadonlyArray<string> = [
  "openai",
  "anthropic",
  "google",
  "deepseek",
  "x-ai",
  "mistral",
  "groq",
  "together",
  "fireworks",
  "moonshotai"
]
export const OPENROUTER = "openrouter"

export interface Index {
  readonly providers: ReadonlyMap<string, Provider>
  /** A model listed under exactly this name (its id, or an `equals` in its match), first party first. */
  readonly exact: (name: string) => Found | undefined
  /** genai-prices' own matching (starts_with, regex...): the provider whose names it fits, then its models. */
  readonly match: (name: string, onlyProvider?: string) => Found | undefined
  /** The model ids a provider lists. */
  readonly modelsOf: (provider: string) => ReadonlyArray<string>
}

export const makeIndex = (data: DataFile): Index => {
  const providers = new Map<string, Provider>(data.map((p) => [p.id, p]))
  // Per provider, the names each of its models lists exactly; OpenRouter's apart.
  const exactIndex = new Map<string, Map<string, Found>>()
  const found = (provider: Provider, model: ModelInfo): Found => ({
    provider: provider.id,
    providerName: provider.name,
    model,
    pricingUrl: provider.pricing_urls?.[0]
  })
  for (const id of [...FIRST_PARTY, OPENROUTER]) {
    const provider = providers.get(id)
    if (provider === undefined) continue
    const names = new Map<string, Found>()
    for (const model of provider.models) {
      for (const name of exactNames(model.match, [model.id.toLowerCase()])) {
        if (!names.has(name)) names.set(name, found(provider, model))
      }
    }
    exactIndex.set(id, names)
  }
  const openRouter = providers.get(OPENROUTER)
  const openRouterIndex = exactIndex.get(OPENROUTER) ?? new Map<string, Found>()
  /** The first-party provider whose `model_match` claims the name (`claude...` is Anthropic's), if any. */
  const ownerOf = (name: string): Provider | undefined => {
    for (const id of FIRST_PARTY) {
      const provider = providers.get(id)
      if (provider?.model_match !== undefined && matches(provider.model_match, name)) return provider
    }
    return undefined
  }

  const inProvider = (provider: Provider, name: string, seen: Set<string>): Found | undefined => {
    seen.add(provider.id)
    for (const model of provider.models) if (matches(model.match, name)) return found(provider, model)
    for (const fallback of provider.fallback_model_providers ?? []) {
      const other = providers.get(fallback)
      if (other !== undefined && !seen.has(other.id) && FIRST_PARTY.includes(other.id)) {
        const hit = inProvider(other, name, seen)
        if (hit !== undefined) return hit
      }
    }
    return undefined
  }
  const matchOnce = (name: string, onlyProvider: string | undefined): Found | undefined => {
    if (onlyProvider !== undefined) {
      const provider = providers.get(onlyProvider)
      return provider === undefined ? undefined : inProvider(provider, name, new Set())
    }
    const owner = ownerOf(name)
    const claimed = owner === undefined ? undefined : inProvider(owner, name, new Set())
    if (claimed !== undefined) return claimed
    // No vendor claims the name: a host that serves it under this name, then OpenRouter.
    for (const id of FIRST_PARTY) {
      const provider = providers.get(id)
      if (provider !== undefined && provider.model_match === undefined) {
        const hit = inProvider(provider, name, new Set())
        if (hit !== undefined) return hit
      }
    }
    return openRouterIndex.get(name) ?? (openRouter === undefined ? undefined : inProvider(openRouter, name, new Set()))
  }

  return {
    providers,
    exact: (name) => {
      const lower = name.toLowerCase()
      // A name a vendor claims is that vendor's (Anthropic's claude-3-7-sonnet, not Vertex's).
      const owner = ownerOf(lower)
      if (owner !== undefined) {
        const own = exactIndex.get(owner.id)?.get(lower)
        if (own !== undefined || owner.models.some((m) => matches(m.match, lower))) return own
      }
      for (const id of FIRST_PARTY) {
        const hit = exactIndex.get(id)?.get(lower)
        if (hit !== undefined) return hit
      }
      return undefined
    },
    match: (name, onlyProvider) => {
      const lower = name.toLowerCase()
      const hit = matchOnce(lower, onlyProvider)
      if (hit !== undefined) return hit
      const dated = lower.replace(COMPACT_DATE, "$1$2-$3-$4")
      return dated === lower ? undefined : matchOnce(dated, onlyProvider)
    },
    modelsOf: (provider) => providers.get(provider)?.models.map((m) => m.id) ?? []
  }
}

export const DATA_URL_ENV = "TOLLGATE_PRICES_URL"
