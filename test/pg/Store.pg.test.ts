/**
 * The ledger on a real PostgreSQL: the migrations on an empty database, and the writer's rows read
 * back with the same queries as on SQLite. Skipped, saying why, where PostgreSQL is not reachable.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted, Stream } from "effect"
import * as Cache from "../../src/Cache.js"
import * as Config from "../../src/Config.js"
import * as Redis from "../../src/Redis.js"
import * as Ledger from "../../src/Ledger.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import * as Pg from "../support/Postgres.js"
import { sampleEvent } from "../support/Events.js"

describe.skipIf(Pg.unreachable !== undefined)(`the ledger on PostgreSQL${Pg.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable})`}`, () => {
  it.live("migrates an empty database: every table, with Postgres's types for milliseconds, money and ids", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const context = yield* Layer.build(Store.layerPostgres(Redacted.make(db.url)))
      const client = yield* Effect.provide(SqlClient.SqlClient, context)
      const tables = yield* client<{ table_name: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
      assert.deepStrictEqual(tables.map((t) => t.table_name), [
        "budget_alerts", "budget_blocks", "budget_control", "cache_entries", "ingest_lease", "meta", "requests", "tollgate_migrations"
      ])
      const columns = yield* client<{ column_name: string; data_type: string }>`
        SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'requests'`
      const type = (name: string) => columns.find((c) => c.column_name === name)?.data_type
      assert.strictEqual(type("id"), "bigint")
      assert.strictEqual(type("ts"), "bigint")
      assert.strictEqual(type("cost_usd"), "double precision")
      assert.strictEqual(type("saved_usd"), "double precision")
      assert.strictEqual(type("stream"), "integer")
      assert.strictEqual(type("ingested_at"), "bigint")
      const migrations = yield* client<{ n: number }>`SELECT COUNT(*) AS n FROM tollgate_migrations`
      assert.strictEqual(migrations[0]!.n, 8)
      // A second start on the same database migrates nothing and keeps the rows.
      yield* Layer.build(Store.layerPostgres(Redacted.make(db.url)))
    }).pipe(Effect.scoped))

  it.live("the writer's rows, read back by stats and export", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const context = yield* Layer.build(Telemetry.layerWith({}).pipe(Layer.provideMerge(Store.layerPostgres(Redacted.make(db.url)))))
      const telemetry = yield* Effect.provide(Telemetry.Telemetry, context)
      for (let i = 0; i < 1000; i++) yield* telemetry.record(sampleEvent(i))
      yield* telemetry.flush
      const stats = yield* Ledger.stats({ sinceMs: 0, by: undefined }).pipe(Effect.provide(context))
      assert.strictEqual(stats[0]!.requests, 1000)
      assert.closeTo(stats[0]!.costUsd, 0.027, 1e-9)
      const rows = yield* Stream.runCollect(Ledger.rows({ sinceMs: 0, pageSize: 300 })).pipe(Effect.provide(context))
      assert.strictEqual(rows.length, 1000)
    }).pipe(Effect.scoped))
  it.live("the persisted cache tier (BYTEA), encrypted, survives a restart and counts like SQLite's", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const cacheOn = (key: string) =>
        Cache.layerWithoutDependencies.pipe(
          Layer.provide(Redis.layer),
          Layer.provideMerge(Store.layerPostgres(Redacted.make(db.url))),
          Layer.provide(Config.layerFrom({ cache: { persist: true, encrypt: true } }).pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["TOLLGATE_CACHE_KEY", key]]))))
          ))
        )
      const answer: Cache.CachedAnswer = {
        kind: "json",
        json: JSON.stringify({ text: "a completion kept only encrypted" }),
        events: [],
        provider: "openai",
        model: "gpt-4o-mini",
        usage: { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" },
        costUsd: 0.001
      } as unknown as Cache.CachedAnswer
      yield* Effect.scoped(Effect.flatMap(Cache.Cache, (c) => c.set("k", answer)).pipe(Effect.provide(cacheOn("aa".repeat(32)))))
      const again = yield* Effect.scoped(Effect.flatMap(Cache.Cache, (c) => c.get("k")).pipe(Effect.provide(cacheOn("aa".repeat(32)))))
      assert.include(Option.getOrThrow(again).json, "a completion kept only encrypted")
      const stored = yield* Effect.scoped(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ data: Uint8Array; bytes: number; expired: number }>`
          SELECT data, length(data) AS bytes, SUM(CASE WHEN expires_at <= 0 THEN 1 ELSE 0 END) AS expired FROM cache_entries GROUP BY data`
      ).pipe(Effect.provide(Store.layerPostgres(Redacted.make(db.url)))))
      assert.strictEqual(stored.length, 1)
      assert.instanceOf(stored[0]!.data, Uint8Array)
      assert.strictEqual(stored[0]!.bytes, stored[0]!.data.length)
      assert.strictEqual(stored[0]!.expired, 0)
      assert.notInclude(Buffer.from(stored[0]!.data).toString("latin1"), "kept only encrypted")
    }).pipe(Effect.scoped))
})
