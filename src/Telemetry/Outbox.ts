/**
 * Cloud ingest's outbox, which is the ledger itself: a row not yet sent has `ingested_at` NULL,
 * and it is set only once the receiver has answered 2xx for the batch holding that row. Nothing
 * else is kept, in memory or on disk, however long the receiver is away. Among replicas on one
 * ledger, one sends at a time: whoever holds the `ingest_lease` row. The same queries on SQLite
 * and PostgreSQL.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { COLUMNS, type LedgerRow } from "../Domain/LedgerEvent.js"

/** A ledger row as sent: its id in the ledger and the ledger's own fields. */
export type OutboxRow = { readonly id: number } & LedgerRow

const SELECTED = ["id", ...COLUMNS].join(", ")

/**
 * The index of the rows not yet sent, made when ingest is first turned on (with ingest off every
 * row is unsent, so an index made by a migration would grow with every row for nothing). Replicas
 * starting together may race to make it; whoever loses finds it made.
 */
export const prepare: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => {
    const create = sql`CREATE INDEX IF NOT EXISTS requests_unsent ON requests (id) WHERE ingested_at IS NULL`
    return Effect.retry(create, { times: 2 })
  }
)

/** The ledger's id (`meta.ledger_id`, made here if the writer has not made it: a Postgres ledger). */
export const ledgerId: Effect.Effect<string, SqlError.SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO meta (key, value) VALUES ('ledger_id', ${randomUUID()}) ON CONFLICT (key) DO NOTHING`
  const rows = yield* sql<{ value: string }>`SELECT value FROM meta WHERE key = 'ledger_id'`
  return rows[0]!.value
})

/** The oldest `limit` rows not yet sent, by id. */
export const pending = (limit: number): Effect.Effect<ReadonlyArray<OutboxRow>, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<OutboxRow>`SELECT ${sql.literal(SELECTED)} FROM requests WHERE ingested_at IS NULL ORDER BY id LIMIT ${limit}`
  )

/** Marks these rows sent (at `at`, Unix ms): after the receiver's 2xx, never before. */
export const markSent = (ids: ReadonlyArray<number>, at: number): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE requests SET ingested_at = ${at} WHERE id IN ${sql.in(ids)} AND ingested_at IS NULL`)

export interface Backlog {
  /** Rows not yet sent. */
  readonly rows: number
  /** The time of the oldest of them (Unix ms), or null when there are none. */
  readonly oldest: number | null
}

/** What is waiting to be sent. */
export const backlog: Effect.Effect<Backlog, SqlError.SqlError, SqlClient.SqlClient> = Effect.map(
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ n: number; oldest: number | null }>`SELECT COUNT(*) AS n, MIN(ts) AS oldest FROM requests WHERE ingested_at IS NULL`
  ),
  (rows) => ({ rows: Number(rows[0]?.n ?? 0), oldest: rows[0]?.oldest ?? null })
)

const LEASE = "cloud"

/**
 * Takes the lease for `ttl` ms, or renews it, unless another owner holds one that has not run
 * out. Whether `owner` holds it now.
 */
export const claim = (owner: string, now: number, ttl: number): Effect.Effect<boolean, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`
      INSERT INTO ingest_lease (name, owner, expires_at) VALUES (${LEASE}, ${owner}, ${now + ttl})
      ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE ingest_lease.owner = excluded.owner OR ingest_lease.expires_at < ${now}`
    const rows = yield* sql<{ owner: string }>`SELECT owner FROM ingest_lease WHERE name = ${LEASE}`
    return rows[0]?.owner === owner
  })

/** Gives the lease up (at shutdown), so that the next sender need not wait for it to run out. */
export const release = (owner: string): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM ingest_lease WHERE name = ${LEASE} AND owner = ${owner}`)
