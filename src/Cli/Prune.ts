/**
 * `tollgate prune --older-than 90d [--execute]`: delete old ledger rows (the `requests` table)
 * in batches, then VACUUM so the file shrinks. A dry run by default.
 *
 * Budget windows are rebuilt at start from recent rows only, and the longest calendar window is a
 * month: a bound shorter than 32 days could cut into an open monthly window and lower its spend,
 * so it needs `--force`.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { ledgerLayer } from "./Open.js"
import { configOption, dbOption, UsageError } from "./Shared.js"

const DAY_MS = 86_400_000
/** A monthly window is at most 31 days long; one more day covers a timezone ahead of UTC. */
export const MIN_DAYS = 32
/** Rows per DELETE: each batch is its own short write, so a running server's writer is not held up for long. */
const BATCH = 5_000

const UNITS: Record<string, number> = { h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS }

/** `90d`, `12w`, `36h` as milliseconds. */
export const parseAge = (text: string): Effect.Effect<number, UsageError> => {
  const match = /^(\d+)\s*([hdw])$/.exec(text.trim())
  return match === null
    ? Effect.fail(new UsageError({ message: `--older-than: expected an age such as 90d, 12w or 36h; got "${text}"` }))
    : Effect.succeed(Number(match[1]) * UNITS[match[2]!]!)
}

const int = (n: number) => n.toLocaleString("en-US")

export const prune = Command.make(
  "prune",
  {
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("Delete ledger rows older than this age: 90d, 12w (at least 32d unless --force)")
    ),
    execute: Options.boolean("execute").pipe(
      Options.withDescription("Delete them (in batches, then VACUUM); without it, only say how many would go")
    ),
    force: Options.boolean("force").pipe(
      Options.withDescription("Allow a bound shorter than 32 days, which can cut into an open monthly budget window")
    ),
    config: configOption,
    db: dbOption
  },
  (flags) =>
    Effect.gen(function*() {
      const age = yield* parseAge(flags.olderThan)
      if (age < MIN_DAYS * DAY_MS && !flags.force) {
        return yield* new UsageError({
          message: `--older-than ${flags.olderThan} is shorter than ${MIN_DAYS} days: budgets rebuild their open monthly window ` +
            `from the ledger at start, so rows that recent must stay (--force to prune anyway)`
        })
      }
      const bound = (yield* Clock.currentTimeMillis) - age
      const since = new Date(bound).toISOString()
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [counted] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM requests WHERE ts < ${bound}`
        const total = counted?.n ?? 0
        if (total === 0) return yield* Console.log(`no ledger rows before ${since}: nothing to prune`)
        if (!flags.execute) {
          return yield* Console.log(`would delete ${int(total)} ledger row(s) before ${since} (run again with --execute to delete them)`)
        }
        let deleted = 0
        while (deleted < total) {
          yield* sql`DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < ${bound} ORDER BY id LIMIT ${BATCH})`
          deleted = Math.min(total, deleted + BATCH)
          yield* Console.error(`deleted ${int(deleted)} of ${int(total)}`)
        }
        yield* Console.error("vacuuming the ledger file")
        yield* sql`VACUUM`
        yield* Console.log(`deleted ${int(total)} ledger row(s) before ${since}`)
      }).pipe(Effect.catchTag("SqlError", Effect.die), Effect.provide(ledgerLayer(flags)))
    })
).pipe(Command.withDescription(
  "Delete ledger rows (requests) older than --older-than, in batches, then VACUUM the file; without --execute, only " +
    "count them. Refuses a bound under 32 days unless --force (a monthly budget window must stay whole)"
))
