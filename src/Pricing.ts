/**
 * The `Pricing` service: what a request cost, from its served model and usage.
 * The maintained price data (`@pydantic/genai-prices`: bundled, or the newer file `tollgate prices
 * update` fetched; see `Pricing/Source.ts`), tollgate's own corrections and additions over it
 * (`Pricing/Corrections.ts`), and the config's `pricing:` section over both; names are resolved to
 * prices by `Pricing/Resolve.ts`. What the simulated provider (`kind: mock`) serves costs $0, unless
 * the config's `pricing:` prices that model (to try budgets on the simulated provider, say).
 *
 * `Usage.inputTokens` counts every input token, cache reads and writes included, so each input
 * token is billed exactly once: as a cache read, a 5-minute write, a 1-hour write, or plain input.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type { Price, PriceTier } from "./Config/Schema.js"
import { TollgateConfig, type TollgateSettings } from "./Config.js"
import type { PresetName } from "./Config/Presets.js"
import * as Money from "./Domain/Money.js"
import type { Usage } from "./Domain/Usage.js"
import { additions } from "./Pricing/Corrections.js"
import { FIRST_PARTY, OPENROUTER, priceAt } from "./Pricing/Data.js"
import { makeResolver, type PriceData, type Resolved } from "./Pricing/Resolve.js"
import * as Source from "./Pricing/Source.js"
import { isSimulated, priceFamilyOf } from "./Upstream/Kinds.js"

export type { PriceData, Resolved }

export type ComponentName = "input" | "cached input" | "cache write 5m" | "cache write 1h" | "output" | "reasoning"

export interface CostComponent {
  readonly name: ComponentName
  readonly tokens: number
  /** USD per 1M tokens. */
  readonly rate: number
  readonly usd: number
}

export interface CostBreakdown extends Omit<Resolved, "price" | "schedule"> {
  /** The model as the ledger recorded it. */
  readonly model: string
  /** The price data in force (`bundled genai-prices v0.1.8 (2026-09-23)`, or an updated file). */
  readonly data: string
  /** The long-context tier applied (its `above`, in input tokens), or `null` for base rates. */
  readonly tierAbove: number | null
  readonly components: ReadonlyArray<CostComponent>
  readonly totalUsd: number
}

/** What a configured provider is, as far as the models it can serve go. */
export interface ProviderKind {
  readonly kind: string
  readonly preset?: PresetName | undefined
}

export class Pricing extends Context.Tag("tollgate/Pricing")<Pricing, {
  /** The price of a model now, or `undefined` when it is unknown. */
  readonly priceOf: (model: string) => Price | undefined
  /**
   * Cost in USD, or `null` when the model has no price (unpriced, never $0). `provider` is the
   * configured provider that served it (a simulated one costs $0); `atMs` when it was served, for
   * prices that depend on the date or the time of day (default: now).
   */
  readonly costOf: (model: string, usage: Usage, provider?: string | null, atMs?: number) => number | null
  /** Every model with a price (maintained data of the first-party providers, tollgate's, config's). */
  readonly models: ReadonlyArray<string>
  /** The entry that prices a model, with its source and date. */
  readonly resolve: (model: string) => Resolved | undefined
  /** Tokens x rate per component, for `tollgate cost explain`; `null` when unpriced. */
  readonly breakdown: (model: string, usage: Usage, atMs?: number) => CostBreakdown | null
  /** The priced models that these providers serve, for `GET /v1/models`. */
  readonly modelsFor: (providers: ReadonlyArray<ProviderKind>) => ReadonlyArray<string>
  /** The price data in force. */
  readonly data: PriceData
  /** Whether a configured provider is the simulated one, whose answers cost $0 (unless tollgate.yaml prices the model). */
  readonly isSimulated: (provider: string | null | undefined) => boolean
}>() {}

/** The rates for this many input tokens: the highest long-context tier exceeded, or the base. */
const ratesFor = (price: Price, inputTokens: number): Price | PriceTier => {
  let chosen: Price | PriceTier = price
  for (const tier of price.longContext ?? []) {
    if (inputTokens > tier.above && (chosen === price || tier.above > (chosen as PriceTier).above)) chosen = tier
  }
  return chosen
}

/**
 * Each billed component of `usage` at the rates for its size, in order, as (name, tokens, rate);
 * the cache counts are parts of `inputTokens`. Returns the rates used.
 */
