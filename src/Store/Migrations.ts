/**
 * Ledger schema, in order. A migration is never edited once released: add the next one.
 * The ledger holds metadata only: no column can hold prompt or completion text, tool arguments,
 * request bodies or keys.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Dialect from "./Dialect.js"

/**
 * The engine's words for the column types (`Store/Dialect.ts`): on SQLite the very text these
 * migrations always had, so a ledger file created before Postgres was supported is unchanged.
 */
const types = Effect.map(SqlClient.SqlClient, (sql) => {
  const t = Dialect.of(sql).types
  return { sql, id: sql.literal(t.id), millis: sql.literal(t.millis), real: sql.literal(t.real), blob: sql.literal(t.blob) }
})

export const migrations = {
  "0001_ledger": Effect.gen(function*() {
    const { id, millis, real, sql } = yield* types
    yield* sql`
      CREATE TABLE requests (
        id ${id},
        ts ${millis} NOT NULL,
        request_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        route TEXT,
        rule TEXT,
        provider TEXT,
        requested_model TEXT,
        served_model TEXT,
        stream INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_type TEXT,
        attempts INTEGER NOT NULL,
        failover INTEGER NOT NULL,
        cache_status TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_input_tokens INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens INTEGER,
        cost_usd ${real},
        priced INTEGER NOT NULL,
        usage_source TEXT,
        latency_ms ${real},
        ttfb_ms ${real},
        aborted INTEGER NOT NULL,
        client_hash TEXT,
        user_agent TEXT,
        project TEXT,
        session TEXT
      )`
    yield* sql`CREATE INDEX requests_ts ON requests (ts)`
    yield* sql`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`
  }),
  "0002_attempt_trail": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE requests ADD COLUMN attempt_errors TEXT`
    yield* sql`ALTER TABLE requests ADD COLUMN skipped TEXT`
  }),
  "0003_cache": Effect.gen(function*() {
    const { blob, millis, real, sql } = yield* types
    // What a cache hit or a coalesced answer would have cost: the money the cache saved.
    yield* sql`ALTER TABLE requests ADD COLUMN saved_usd ${real}`
    // Persisted cache tier: gzip'd (and optionally AES-256-GCM encrypted) answers.
    yield* sql`CREATE TABLE cache_entries (key TEXT PRIMARY KEY, expires_at ${millis} NOT NULL, data ${blob} NOT NULL)`
    yield* sql`CREATE INDEX cache_entries_expires ON cache_entries (expires_at)`
  }),
  "0004_usage_detail": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // 1-hour cache writes are billed at twice the input rate (5-minute ones at 1.25x): `cost explain`
    // needs the split to show how a cost was made.
    yield* sql`ALTER TABLE requests ADD COLUMN cache_write_1h_tokens INTEGER`
  }),
  "0005_budget": Effect.gen(function*() {
    const { id, millis, real, sql } = yield* types
    // Alerts raised by the budget (threshold, breach, anomaly); one row per dedupe key.
    yield* sql`
      CREATE TABLE budget_alerts (
        id ${id},
        ts ${millis} NOT NULL,
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        time_window TEXT,
        window_start ${millis},
        threshold ${real},
        limit_usd ${real},
        spent_usd ${real},
        anomaly TEXT,
        message TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        delivered_at ${millis},
        attempts INTEGER NOT NULL DEFAULT 0
      )`
    yield* sql`CREATE INDEX budget_alerts_ts ON budget_alerts (ts)`
    // Changes from `tollgate budget set/reset/unblock`, read by a running server on a schedule.
    yield* sql`
      CREATE TABLE budget_control (
        id ${id},
        ts ${millis} NOT NULL,
        kind TEXT NOT NULL,
        scope TEXT,
        scope_key TEXT,
        time_window TEXT,
        usd ${real},
        on_breach TEXT,
        session TEXT
      )`
    // Sessions stopped by an anomaly rule, until `until` or `tollgate budget unblock`.
    yield* sql`CREATE TABLE budget_blocks (session TEXT PRIMARY KEY, until ${millis} NOT NULL, anomaly TEXT NOT NULL, ts ${millis} NOT NULL)`
    // Rebuilding a session's spend at start reads by session.
    yield* sql`CREATE INDEX requests_session ON requests (session)`
  }),
  "0006_routing": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // A cascade's earlier steps (model:outcome:usd); the row's cost_usd is the total.
    yield* sql`ALTER TABLE requests ADD COLUMN cascade TEXT`
    // The budget served a cheaper model than the router chose: the one it replaced.
    yield* sql`ALTER TABLE requests ADD COLUMN downgraded_from TEXT`
  }),
  "0007_session_index_partial": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Most rows have no session: an index of only the rows that do is all that reading by session
    // needs, and a row without one no longer writes an index entry.
    yield* sql`DROP INDEX requests_session`
    yield* sql`CREATE INDEX requests_session ON requests (session) WHERE session IS NOT NULL`
  }),
  "0008_cloud_ingest": Effect.gen(function*() {
    const { millis, sql } = yield* types
    // Cloud ingest's outbox is the ledger itself: a row is sent until the receiver's 2xx marks it.
    yield* sql`ALTER TABLE requests ADD COLUMN ingested_at ${millis}`
    // The index of the rows not yet sent is made when ingest is first turned on (`Telemetry/Outbox.ts`):
    // with ingest off every row is unsent, and each would write an index entry for nothing.
    // One sender per ledger among replicas: whoever holds the lease (renewed while it sends).
    yield* sql`CREATE TABLE ingest_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at ${millis} NOT NULL)`
  })
}
