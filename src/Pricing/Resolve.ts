/**
 * From the model name a provider reports to the price that bills it. At each spelling of the name,
 * tried in order (the name itself; OpenRouter's `vendor/model` and `:variant` forms; Claude's `4.5`
 * for `4-5`; without a dated snapshot `-20250929` / `-2024-08-06` / `-2411` / `-latest`; an alias),
 * the config's `pricing:` wins, then tollgate's own entries, then a model the maintained data lists
 * under exactly that name. When no spelling has one, the maintained data's own matching decides
 * (`claude-sonnet-4-5-*` and the like). A maintained model that tollgate corrects is billed at the
 * correction while the data still says what was corrected.
 */
import type { Price } from "../Config/Schema.js"
import { additions, aliases, type Correction, corrections, digestOf, vendorProviders } from "./Corrections.js"
import { type DataOrigin, type Found, type Index, OPENROUTER, priceAt, type Schedule, scheduleOf, startDateAt } from "./Data.js"

export interface Resolved {
  /** The entry whose price applies: a maintained model id, one of tollgate's names, or a config name. */
  readonly pricedAs: string
  /** The price in force when it was resolved. */
  readonly price: Price
  /** Set when the price depends on the date or the time of day: `price` is then only the one at resolution. */
  readonly schedule?: Schedule | undefined
  /** Who bills it (genai-prices' provider id); `null` for a config override. */
  readonly provider: string | null
  /** The pricing page, or the config's `pricing:` section. */
  readonly source: string
  readonly asOf: string | null
  /**
   * `data`: the maintained data; `correction`: tollgate's correction of it; `tollgate`: a model
   * tollgate prices that the data does not list; `config`: tollgate.yaml's `pricing:`.
   */
  readonly origin: "data" | "correction" | "tollgate" | "config"
  /** The data the price comes from (`bundled genai-prices v0.1.8 ...`), or why tollgate's entry exists. */
  readonly note: string
}

export const CONFIG_SOURCE = "tollgate.yaml pricing:"

/** The price data in force: the maintained data (bundled or updated) and where it came from. */
export interface PriceData {
  readonly index: Index
  readonly origin: DataOrigin
}

// Tried in order, the first that matches is removed: a name carries at most one of them.
const SNAPSHOT_SUFFIXES = [/-\d{4}-\d{2}-\d{2}$/, /[-@]\d{8}$/, /-latest$/, /-\d{4}$/, /-0\d{2}$/]

const stripSnapshot = (name: string): string | undefined => {
  for (const suffix of SNAPSHOT_SUFFIXES) {
    if (suffix.test(name)) return name.replace(suffix, "")
  }
  return undefined
}

const FREE: Price = { input: 0, output: 0 }

const ownEntries = new Map(Object.entries(additions).map(([name, entry]) => [name.toLowerCase(), [name, entry] as const]))

const priceOnly = (entry: Price): Price => {
  const { input, cachedInput, cacheWrite5m, cacheWrite1h, output, reasoning, longContext } = entry
  return {
    input,
    output,
    ...(cachedInput === undefined ? {} : { cachedInput }),
    ...(cacheWrite5m === undefined ? {} : { cacheWrite5m }),
    ...(cacheWrite1h === undefined ? {} : { cacheWrite1h }),
    ...(reasoning === undefined ? {} : { reasoning }),
    ...(longContext === undefined ? {} : { longContext })
  }
}

/** The price of one maintained model (or of tollgate's correction of it), at `atMs`. */
export const fromData = (found: Found, data: PriceData, atMs: number): Resolved | undefined => {
  const correction: Correction | undefined = corrections[`${found.provider}/${found.model.id}`]
  if (correction !== undefined && correction.corrects === digestOf(found.model.prices)) {
    return {
      pricedAs: found.model.id,
      price: priceOnly(correction),
      provider: found.provider,
      source: correction.source,
      asOf: correction.asOf,
      origin: "correction",
      note: `tollgate's correction of ${data.origin.label}: ${correction.why}`
    }
  }
  const schedule = scheduleOf(found.model)
  if (schedule === undefined) return undefined
  const varies = schedule.entries.length > 1
  return {
    pricedAs: found.model.id,
    price: priceAt(schedule, atMs),
    schedule: varies ? schedule : undefined,
    provider: found.provider,
    source: found.pricingUrl ?? `genai-prices: ${found.providerName}`,
    asOf: (varies ? startDateAt(schedule, atMs) : undefined) ?? data.origin.date,
    origin: "data",
    note: data.origin.label
  }
}

export const makeResolver = (
  overrides: Readonly<Record<string, Price>>,
  data: PriceData,
  now: () => number
) => {
  const { index } = data
  const at = (name: string | undefined, vendor: string | undefined): Resolved | undefined => {
    if (name === undefined) return undefined
    const override = overrides[name]
    if (override !== undefined) {
      return { pricedAs: name, price: override, provider: null, source: CONFIG_SOURCE, asOf: null, origin: "config", note: CONFIG_SOURCE }
    }
    const own = ownEntries.get(name.toLowerCase())
    if (own !== undefined) {
      const [ownName, entry] = own
      // `google/deepseek-chat` is not DeepSeek's price: a vendor prefix only reaches its own models.
      if (vendor !== undefined && entry.provider !== vendor) return undefined
      return {
        pricedAs: ownName,
        price: priceOnly(entry),
        provider: entry.provider,
        source: entry.source,
        asOf: entry.asOf,
        origin: "tollgate",
        note: `tollgate's own entry: ${entry.why}`
      }
    }
    const found = index.exact(name)
    if (found === undefined || (vendor !== undefined && found.provider !== vendor)) return undefined
    return fromData(found, data, now())
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
    const matched = index.match(name, vendor)
    return matched === undefined ? undefined : fromData(matched, data, now())
  }

  return (model: string): Resolved | undefined => {
    const exact = at(model, undefined)
    if (exact !== undefined) return exact
    let name = model
    const colon = name.lastIndexOf(":")
    if (colon > 0) {
      if (name.slice(colon + 1) === "free") {
        return {
          pricedAs: model,
          price: FREE,
          provider: OPENROUTER,
          source: "https://openrouter.ai/models",
          asOf: null,
          origin: "tollgate",
          note: "tollgate's own rule: OpenRouter's :free variants cost nothing"
        }
      }
      name = name.slice(0, colon)
      const variant = at(name, undefined)
      if (variant !== undefined) return variant
    }
    const slash = name.indexOf("/")
    if (slash > 0) {
      const prefix = name.slice(0, slash)
      const rest = name.slice(slash + 1)
      if (prefix === "models") return spellings(rest, undefined)
      const vendor = vendorProviders[prefix]
      if (vendor !== undefined) {
        const own = spellings(rest, vendor)
        if (own !== undefined) return own
      }
      // A name no vendor prices: the host that lists it (Groq's `openai/gpt-oss-120b`), then OpenRouter.
      const listed = index.match(name)
      return listed === undefined ? undefined : fromData(listed, data, now())
    }
    return spellings(name, undefined)
  }
}
