/**
 * How `tollgate budget set/reset/unblock` (a separate process) reaches a running server: each
 * command appends a row to `budget_control` in the ledger file; the server reads the rows after
 * the last one it applied every `budget.refreshInterval` (and all of them at start). Blocks the
 * server raises go the other way, into `budget_blocks`, so `status` can show them from outside.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Action, Scope, Window } from "./Settings.js"

export interface Override {
  readonly scope: Scope
  readonly key: string | undefined
  readonly window: Window
  /** `null`: the override removes the limit with this scope, key and window. */
  readonly usd: number | null
  readonly onBreach: Action | undefined
}

export interface Reset {
  readonly at: number
  readonly scope: Scope | null
  readonly key: string | null
  readonly window: Window | null
}

export interface ControlBatch {
  readonly lastId: number
  readonly overrides: ReadonlyArray<Override>
  readonly resets: ReadonlyArray<Reset>
  readonly unblocks: ReadonlyArray<string>
}

interface ControlRow {
  readonly id: number
  readonly ts: number
  readonly kind: "set" | "reset" | "unblock"
  readonly scope: Scope | null
  readonly scope_key: string | null
  readonly time_window: Window | null
  readonly usd: number | null
  readonly on_breach: Action | null
  readonly session: string | null
}

const append = (row: Omit<ControlRow, "id" | "ts">) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ts = yield* Clock.currentTimeMillis
    yield* sql`INSERT INTO budget_control ${sql.insert({ ts, ...row })}`
  })

/** Adds or replaces the limit with this scope, key and window (`usd: null` removes it). */
export const setLimit = (override: Override) =>
  append({
    kind: "set",
    scope: override.scope,
    scope_key: override.key ?? null,
    time_window: override.window,
    usd: override.usd,
    on_breach: override.onBreach ?? null,
    session: null
  })

/** Spend in the matching open windows counts from now on (`null` matches any). */
export const reset = (match: Omit<Reset, "at">) =>
  append({ kind: "reset", scope: match.scope, scope_key: match.key, time_window: match.window, usd: null, on_breach: null, session: null })

/** Lifts an anomaly block on a session; returns whether the session was blocked. */
export const unblock = (session: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const active = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM budget_blocks WHERE session = ${session} AND until > ${now}`
    yield* sql`DELETE FROM budget_blocks WHERE session = ${session}`
    yield* append({ kind: "unblock", scope: null, scope_key: null, time_window: null, usd: null, on_breach: null, session })
    return (active[0]?.n ?? 0) > 0
  })

/** Control rows after `afterId`, in order. */
export const readAfter = (afterId: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<ControlRow>`SELECT * FROM budget_control WHERE id > ${afterId} ORDER BY id`
    const overrides: Array<Override> = []
    const resets: Array<Reset> = []
    const unblocks: Array<string> = []
    for (const row of rows) {
      if (row.kind === "set" && row.scope !== null && row.time_window !== null) {
        overrides.push({
          scope: row.scope,
          key: row.scope_key ?? undefined,
          window: row.time_window,
          usd: row.usd,
          onBreach: row.on_breach ?? undefined
        })
      } else if (row.kind === "reset") {
        resets.push({ at: row.ts, scope: row.scope, key: row.scope_key, window: row.time_window })
      } else if (row.kind === "unblock" && row.session !== null) {
        unblocks.push(row.session)
      }
    }
    const batch: ControlBatch = { lastId: rows[rows.length - 1]?.id ?? afterId, overrides, resets, unblocks }
    return batch
  })

/** Identity of a limit for overrides. */
export const limitId = (limit: { readonly scope: Scope; readonly key: string | undefined; readonly window: Window }) =>
  `${limit.scope}|${limit.key ?? "*"}|${limit.window}`

/** The configured limits with the overrides applied in order. */
export const applyOverrides = <L extends { readonly scope: Scope; readonly key: string | undefined; readonly window: Window; readonly usd: number; readonly onBreach: Action | undefined }>(
  limits: ReadonlyArray<L>,
  overrides: ReadonlyArray<Override>
): ReadonlyArray<{ readonly scope: Scope; readonly key: string | undefined; readonly window: Window; readonly usd: number; readonly onBreach: Action | undefined }> => {
  const byId = new Map<string, { scope: Scope; key: string | undefined; window: Window; usd: number; onBreach: Action | undefined }>()
  for (const limit of limits) byId.set(limitId(limit), { ...limit })
  for (const o of overrides) {
    if (o.usd === null) byId.delete(limitId(o))
    else byId.set(limitId(o), { scope: o.scope, key: o.key, window: o.window, usd: o.usd, onBreach: o.onBreach })
  }
  return [...byId.values()]
}

export interface BlockRow {
  readonly session: string
  readonly until: number
  readonly anomaly: string
}

export const activeBlocks = (now: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<BlockRow>`SELECT session, until, anomaly FROM budget_blocks WHERE until > ${now} ORDER BY session`)
