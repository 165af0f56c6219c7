/**
 * The `Pricing` service: what a request cost, from its served model and usage.
 * Built-in list prices (`Pricing/Table.ts`) overlaid with the config's `pricing:` section.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Price } from "./Config/Schema.js"
import { Config } from "./Config.js"
import type { Usage } from "./Domain/Usage.js"
import { builtInPrices, PRICES_AS_OF } from "./Pricing/Table.js"

export { PRICES_AS_OF }

export class Pricing extends Context.Tag("tollgate/Pricing")<Pricing, {
  /** The price of a model, or `undefined` when it is unknown. */
  readonly priceOf: (model: string) => Price | undefined
  /** Cost in USD, or `null` when the model has no price (unpriced, never $0). */
  readonly costOf: (model: string, usage: Usage) => number | null
  /** Every model with a price, for `/v1/models`. */
  readonly models: ReadonlyArray<string>
}>() {}

const DATED_SNAPSHOT = /-\d{4}-\d{2}-\d{2}$/

/** USD for `usage` at `price`. Cached input is billed at its own rate; reasoning is part of output. */
export const computeCost = (price: Price, usage: Usage): number => {
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens)
  const uncached = usage.inputTokens - cached
  const usd = (uncached * price.input + cached * (price.cachedInput ?? price.input) + usage.outputTokens * price.output) /
    1_000_000
  // Round to a micro-dollar fraction so sums in SQLite do not show float noise.
  return Math.round(usd * 1e10) / 1e10
}

export const make = (overrides: Readonly<Record<string, Price>>): Pricing["Type"] => {
  const table: Record<string, Price> = { ...builtInPrices, ...overrides }
  const priceOf = (model: string): Price | undefined => {
    const exact = table[model]
    if (exact !== undefined) return exact
    // "gpt-4o-2024-08-06" is billed as "gpt-4o" unless the snapshot has a price of its own.
    return DATED_SNAPSHOT.test(model) ? table[model.replace(DATED_SNAPSHOT, "")] : undefined
  }
  return {
    priceOf,
    costOf: (model, usage) => {
      const price = priceOf(model)
      return price === undefined ? null : computeCost(price, usage)
    },
    models: Object.keys(table)
  }
}

export const layer: Layer.Layer<Pricing, never, Config> = Layer.effect(
  Pricing,
  Effect.map(Config, (config) => make(config.pricing))
)
