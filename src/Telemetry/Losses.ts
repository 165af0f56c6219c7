/**
 * Rows the writer lost, kept in the ledger's `meta` table: the total, and when the first and the
 * last loss happened. A loss is added in the transaction of the next batch that can be written,
 * so the count survives a restart; what is lost at exit, with the ledger unwritable, is only
 * logged.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

const TOTAL = "ledger_rows_lost"
const FIRST = "ledger_rows_lost_first"
const LAST = "ledger_rows_lost_last"

export interface Losses {
  readonly rows: number
  /** Unix ms of the first loss; `null` when none. */
  readonly first: number | null
  readonly last: number | null
}

/**
 * The statements (text with `?` placeholders, parameters) that add `rows` lost between `first`
 * and `last` to `meta` (the writer numbers the placeholders for its engine).
 */
export const additions = (rows: number, first: number, last: number): ReadonlyArray<readonly [string, ReadonlyArray<unknown>]> => [
  [
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
    [TOTAL, String(rows)]
  ],
  ["INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [FIRST, String(first)]],
  ["INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [LAST, String(last)]]
]

/** What the ledger says was lost. */
export const read = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ key: string; value: string }>`SELECT key, value FROM meta WHERE key IN (${TOTAL}, ${FIRST}, ${LAST})`
  const value = (key: string) => {
    const found = rows.find((r) => r.key === key)
    return found === undefined ? null : Number(found.value)
  }
  return { rows: value(TOTAL) ?? 0, first: value(FIRST), last: value(LAST) } satisfies Losses
})
