/**
 * `tollgate cost explain <request-id>`: how one ledger row's cost is made, component by component,
 * at today's prices (the maintained data in force, tollgate's corrections, the config's overrides),
 * beside the cost stored when it was served, naming the price data and where each price comes from.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import * as Money from "../Domain/Money.js"
import type { Usage } from "../Domain/Usage.js"
import * as Ledger from "../Ledger.js"
import * as Pricing from "../Pricing.js"
import { usageOf } from "../Pricing/Reprice.js"
import { ledgerLayer } from "./Open.js"
import { UsageError } from "./Shared.js"
import { renderTable } from "./Table.js"

export interface Explanation {
  readonly requestId: string
  readonly time: string
  readonly status: number
  readonly cacheStatus: string | null
  /** The served model, or the requested one when nothing was served. */
  readonly model: string | null
  /** `null` when the request recorded no tokens (it failed before any were used). */
  readonly usage: Usage | null
  readonly storedCostUsd: number | null
  readonly storedPriced: boolean
  /** For a cache hit or a shared answer: what it would have cost when it was served. */
  readonly savedUsd: number | null
  /** At today's prices; `null` when the model has no price or there are no tokens. */
  readonly breakdown: Pricing.CostBreakdown | null
  /** The price data in force (`bundled genai-prices v0.1.8 (2026-09-23)`, or an updated file). */
  readonly priceData: string
  /** Served by the simulated provider (`kind: mock`): booked at $0 whatever the model. */
  readonly simulated: boolean
}

/** The row of `requestId` beside its cost at `pricing`'s prices. */
export const explainRow = (row: Ledger.ExportRow, pricing: Pricing.Pricing["Type"]): Explanation => {
  const model = row.served_model ?? row.requested_model
  const usage = usageOf(row)
  return {
    requestId: row.request_id,
    time: new Date(row.ts).toISOString(),
    status: row.status,
    cacheStatus: row.cache_status,
    model,
    usage,
    storedCostUsd: row.cost_usd,
    storedPriced: Boolean(row.priced),
    savedUsd: row.saved_usd,
    breakdown: model === null || usage === null ? null : pricing.breakdown(model, usage),
    priceData: pricing.data.origin.label,
    simulated: pricing.isSimulated(row.provider)
  }
}

const usd = Money.usd
const int = (value: number) => value.toLocaleString("en-US")

export const renderExplanation = (e: Explanation): string => {
  const lines = [`request ${e.requestId}  ${e.time}  status ${e.status}${e.cacheStatus === null ? "" : `  cache ${e.cacheStatus}`}`]
  if (e.model === null || e.usage === null) {
    lines.push("no tokens were recorded for this request (it ended before any usage): nothing to price")
    return lines.join("\n")
  }
  const b = e.breakdown
  if (b === null) {
    lines.push(
      `model ${e.model} has no price (price data: ${e.priceData}): it is recorded unpriced (cost NULL), not $0.`,
      "Add it under pricing: in tollgate.yaml to price it."
    )
    return lines.join("\n")
  }
  lines.push(
    `model ${e.model}${b.pricedAs === e.model ? "" : `, priced as ${b.pricedAs}`}${b.provider === null ? "" : ` (${b.provider})`}`,
    `price ${b.source}${b.asOf === null ? "" : `, as of ${b.asOf}`}`,
    `from ${b.origin === "data" ? b.note : `${b.note}; price data ${b.data}`}`
  )
  if (b.tierAbove !== null) lines.push(`long-context rates: input above ${int(b.tierAbove)} tokens`)
  if (e.usage.source === "estimated") lines.push("tokens were estimated by tollgate: the provider reported no usage")
  lines.push(
    "",
    renderTable(
      ["COMPONENT", "TOKENS", "USD PER 1M", "USD"],
      [
        ...b.components.map((c) => [c.name, int(c.tokens), usd(c.rate), usd(c.usd)]),
        ["total", "", "", usd(b.totalUsd)]
      ]
    ),
    ""
  )
  if (e.simulated) {
    lines.push(`stored cost: ${usd(e.storedCostUsd ?? 0)} (served by the simulated provider, booked at $0)`)
  } else if (e.storedCostUsd === null) {
    lines.push("stored cost: none (the model had no price when the request was recorded)")
  } else if ((e.cacheStatus === "hit" || e.cacheStatus === "coalesced") && e.storedCostUsd === 0) {
    lines.push(`stored cost: $0 (answered without a provider call; ${usd(e.savedUsd ?? 0)} recorded as saved)`)
  } else if (Math.abs(e.storedCostUsd - b.totalUsd) < 1e-9) {
    lines.push(`stored cost: ${usd(e.storedCostUsd)} (the same)`)
  } else {
    lines.push(`stored cost: ${usd(e.storedCostUsd)} (differs: prices or pricing: overrides changed since it was recorded)`)
  }
  return lines.join("\n")
}

/** JSON amounts (`...Usd`, `usd`) rounded to Money's precision. */
export const moneyReplacer = (key: string, value: unknown): unknown =>
  typeof value === "number" && (key === "usd" || key.endsWith("Usd")) ? Money.json(value) : value

/** `tollgate cost explain`. */
export const run = (flags: {
  readonly requestId: string
  readonly json: boolean
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const row = yield* Ledger.findRequest(flags.requestId).pipe(Effect.provide(ledgerLayer(flags)))
    if (Option.isNone(row)) {
      return yield* new UsageError({ message: `no request with id "${flags.requestId}" in the ledger` })
    }
    // Today's prices, with the same pricing: overrides the server would use.
    const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
    const explanation = explainRow(row.value, yield* Pricing.fromConfig(config, { warnUnpriced: false }))
    yield* Console.log(flags.json ? JSON.stringify(explanation, moneyReplacer, 2) : renderExplanation(explanation))
  })
