/**
 * The ledger on a real PostgreSQL: the migrations on an empty database, and the writer's rows read
 * back with the same queries as on SQLite. Skipped, saying why, where PostgreSQL is not reachable.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Stream } from "effect"
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
        "budget_alerts", "budget_blocks", "budget_control", "cache_entries", "meta", "requests", "tollgate_migrations"
      ])
      const columns = yield* client<{ column_name: string; data_type: string }>`
        SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'requests'`
      const type = (name: string) => columns.find((c) => c.column_name === name)?.data_type
      assert.strictEqual(type("id"), "bigint")
      assert.strictEqual(type("ts"), "bigint")
      assert.strictEqual(type("cost_usd"), "double precision")
      assert.strictEqual(type("saved_usd"), "double precision")
      assert.strictEqual(type("stream"), "integer")
      const migrations = yield* client<{ n: number }>`SELECT COUNT(*) AS n FROM tollgate_migrations`
      assert.strictEqual(migrations[0]!.n, 7)
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
})
