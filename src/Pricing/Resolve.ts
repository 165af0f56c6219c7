/**
 * From the model name a provider reports to the price entry that bills it. Exact names win; then
 * the names that are the same model under another spelling: dated snapshots
 * (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`, `mistral-large-2411`), `-latest` aliases,
 * OpenRouter's `vendor/model` pass-through names (`anthropic/claude-sonnet-4.5`) and variants
 * (`:thinking`; `:free` is free). At every name the config's `pricing:` wins over the table.
 */
import type { Price } from "../Config/Schema.js"
import { aliases, builtInPrices, OPENROUTER_SOURCE, openRouterModels, type PriceEntry, PRICES_AS_OF, vendorProviders } from "./Table.js"

export interface Resolved {
  /** The entry (table or config) whose price applies. */
  readonly pricedAs: string
  readonly price: Price
  /** Who bills it, per the table; `null` for a config override. */
  readonly provider: string | null
  /** The pricing page, or the config's `pricing:` section. */
  readonly source: string
  readonly asOf: string | null
  readonly origin: "table" | "config"
}

export const CONFIG_SOURCE = "tollgate.yaml pricing:"

// Tried in order, the first that matches is removed: a name carries at most one of them.
const SNAPSHOT_SUFFIXES = [/-\d{4}-\d{2}-\d{2}$/, /[-@]\d{8}$/, /-latest$/, /-\d{4}$/, /-0\d{2}$/]

const stripSnapshot = (name: string): string | undefined => {
  for (const suffix of SNAPSHOT_SUFFIXES) {
    if (suffix.test(name)) return name.replace(suffix, "")
  }
  return undefined
}

const FREE: Price = { input: 0, output: 0 }

export const makeResolver = (
  overrides: Readonly<Record<string, Price>>,
  table: Readonly<Record<string, PriceEntry>> = builtInPrices
) => {
  const at = (name: string | undefined, vendor: string | undefined): Resolved | undefined => {
    if (name === undefined) return undefined
    const override = overrides[name]
    if (override !== undefined) {
      return { pricedAs: name, price: override, provider: null, source: CONFIG_SOURCE, asOf: null, origin: "config" }
    }
    const entry = table[name]
    // `google/deepseek-chat` is not DeepSeek's price: a vendor prefix only reaches its own models.
    if (entry === undefined || (vendor !== undefined && entry.provider !== vendor)) return undefined
    return { pricedAs: name, price: entry, provider: entry.provider, source: entry.source, asOf: entry.asOf, origin: "table" }
  }

  const spellings = (name: string, vendor: string | undefined): Resolved | undefined => {
    // OpenRouter writes Claude versions with dots: claude-sonnet-4.5, claude-3.7-sonnet.
    const dashed = name.startsWith("claude-") ? name.replace(/(\d)\.(\d)/g, "$1-$2") : name
    for (const candidate of dashed === name ? [name] : [name, dashed]) {
      const base = stripSnapshot(candidate)
      const found = at(candidate, vendor) ?? at(aliases[candidate], vendor) ??
        (base === undefined ? undefined : at(base, vendor) ?? at(aliases[base], vendor))
      if (found !== undefined) return found
    }
    return undefined
  }

  return (model: string): Resolved | undefined => {
    const exact = at(model, undefined) ?? at(openRouterModels[model], undefined)
    if (exact !== undefined) return exact
    let name = model
    const colon = name.lastIndexOf(":")
    if (colon > 0) {
      if (name.slice(colon + 1) === "free") {
        return { pricedAs: model, price: FREE, provider: "openrouter", source: OPENROUTER_SOURCE, asOf: PRICES_AS_OF, origin: "table" }
      }
      name = name.slice(0, colon)
      const variant = at(name, undefined) ?? at(openRouterModels[name], undefined)
      if (variant !== undefined) return variant
    }
    const slash = name.indexOf("/")
    if (slash > 0) {
      const prefix = name.slice(0, slash)
      const rest = name.slice(slash + 1)
      if (prefix === "models") return spellings(rest, undefined)
      const vendor = vendorProviders[prefix]
      return vendor === undefined ? undefined : spellings(rest, vendor)
    }
    return spellings(name, undefined)
  }
}
