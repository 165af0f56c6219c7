/**
 * Names a client may ask for instead of a model: `models.aliases` from config, and the built-in
 * `tollgate:fast | tollgate:cheap | tollgate:best | tollgate:auto`, resolved among the models the
 * config names (route targets, tiers, cascades, aliases, overrides, catalogue and quality entries);
 * with none named, among the built-in catalogue's priced models whose vendor a provider serves.
 *
 * - `cheap`: lowest blended price, (3 x input + output) / 4 per 1M tokens.
 * - `best`: highest quality rank (`models.quality`, else the catalogue's); ties go to the cheaper.
 * - `fast`: lowest TTFB average (Latency snapshot) among candidates that have one; before any is
 *   measured, the cheapest (small models are the quick ones).
 * - `auto`: the complexity tier picks: simple -> cheap, moderate -> the median by quality,
 *   complex -> best.
 */
import type { Price } from "../Config/Schema.js"
import type { TollgateSettings } from "../Config.js"
import type { Catalogue, Vendor } from "./Catalogue.js"
import type { Tier } from "./Complexity.js"
import { kindOf } from "../Upstream/Kinds.js"

export const blendedPrice = (price: Price): number => (3 * price.input + price.output) / 4

export type BuiltIn = "fast" | "cheap" | "best" | "auto"
export const BUILT_INS: ReadonlyArray<BuiltIn> = ["fast", "cheap", "best", "auto"]

export interface BuiltInAliases {
  /** The candidate pool, for explain. */
  readonly candidates: ReadonlyArray<string>
  readonly cheap: string | undefined
  readonly best: string | undefined
  readonly byTier: Readonly<Record<Tier, string | undefined>>
  /** `latencyOf(model)`: the measured TTFB of the model's default target, if any. */
  readonly fast: (latencyOf: (model: string) => number | undefined) => string | undefined
}

/** Model names written anywhere in the routing config. */
const configuredModels = (config: TollgateSettings): Array<string> => {
  const names = new Set<string>()
  for (const route of config.routes) {
    for (const t of route.targets) if (t.model !== undefined) names.add(t.model)
    if (route.tiers !== undefined) {
      for (const choice of Object.values(route.tiers)) {
        if (typeof choice === "string") names.add(choice)
        else for (const t of choice) if (t.model !== undefined) names.add(t.model)
      }
    }
    for (const m of route.cascade?.models ?? []) names.add(m)
    for (const t of route.cascade?.targets ?? []) if (t.model !== undefined) names.add(t.model)
  }
  for (const m of Object.values(config.models.aliases)) names.add(m)
  for (const m of Object.values(config.models.overrides)) names.add(m)
  for (const m of Object.keys(config.models.catalogue)) names.add(m)
  for (const m of Object.keys(config.models.quality)) names.add(m)
  return [...names].filter((m) => !m.startsWith("tollgate:")).sort()
}

const servableVendors = (config: TollgateSettings): ((vendor: Vendor) => boolean) => {
  const vendors = new Set<Vendor | "any">(config.providers.map((p) => kindOf(p.config).vendor))
  if (vendors.has("any")) return () => true
  return (vendor) => vendors.has(vendor)
}

/**
 * Ties between model ids go by UTF-16 code units: the same order on every machine, where
 * `localeCompare` follows the host's locale (and loads ICU's collation data, resident from then on:
 * docs/performance.md, figures).
 */
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export const make = (
  config: TollgateSettings,
  catalogue: Catalogue,
  priceOf: (model: string) => Price | undefined
): BuiltInAliases => {
  let candidates = configuredModels(config)
  if (candidates.length === 0) {
    const servable = servableVendors(config)
    candidates = catalogue.models.filter((m) => {
      const info = catalogue.lookup(m)
      return info !== undefined && servable(info.vendor) && priceOf(m) !== undefined
    }).sort()
  }
  const cost = (m: string) => {
    const price = priceOf(m)
    return price === undefined ? Number.POSITIVE_INFINITY : blendedPrice(price)
  }
  const quality = (m: string) => catalogue.qualityOf(m) ?? Number.NEGATIVE_INFINITY
  const priced = candidates.filter((m) => priceOf(m) !== undefined)
  const byCost = [...priced].sort((a, b) => cost(a) - cost(b) || byName(a, b))
  const ranked = candidates.filter((m) => catalogue.qualityOf(m) !== undefined)
  // Ascending by quality; among equals the cheaper first.
  const byQuality = [...ranked].sort((a, b) => quality(a) - quality(b) || cost(b) - cost(a) || byName(a, b))
  const cheap = byCost[0]
  const best = byQuality[byQuality.length - 1]
  const median = byQuality.length === 0 ? undefined : byQuality[Math.floor((byQuality.length - 1) / 2)]
  return {
    candidates,
    cheap,
    best,
    byTier: { simple: cheap ?? median, moderate: median, complex: best ?? median },
    fast: (latencyOf) => {
      let pick: string | undefined
      let fastest = Number.POSITIVE_INFINITY
      for (const m of candidates) {
        const ms = latencyOf(m)
        if (ms !== undefined && ms < fastest) {
          fastest = ms
          pick = m
        }
      }
      return pick ?? cheap
    }
  }
}
