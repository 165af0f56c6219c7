/** `tollgate stats`: what was spent, from the ledger. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Money from "../Domain/Money.js"
import * as Ledger from "../Ledger.js"
import { configOption, dbOption, ledgerLayer, parseSince, jsonOption } from "./Shared.js"

const int = (value: number) => value.toLocaleString("en-US")
const ms = (value: number | null) => (value === null ? "-" : value < 10 ? value.toFixed(2) : value.toFixed(0))

/** A plain aligned table: first column left, the rest right. */
export const renderTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

export const renderStats = (rows: ReadonlyArray<Ledger.StatsRow>, by: string): string => {
  const header = [by.toUpperCase(), "REQUESTS", "ERRORS", "INPUT TOK", "OUTPUT TOK", "CACHED TOK", "COST", "CACHED", "SAVED", "UNPRICED", "P50 MS", "P95 MS"]
  const body = rows.map((r) => [
    r.group,
    int(r.requests),
    int(r.errors),
    int(r.inputTokens),
    int(r.outputTokens),
    int(r.cachedInputTokens),
    Money.usd(r.costUsd),
    int(r.cacheHits),
    Money.usd(r.savedUsd),
    int(r.unpriced),
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

export const stats = Command.make(
  "stats",
  {
    since: Options.text("since").pipe(
      Options.withDescription("Window to report: 30m, 24h, 7d, a date (2025-06-01) or all"),
      Options.withDefault("24h")
    ),
    by: Options.choice("by", ["model", "provider", "route", "day"]).pipe(
      Options.withDescription("Break the totals down by this column"),
      Options.optional
    ),
    json: jsonOption,
    config: configOption,
    db: dbOption
  },
  (flags) =>
    Effect.gen(function*() {
      const sinceMs = yield* parseSince(flags.since)
      const by = flags.by._tag === "Some" ? flags.by.value : undefined
      const [rows, unpriced, lost] = yield* Effect.all([Ledger.stats({ sinceMs, by }), Ledger.unpriced({ sinceMs }), Ledger.losses]).pipe(
        Effect.provide(ledgerLayer(flags))
      )
      if (flags.json) {
        return yield* Console.log(JSON.stringify({
          since: new Date(sinceMs).toISOString(),
          by: by ?? null,
          rows: rows.map((r) => ({ ...r, costUsd: Money.json(r.costUsd), savedUsd: Money.json(r.savedUsd) })),
          unpriced,
          lost
        }, null, 2))
      }
      // Whatever the window: totals that miss rows must say so.
      if (lost.rows > 0) yield* Console.log(renderLosses(lost))
      if (rows.length === 0) return yield* Console.log(`no requests since ${new Date(sinceMs).toISOString()}`)
      yield* Console.log(`since ${new Date(sinceMs).toISOString()}\n`)
      yield* Console.log(renderStats(rows, by ?? "all"))
      if (unpriced.length > 0) {
        const count = unpriced.reduce((n, r) => n + r.requests, 0)
        yield* Console.log(`\n${int(count)} request(s) used models with no known price: their cost is not in COST. Add them under pricing: in tollgate.yaml.\n`)
        yield* Console.log(renderTable(
          ["UNPRICED MODEL", "REQUESTS", "INPUT TOK", "OUTPUT TOK"],
          unpriced.map((r) => [r.model, int(r.requests), int(r.inputTokens), int(r.outputTokens)])
        ))
      }
      const estimated = rows.reduce((n, r) => n + r.estimated, 0)
      if (estimated > 0) yield* Console.log(`${int(estimated)} request(s) had no usage from the provider; their tokens are estimated.`)
    })
).pipe(Command.withDescription("Show requests, errors, tokens, cost and latency from the ledger"))
