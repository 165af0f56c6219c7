/** `tollgate stats`: what was spent, from the ledger. */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import * as Money from "../Domain/Money.js"
import type * as Ledger from "../Ledger.js"
import * as Stats from "../Stats.js"
import { ledgerLayer } from "./Open.js"
import { parseSince } from "./Shared.js"
import { renderTable } from "./Table.js"

const int = (value: number) => value.toLocaleString("en-US")
const ms = (value: number | null) => (value === null ? "-" : value < 10 ? value.toFixed(2) : value.toFixed(0))

/** A token count in at most 6 columns: as it is below 10,000, else 3 significant digits and k, M or B. */
export const compact = (value: number): string => {
  if (Math.abs(value) < 10_000) return int(value)
  for (const [unit, size] of [["B", 1e9], ["M", 1e6], ["k", 1e3]] as const) {
    if (Math.abs(value) >= size * 0.9995) {
      const digits = (value / size).toPrecision(3)
      return `${digits.includes(".") ? digits.replace(/\.?0+$/, "") : digits}${unit}`
    }
  }
  return int(value)
}

/**
 * Ten columns of figures beside the group's name, within 100 columns: tokens in k/M/B, and the
 * unpriced count left to the section under the table, which names the models (`--json` has it all).
 */
export const renderStats = (rows: ReadonlyArray<Ledger.StatsRow>, by: string): string => {
  const header = [by.toUpperCase(), "REQS", "ERRS", "IN TOK", "OUT TOK", "CACHED TOK", "COST", "CACHED", "SAVED", "P50 MS", "P95 MS"]
  const body = rows.map((r) => [
    r.group,
    int(r.requests),
    int(r.errors),
    compact(r.inputTokens),
    compact(r.outputTokens),
    compact(r.cachedInputTokens),
    Money.usd(r.costUsd),
    int(r.cacheHits),
    Money.usd(r.savedUsd),
    ms(r.p50LatencyMs),
    ms(r.p95LatencyMs)
  ])
  return renderTable(header, body)
}

/** The line `stats` prints when the writer lost rows: their requests and their spend are not in any total. */
export const renderLosses = (lost: Ledger.Losses): string => {
  const at = (ms: number | null) => (ms === null ? "?" : new Date(ms).toISOString())
  return `rows lost: ${int(lost.rows)} since ${at(lost.first)} (last ${at(lost.last)}): the ledger could not be written, ` +
    `so those requests and their cost are in no total below\n`
}

/** The line `stats` prints when cloud ingest is on: what the receiver does not have yet. */
export const renderBacklog = (ingest: { readonly backlog: number; readonly oldestUnsent: string | null }): string =>
  ingest.backlog === 0
    ? "cloud ingest: every row sent\n"
    : `cloud ingest: ${int(ingest.backlog)} row(s) not yet sent (oldest ${ingest.oldestUnsent ?? "?"})\n`

export interface StatsFlags {
  readonly since: string
  readonly by: Option.Option<Ledger.GroupBy>
  readonly json: boolean
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}

export const run = (flags: StatsFlags) =>
  Effect.gen(function*() {
    const sinceMs = yield* parseSince(flags.since)
    const by = flags.by._tag === "Some" ? flags.by.value : undefined
    // The backlog is shown when the configuration sends the ledger (a config that cannot be read
    // here, beside --db, just leaves it out).
    const cloud = yield* Effect.option(Config.load({ configPath: Option.getOrUndefined(flags.config) }))
    const ingest = Option.isSome(cloud) && cloud.value.cloud !== undefined
    const summary = yield* Stats.summary({ sinceMs, by, ingest }).pipe(Effect.provide(ledgerLayer(flags)))
    if (flags.json) return yield* Console.log(JSON.stringify(summary, null, 2))
    const { lost, rows, unpriced } = summary
    // Whatever the window: totals that miss rows must say so.
    if (lost.rows > 0) yield* Console.log(renderLosses(lost))
    if (summary.ingest !== undefined) yield* Console.log(renderBacklog(summary.ingest))
    if (rows.length === 0) return yield* Console.log(`no requests since ${new Date(sinceMs).toISOString()}`)
    yield* Console.log(`since ${new Date(sinceMs).toISOString()}\n`)
    yield* Console.log(renderStats(rows, by ?? "all"))
    if (unpriced.length > 0) {
      const count = unpriced.reduce((n, r) => n + r.requests, 0)
      yield* Console.log(`\n${int(count)} request(s) used models with no known price: their cost is not in COST.\nAdd them under pricing: in tollgate.yaml.\n`)
      yield* Console.log(renderTable(
        ["UNPRICED MODEL", "REQUESTS", "INPUT TOK", "OUTPUT TOK"],
        unpriced.map((r) => [r.model, int(r.requests), int(r.inputTokens), int(r.outputTokens)])
      ))
    }
    const estimated = rows.reduce((n, r) => n + r.estimated, 0)
    if (estimated > 0) yield* Console.log(`${int(estimated)} request(s) had no usage from the provider; their tokens are estimated.`)
  })
