/**
 * The `Pricing` service: what a request cost, from its served model and usage.
 * Built-in list prices (`Pricing/Table.ts`) overlaid with the config's `pricing:` section; names are
 * resolved to entries by `Pricing/Resolve.ts`.
 *
 * `Usage.inputTokens` counts every input token, cache reads and writes included, so each input
 * token is billed exactly once: as a cache read, a 5-minute write, a 1-hour write, or plain input.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type { Price, PriceTier } from "./Config/Schema.js"
import { Config } from "./Config.js"
import { presets, type PresetName } from "./Config/Presets.js"
import type { Usage } from "./Domain/Usage.js"
import { makeResolver, type Resolved } from "./Pricing/Resolve.js"
import { builtInPrices, openRouterModels, PRICE_TABLE_VERSION, PRICES_AS_OF } from "./Pricing/Table.js"

export { PRICE_TABLE_VERSION, PRICES_AS_OF }
export type { Resolved }

export type ComponentName = "input" | "cached input" | "cache write 5m" | "cache write 1h" | "output" | "reasoning"

export interface CostComponent {
  readonly name: ComponentName
  readonly tokens: number
  /** USD per 1M tokens. */
  readonly rate: number
  readonly usd: number
}

export interface CostBreakdown extends Omit<Resolved, "price"> {
  /** The model as the ledger recorded it. */
  readonly model: string
  readonly tableVersion: string
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
  /** The price of a model, or `undefined` when it is unknown. */
  readonly priceOf: (model: string) => Price | undefined
  /** Cost in USD, or `null` when the model has no price (unpriced, never $0). */
  readonly costOf: (model: string, usage: Usage) => number | null
  /** Every model with a price (table and config). */
  readonly models: ReadonlyArray<string>
  /** The entry that prices a model, with its source and date. */
  readonly resolve: (model: string) => Resolved | undefined
  /** Tokens x rate per component, for `tollgate cost explain`; `null` when unpriced. */
  readonly breakdown: (model: string, usage: Usage) => CostBreakdown | null
  /** The priced models that these providers serve, for `GET /v1/models`. */
  readonly modelsFor: (providers: ReadonlyArray<ProviderKind>) => ReadonlyArray<string>
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

// Round to 1e-10 USD so sums in SQLite do not show float noise.
const roundUsd = (usd: number) => Math.round(usd * 1e10) / 1e10

/** USD for `usage` at `price` (the sum of `componentsOf`, without building them: it runs several times per request). */
export const computeCost = (price: Price, usage: Usage): number => {
  let sum = 0
  eachComponent(price, usage, (_name, tokens, rate) => {
    sum += tokens * rate
  })
  return roundUsd(sum / 1_000_000)
}

// Resolved names are remembered; a client sending endless distinct names only resets the memo.
const MEMO_LIMIT = 4096

export interface MakeOptions {
  /** Called the first time a model turns out to have no price. */
  readonly onUnpriced?: (model: string) => void
}

export const make = (overrides: Readonly<Record<string, Price>>, options: MakeOptions = {}): Pricing["Type"] => {
  const resolveName = makeResolver(overrides)
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
  const models = [...new Set([...Object.keys(builtInPrices), ...Object.keys(overrides)])]
  const modelsOfProvider = (provider: string) => Object.keys(builtInPrices).filter((m) => builtInPrices[m]!.provider === provider)
  return Pricing.of({
    priceOf: (model) => resolve(model)?.price,
    costOf: (model, usage) => {
      const found = resolve(model)
      return found === undefined ? null : computeCost(found.price, usage)
    },
    models,
    resolve,
    breakdown: (model, usage) => {
      const found = resolve(model)
      if (found === undefined) return null
      const { price, ...rest } = found
      const { components, tierAbove } = componentsOf(price, usage)
      return {
        ...rest,
        model,
        tableVersion: PRICE_TABLE_VERSION,
        tierAbove,
        components,
        totalUsd: computeCost(price, usage)
      }
    },
    modelsFor: (providers) => {
      const out = new Set(Object.keys(overrides))
      for (const provider of providers) {
        // The simulated provider answers any name; it lists OpenAI's, the API it imitates.
        const billedAs = provider.kind === "openai" && provider.preset !== undefined
          ? presets[provider.preset].pricedAs
          : provider.kind === "mock" ? "openai" : provider.kind
        const names = billedAs === "openrouter" ? Object.keys(openRouterModels) : billedAs === undefined ? [] : modelsOfProvider(billedAs)
        for (const name of names) out.add(name)
      }
      return [...out]
    }
  })
}

/** `make`, warning once per unpriced model through this fiber's logger. */
export const makeLogged = (overrides: Readonly<Record<string, Price>>): Effect.Effect<Pricing["Type"]> =>
  Effect.map(Effect.runtime<never>(), (runtime) =>
    make(overrides, {
      // costOf is synchronous on the hot path: the warning runs on the runtime captured here, once.
      onUnpriced: (model) =>
        Runtime.runSync(runtime)(
          Effect.logWarning(
            `no price for model "${model}": its requests are recorded unpriced (cost NULL); add it under pricing: in tollgate.yaml`
          )
        )
    }))

export const layer: Layer.Layer<Pricing, never, Config> = Layer.effect(
  Pricing,
  Effect.flatMap(Config, (config) => makeLogged(config.pricing))
)
