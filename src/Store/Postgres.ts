/**
 * The ledger's client on PostgreSQL (`database.url`), through `@effect/sql-pg`. Loaded only when a
 * URL is configured (`Store.ts` imports this module dynamically), so a SQLite ledger never loads
 * the `pg` driver.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import pg from "pg"

const INT8 = 20
const NUMERIC = 1700

/**
 * `pg` reads BIGINT and NUMERIC as strings (they may exceed 2^53). The ledger's are milliseconds,
 * ids, counts and sums of them, far below that, and every query is written to get numbers back
 * as SQLite gives them: `COUNT(*)` and `SUM` of an integer column are BIGINT or NUMERIC here.
 */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    (oid === INT8 || oid === NUMERIC) && format !== "binary"
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser
}

/** A pool on `url`; building it checks the connection (5 s at most). */
export const client = (url: Redacted.Redacted<string>): Layer.Layer<SqlClient.SqlClient, SqlError> =>
  PgClient.layer({ url, applicationName: "tollgate", connectTimeout: "5 seconds", types })