const eachComponent = (
  price: Price,
  usage: Usage,
  visit: (name: ComponentName, tokens: number, rate: number) => void
): Price | PriceTier => {
  const rates = ratesFor(price, usage.inputTokens)
  const input = Math.max(0, usage.inputTokens)
  const cacheRead = Math.min(Math.max(0, usage.cachedInputTokens), input)
  const writes = Math.min(Math.max(0, usage.cacheWriteTokens), input - cacheRead)
  const writes1h = Math.min(Math.max(0, usage.cacheWrite1hTokens ?? 0), writes)
  const output = Math.max(0, usage.outputTokens)
  const write5mRate = rates.cacheWrite5m ?? rates.input
  visit("input", input - cacheRead - writes, rates.input)
  visit("cached input", cacheRead, rates.cachedInput ?? rates.input)
  visit("cache write 5m", writes - writes1h, write5mRate)
  visit("cache write 1h", writes1h, rates.cacheWrite1h ?? write5mRate)
  if (rates.reasoning === undefined) {
    visit("output", output, rates.output)
  } else {
    const reasoning = Math.min(Math.max(0, usage.reasoningTokens), output)
    visit("output", output - reasoning, rates.output)
    visit("reasoning", reasoning, rates.reasoning)
  }
  return rates
}

/** Each billed component of `usage` at `price`; the cache counts are parts of `inputTokens`. */
export const componentsOf = (price: Price, usage: Usage): {
  readonly tierAbove: number | null
  readonly components: ReadonlyArray<CostComponent>
} => {
  const components: Array<CostComponent> = []
  const rates = eachComponent(price, usage, (name, tokens, rate) => {
    components.push({ name, tokens, rate, usd: (tokens * rate) / 1_000_000 })
  })
  return { tierAbove: rates === price ? null : (rates as PriceTier).above, components }
}


/** USD for `usage` at `price` (the sum of `componentsOf`, without building them: it runs several times per request). */
export const computeCost = (price: Price, usage: Usage): number => {
  let sum = 0
  eachComponent(price, usage, (_name, tokens, rate) => {
    sum += tokens * rate
  })
  // Rounded to Money's JSON precision, so sums in SQLite do not show float noise.
  return Money.json(sum / 1_000_000)
}

// Resolved names are remembered; a client sending endless distinct names only resets the memo.
const MEMO_LIMIT = 4096

export interface MakeOptions {
  /** Called the first time a model turns out to have no price. */
  readonly onUnpriced?: (model: string) => void
  /** The maintained data (default: the bundled data). */
  readonly data?: PriceData | undefined
  /** Now, in ms: prices that depend on the date or the time of day are read at it. */
  readonly now?: (() => number) | undefined
  /** The configured providers of `kind: mock`: what they serve costs $0. */
  readonly simulated?: ReadonlyArray<string> | undefined
}

// genai-prices' provider ids, for the provider names tollgate's presets use.
const DATA_PROVIDER: Readonly<Record<string, string>> = { xai: "x-ai" }

