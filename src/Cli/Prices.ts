/**
 * `tollgate prices update`: fetch the newest genai-prices data file into the tollgate home.
 * `tollgate prices show MODEL`: the rates a model is billed at, where they come from, and since when.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Price, PriceTier } from "../Config/Schema.js"
import * as Config from "../Config.js"
import * as Money from "../Domain/Money.js"
import * as Pricing from "../Pricing.js"
import * as Source from "../Pricing/Source.js"
import { UsageError } from "./Shared.js"
import { renderTable } from "./Table.js"

/** `tollgate prices update`. */
export const update = (flags: { readonly url: Option.Option<string>; readonly timeout: number }) =>
  Effect.gen(function*() {
    const url = yield* Source.dataUrl(flags.url)
    const result = yield* Source.update(url, { timeoutMs: flags.timeout }).pipe(Effect.provide(FetchHttpClient.layer))
    yield* Console.log(
      `prices updated: ${result.providers} providers, ${result.models} models from ${result.url}\n` +
        `written to ${result.file} (fetched ${result.fetchedAt}).\n` +
        "tollgate uses it from now on wherever it is newer than the bundled data; a running server reads it when it starts."
    )
  })

const RATES: ReadonlyArray<readonly [keyof Omit<Price, "longContext">, string]> = [
  ["input", "input"],
  ["cachedInput", "cached input"],
  ["cacheWrite5m", "cache write 5m"],
  ["cacheWrite1h", "cache write 1h"],
  ["output", "output"],
  ["reasoning", "reasoning"]
]

/** A rate as billed: a missing cache or reasoning rate falls back as `Pricing.computeCost` does. */
const rateOf = (rates: Price | PriceTier, key: (typeof RATES)[number][0]): { readonly usd: number; readonly fallback: string | null } => {
  const value = rates[key]
  if (value !== undefined) return { usd: value, fallback: null }
  switch (key) {
    case "cachedInput":
    case "cacheWrite5m":
      return { usd: rates.input, fallback: "as input" }
    case "cacheWrite1h":
      return rates.cacheWrite5m === undefined ? { usd: rates.input, fallback: "as input" } : { usd: rates.cacheWrite5m, fallback: "as 5m writes" }
    case "reasoning":
      return { usd: rates.output, fallback: "as output" }
    default:
      return { usd: value ?? 0, fallback: null }
  }
}

export const renderPrice = (model: string, resolved: Pricing.Resolved, data: string): string => {
  const price = resolved.price
  const origin = resolved.origin === "config"
    ? "override in tollgate.yaml (pricing:)"
    : resolved.origin === "data"
    ? data
    : resolved.note
  const lines = [
    `${model}${resolved.pricedAs === model ? "" : `, priced as ${resolved.pricedAs}`}${resolved.provider === null ? "" : ` (${resolved.provider})`}`,
    `source: ${origin}`,
    `page:   ${resolved.source}${resolved.asOf === null ? "" : `, as of ${resolved.asOf}`}`
  ]
  if (resolved.origin !== "data" && resolved.origin !== "config") lines.push(`over:   ${data}`)
  const tiers = price.longContext ?? []
  const header = ["USD PER 1M TOKENS", "BASE", ...tiers.map((t) => `ABOVE ${t.above.toLocaleString("en-US")} IN`)]
  const rows = RATES
    .filter(([key]) => key !== "reasoning" || price.reasoning !== undefined || tiers.some((t) => t.reasoning !== undefined))
    .map(([key, label]) => [
      label,
      ...[price, ...tiers].map((rates) => {
        const rate = rateOf(rates, key)
        return rate.fallback === null ? Money.usd(rate.usd) : `${Money.usd(rate.usd)} (${rate.fallback})`
      })
    ])
  lines.push("", renderTable(header, rows))
  if (tiers.length > 0) lines.push("", "a tier's rates replace every base rate once a request's input tokens\n(cache reads and writes included) pass it")
  if (resolved.schedule !== undefined) {
    lines.push("", "this price changes with the date or the time of day; the one above is in force now:")
    for (const entry of resolved.schedule.entries) {
      const c = entry.constraint
      const when = c === undefined ? "otherwise" : "start_date" in c ? `from ${c.start_date}` : `daily ${c.start_time}-${c.end_time}`
      lines.push(`  ${when}: input ${Money.usd(entry.price.input)}, output ${Money.usd(entry.price.output)}`)
    }
  }
  return lines.join("\n")
}

/** `tollgate prices show MODEL`. */
export const show = (flags: { readonly model: string; readonly json: boolean; readonly config: Option.Option<string> }) =>
  Effect.gen(function*() {
    const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
    const pricing = yield* Pricing.fromConfig(config, { warnUnpriced: false })
    const resolved = pricing.resolve(flags.model)
    const data = pricing.data.origin.label
    if (resolved === undefined) {
      return yield* new UsageError({
        message: `no price for model "${flags.model}" (price data: ${data}): its requests are recorded unpriced; add it under pricing: in tollgate.yaml`
      })
    }
    if (flags.json) {
      const { schedule, ...rest } = resolved
      return yield* Console.log(JSON.stringify({ model: flags.model, ...rest, data, schedule: schedule?.entries ?? null }, null, 2))
    }
    yield* Console.log(renderPrice(flags.model, resolved, data))
  })
