/**
 * `tollgate reprice --since 30d [--dry-run]`: past rows' cost at today's prices.
 * `tollgate simulate --since 7d --map gpt-4o=gpt-4o-mini`: the same traffic on other models.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import * as Money from "../Domain/Money.js"
import * as Pricing from "../Pricing.js"
import * as Reprice from "../Pricing/Reprice.js"
import { ledgerLayer } from "./Open.js"
import { parseSince } from "./Shared.js"
import { renderTable } from "./Table.js"

const int = (value: number) => value.toLocaleString("en-US")
const orUnpriced = (value: number | null) => (value === null ? "unpriced" : Money.usd(value))
const difference = (from: number, to: number) => {
  const delta = Money.json(to - from)
  return delta === 0 ? "$0" : `${delta > 0 ? "+" : ""}${Money.usd(delta)}`
}

const pricingFor = (config: Option.Option<string>) =>
  Effect.flatMap(Config.load({ configPath: Option.getOrUndefined(config) }), (c) => Pricing.fromConfig(c, { warnUnpriced: false }))

export const renderReprice = (s: Reprice.RepriceSummary, data: string): string => {
  const lines = [`since ${s.since}, at today's prices`, `price data: ${data}`, ""]
  lines.push(
    `rows with tokens: ${int(s.examined)}; changed: ${int(s.changed)}` +
      (s.nowPriced > 0 ? ` (${int(s.nowPriced)} priced now that were not)` : "") +
      (s.nowUnpriced > 0 ? ` (${int(s.nowUnpriced)} unpriced now)` : ""),
    `total: ${Money.usd(s.oldTotalUsd)} -> ${Money.usd(s.newTotalUsd)} (${difference(s.oldTotalUsd, s.newTotalUsd)})`
  )
  if (s.skippedCascades > 0) lines.push(`${int(s.skippedCascades)} cascade row(s) kept as they are: the ledger has no usage for their earlier steps`)
  if (s.byModel.length > 0) {
    lines.push("", renderTable(
      ["MODEL", "ROWS", "OLD", "NEW", "DIFF"],
      s.byModel.map((m) => [m.model, int(m.rows), Money.usd(m.oldUsd), Money.usd(m.newUsd), difference(m.oldUsd, m.newUsd)])
    ))
  }
  lines.push("", s.dryRun
    ? "dry run: nothing was written"
    : s.changed === 0
    ? "nothing to write"
    : `written: ${int(s.changed)} row(s); a running server counts budgets from the ledger when it starts`)
  return lines.join("\n")
}

/** `tollgate reprice`. */
export const reprice = (flags: {
  readonly since: string
  readonly dryRun: boolean
  readonly json: boolean
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const sinceMs = yield* parseSince(flags.since)
    const pricing = yield* pricingFor(flags.config)
    const summary = yield* Reprice.reprice(pricing, { sinceMs, dryRun: flags.dryRun }).pipe(Effect.provide(ledgerLayer(flags)))
    yield* Console.log(flags.json ? JSON.stringify({ ...summary, data: pricing.data.origin.label }, null, 2) : renderReprice(summary, pricing.data.origin.label))
  })

export const renderSimulation = (s: Reprice.SimulateSummary, data: string): string => {
  const lines = [`since ${s.since}, at today's prices; nothing is sent`, `price data: ${data}`, ""]
  if (s.models.length === 0) {
    lines.push("no requests with tokens in this window")
    return lines.join("\n")
  }
  lines.push(renderTable(
    ["MODEL", "AS", "REQUESTS", "INPUT TOK", "OUTPUT TOK", "BOOKED", "TODAY", "SIMULATED", "DIFF"],
    s.models.map((m) => [
      m.model,
      m.as === m.model ? "-" : m.as,
      int(m.requests),
      int(m.inputTokens),
      int(m.outputTokens),
      Money.usd(m.storedUsd),
      orUnpriced(m.currentUsd),
      orUnpriced(m.simulatedUsd),
      m.currentUsd === null || m.simulatedUsd === null ? "-" : difference(m.currentUsd, m.simulatedUsd)
    ])
  ))
  lines.push(
    "",
    `total today ${Money.usd(s.currentUsd)}, simulated ${Money.usd(s.simulatedUsd)} (${difference(s.currentUsd, s.simulatedUsd)}); booked ${Money.usd(s.storedUsd)}`
  )
  if (s.unpriced > 0) lines.push(`${int(s.unpriced)} request(s) of a model with no price: left out of the totals`)
  if (s.free > 0) lines.push(`${int(s.free)} cache hit(s) and shared answer(s): no provider call, $0 on any model`)
  return lines.join("\n")
}

/** `tollgate simulate`. */
export const simulate = (flags: {
  readonly since: string
  readonly map: Option.Option<HashMap.HashMap<string, string>>
  readonly json: boolean
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const sinceMs = yield* parseSince(flags.since)
    const pricing = yield* pricingFor(flags.config)
    const map = Object.fromEntries(Option.match(flags.map, { onNone: () => [], onSome: (m) => [...HashMap.toEntries(m)] }))
    const summary = yield* Reprice.simulate(pricing, { sinceMs, map }).pipe(Effect.provide(ledgerLayer(flags)))
    yield* Console.log(flags.json ? JSON.stringify({ ...summary, data: pricing.data.origin.label }, null, 2) : renderSimulation(summary, pricing.data.origin.label))
  })
