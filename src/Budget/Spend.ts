/**
 * Spend per open window, rebuilt from the ledger (`requests.cost_usd` by `ts`, `client_hash`,
 * `project`, `session`) when the budget starts: a restart keeps what was spent, and since
 * reservations live only in memory, a crashed process leaks none.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import type { Reset } from "./Control.js"
import { type CompiledLimit, type Counter, counterKey } from "./Reservations.js"
import type { Scope, Window } from "./Settings.js"
import { isCalendar, type Zone } from "./Windows.js"

const COLUMN: Record<Scope, string> = {
  global: "''",
  client: "client_hash",
  project: "project",
  session: "session"
}

const matches = (reset: Reset, scope: Scope, window: Window) =>
  (reset.scope === null || reset.scope === scope) && (reset.window === null || reset.window === window)

export const rebuild = (options: {
  readonly limits: ReadonlyArray<CompiledLimit>
  readonly zone: Zone
  readonly resets: ReadonlyArray<Reset>
  readonly now: number
  readonly sessionTtl: number
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { now, resets, zone } = options
    const counters: Array<readonly [string, Counter]> = []
    const groups = new Map<string, { scope: Scope; window: Window }>()
    for (const limit of options.limits) {
      if (limit.window !== "perRequest") groups.set(`${limit.scope}|${limit.window}`, { scope: limit.scope, window: limit.window })
    }
    for (const { scope, window } of groups.values()) {
      const bounds = isCalendar(window) ? zone.bounds(window, now) : { start: 0, end: Infinity }
      const column = sql.literal(COLUMN[scope])
      // Grouped by the output name: Postgres refuses a constant (the global scope's '') in GROUP BY.
      const relevant = resets.filter((r) => matches(r, scope, window) && r.at >= bounds.start)
      const resetAll = Math.max(bounds.start, ...relevant.filter((r) => r.key === null).map((r) => r.at))
      const notNull = scope === "global" ? sql.literal("1 = 1") : sql.literal(`${COLUMN[scope]} IS NOT NULL`)
      const rows = window === "session"
        ? yield* sql<{ value: string; spent: number | null; last: number }>`
            SELECT session AS value, SUM(cost_usd) AS spent, MAX(ts) AS last FROM requests
            WHERE session IN (SELECT DISTINCT session FROM requests WHERE ts >= ${now - options.sessionTtl} AND session IS NOT NULL)
              AND ts >= ${resetAll}
            GROUP BY session`
        : yield* sql<{ value: string; spent: number | null; last: number }>`
            SELECT ${column} AS value, SUM(cost_usd) AS spent, MAX(ts) AS last FROM requests
            WHERE ts >= ${resetAll} AND ${notNull}
            GROUP BY value`
      const spentBy = new Map(rows.map((row) => [row.value, { spent: row.spent ?? 0, last: row.last }]))
      // A reset of one key later than the window's start (or a reset of all) counts from then.
      for (const r of relevant) {
        if (r.key === null || r.at <= resetAll) continue
        const since = Math.max(r.at, ...relevant.filter((o) => o.key === r.key).map((o) => o.at))
        const one = yield* sql<{ spent: number | null; last: number | null }>`
          SELECT SUM(cost_usd) AS spent, MAX(ts) AS last FROM requests WHERE ts >= ${since} AND ${column} = ${r.key}`
        spentBy.set(r.key, { spent: one[0]?.spent ?? 0, last: one[0]?.last ?? now })
      }
      for (const [value, { last, spent }] of spentBy) {
        counters.push([counterKey(scope, window, value, bounds.start), {
          scope,
          window,
          value,
          start: bounds.start,
          end: bounds.end,
          spent,
          reserved: 0,
          touched: last
        }])
      }
    }
    return counters
  })