export const make = (overrides: Readonly<Record<string, Price>>, options: MakeOptions = {}): Pricing["Type"] => {
  const data = options.data ?? Source.bundledPriceData()
  const now = options.now ?? Date.now
  const resolveName = makeResolver(overrides, data, now)
  const simulated = new Set(options.simulated ?? [])
  const memo = new Map<string, Resolved | null>()
  const warned = new Set<string>()
  const resolve = (model: string): Resolved | undefined => {
    const known = memo.get(model)
    if (known !== undefined) return known ?? undefined
    const found = resolveName(model)
    if (memo.size >= MEMO_LIMIT) memo.clear()
    memo.set(model, found ?? null)
    // Warned once per name for the life of this service, even when the memo is reset.
    if (found === undefined && !warned.has(model) && warned.size < MEMO_LIMIT) {
      warned.add(model)
      options.onUnpriced?.(model)
    }
    return found
  }
  /** The price that applies at `atMs` (most prices do not depend on it). */
  const priceIn = (found: Resolved, atMs: number | undefined): Price =>
    found.schedule === undefined ? found.price : priceAt(found.schedule, atMs ?? now())
  const providersOfData = (provider: string) => [
    ...data.index.modelsOf(provider),
    ...Object.keys(additions).filter((name) => additions[name]!.provider === provider)
  ]
  const models = [...new Set([...Object.keys(overrides), ...Object.keys(additions), ...FIRST_PARTY.flatMap(data.index.modelsOf)])]
  return Pricing.of({
    priceOf: (model) => resolve(model)?.price,
    costOf: (model, usage, provider, atMs) => {
      const found = resolve(model)
      // The simulated provider's answers are not real spend, unless tollgate.yaml prices them.
      if (provider != null && simulated.has(provider) && found?.origin !== "config") return 0
      return found === undefined ? null : computeCost(priceIn(found, atMs), usage)
    },
    models,
    resolve,
    breakdown: (model, usage, atMs) => {
      const found = resolve(model)
      if (found === undefined) return null
      const { price: _price, schedule: _schedule, ...rest } = found
      const price = priceIn(found, atMs)
      const { components, tierAbove } = componentsOf(price, usage)
      return {
        ...rest,
        model,
        data: data.origin.label,
        tierAbove,
        components,
        totalUsd: computeCost(price, usage)
      }
    },
    modelsFor: (providers) => {
      const out = new Set(Object.keys(overrides))
      for (const provider of providers) {
        // Its kind's price family (the simulated provider answers any name; it lists OpenAI's, the API it imitates).
        const billedAs = priceFamilyOf(provider)
        if (billedAs === undefined) continue
        const id = DATA_PROVIDER[billedAs] ?? billedAs
        for (const name of id === OPENROUTER ? data.index.modelsOf(OPENROUTER) : providersOfData(id)) out.add(name)
      }
      return [...out]
    },
    data,
    isSimulated: (provider) => provider != null && simulated.has(provider)
  })
}

/**
 * The names of the simulated providers: the configured `kind: mock` ones, and `mock`, the name the
 * built-in one has (demo mode, no provider configured) unless a real provider is called that, so
 * ledger rows of an earlier demo stay at $0 when `reprice` runs under a real configuration.
 */
export const simulatedProviders = (config: TollgateSettings): ReadonlyArray<string> => {
  const names = config.providers.filter((p) => isSimulated(p.config)).map((p) => p.name)
  return config.providers.some((p) => p.name === "mock") ? names : [...names, "mock"]
}

/** `make`, warning once per unpriced model through this fiber's logger. */
export const makeLogged = (
  overrides: Readonly<Record<string, Price>>,
  options: Omit<MakeOptions, "onUnpriced"> = {}
): Effect.Effect<Pricing["Type"]> =>
  Effect.map(Effect.runtime<never>(), (runtime) =>
    make(overrides, {
      ...options,
      // costOf is synchronous on the hot path: the warning runs on the runtime captured here, once.
      onUnpriced: (model) =>
        Runtime.runSync(runtime)(
          Effect.logWarning(
            `no price for model "${model}": its requests are recorded unpriced (cost NULL); add it under pricing: in tollgate.yaml`
          )
        )
    }))

/** The price data in force (bundled, or a newer updated file), saying why an updated file was left aside. */
export const loadData: Effect.Effect<PriceData> = Source.load.pipe(
  Effect.tap((loaded) => loaded._tag === "Bundled" && loaded.ignored !== undefined ? Effect.logWarning(`prices: ${loaded.ignored}`) : Effect.void),
  Effect.map((loaded) => loaded.data),
  Effect.provide(NodeFileSystem.layer)
)

/**
 * Pricing for a configuration, on the data in force. The server warns once per unpriced model;
 * the CLI's commands say so in their own output (`warnUnpriced: false`).
 */
export const fromConfig = (config: TollgateSettings, options: { readonly warnUnpriced?: boolean } = {}): Effect.Effect<Pricing["Type"]> =>
  Effect.gen(function*() {
    const data = yield* loadData
    const clock = yield* Effect.clock
    const made: MakeOptions = { data, now: () => clock.unsafeCurrentTimeMillis(), simulated: simulatedProviders(config) }
    return options.warnUnpriced === false ? make(config.pricing, made) : yield* makeLogged(config.pricing, made)
  })

export const layer: Layer.Layer<Pricing, never, TollgateConfig> = Layer.effect(Pricing, Effect.flatMap(TollgateConfig, (config) => fromConfig(config)))
