/**
 * One set of queries, two engines: the same rows, alerts and budget control written into a SQLite
 * file and a Postgres database, then every ledger query tollgate runs (stats by each grouping,
 * the dashboard's buckets of time and tail, export, unpriced, cost explain's lookup, lost rows,
 * alerts, budget control and blocks, the budget's spend rebuild, cloud ingest's outbox and lease)
 * read from both and compared. Skipped, saying why, where PostgreSQL is
 * not reachable.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
import * as Alerts from "../../src/Budget/Alerts.js"
import * as Control from "../../src/Budget/Control.js"
import type { CompiledLimit } from "../../src/Budget/Reservations.js"
import { AlertSettings } from "../../src/Budget/Settings.js"
import * as Spend from "../../src/Budget/Spend.js"
import { Zone } from "../../src/Budget/Windows.js"
import * as Series from "../../src/Admin/Series.js"
import * as Ledger from "../../src/Ledger.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import * as Outbox from "../../src/Telemetry/Outbox.js"
import { variedEvent } from "../support/Events.js"
import * as Pg from "../support/Postgres.js"
import { tempDbPath } from "../support/Tollgate.js"

const N = 400
const BASE = Date.UTC(2026, 10, 3, 22)
const NOW = BASE + N * 97_000

const alert = (i: number, block: boolean): Alerts.Alert => ({
  ts: BASE + i * 1000,
  kind: block ? "anomaly" : "threshold",
  scope: block ? `session "sess${i}"` : "global",
  window: block ? "60s" : "daily",
  windowStart: block ? null : BASE,
  thresholdPercent: block ? null : 50 + i,
  limitUsd: block ? null : 1.5,
  spentUsd: block ? null : 0.75 + i / 100,
  anomaly: block ? "velocity" : null,
  message: `alert ${i}`,
  dedupeKey: `key${i}`,
  block: block ? { session: `sess${i}`, until: NOW + i * 60_000 } : null
})

/** Writes the same ledger through tollgate's own writers: rows, alerts (one twice), budget control. */
const fill = Effect.gen(function*() {
  const telemetry = yield* Telemetry.Telemetry
  for (let i = 0; i < N; i++) yield* telemetry.record(variedEvent(i, BASE))
  yield* telemetry.flush
  const alerts = yield* Alerts.Alerts
  yield* alerts.emit([alert(1, false), alert(2, true), alert(3, false), alert(1, false), alert(4, true)])
  yield* alerts.flush
  yield* Control.setLimit({ scope: "global", key: undefined, window: "daily", usd: 2, onBreach: "block" })
  yield* Control.setLimit({ scope: "project", key: "proj1", window: "monthly", usd: 0.5, onBreach: undefined })
  yield* Control.reset({ scope: "project", key: "proj0", window: null })
  yield* Control.unblock("sess2")
})

const limits: ReadonlyArray<CompiledLimit> = [
  { scope: "global", key: undefined, window: "daily", usd: 5, onBreach: "block" },
  { scope: "global", key: undefined, window: "hourly", usd: 1, onBreach: "block" },
  { scope: "client", key: undefined, window: "monthly", usd: 5, onBreach: "block" },
  { scope: "project", key: undefined, window: "monthly", usd: 5, onBreach: "block" },
  { scope: "session", key: undefined, window: "session", usd: 5, onBreach: "block" }
]

const byKey = <A>(entries: ReadonlyArray<readonly [string, A]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** Everything tollgate reads from a ledger, as plain values. */
const readAll = Effect.gen(function*() {
  const stats: Record<string, unknown> = {}
  for (const by of [undefined, "model", "provider", "route", "project", "session", "day"] as const) {
    stats[by ?? "all"] = yield* Ledger.stats({ sinceMs: 0, by })
  }
  stats.recent = yield* Ledger.stats({ sinceMs: BASE + 200 * 97_000, by: "model" })
  stats.top = yield* Ledger.stats({ sinceMs: 0, by: "session", limit: 2 })
  // The dashboard's: buckets of time (the engines' integer division), its whole answer, the tail.
  stats.byMinute = yield* Ledger.buckets({ sinceMs: BASE + 300 * 97_000, stepMs: Series.STEPS.minute })
  stats.byHour = yield* Ledger.buckets({ sinceMs: 0, stepMs: Series.STEPS.hour })
  stats.series = yield* Series.series({ since: "all", sinceMs: 0, step: "day" })
  stats.tail = (yield* Series.tail).map(({ id: _, ...row }) => row)
  stats.paged = yield* Ledger.summaryPaged({ sinceMs: 0, stepMs: Series.STEPS.hour, by: ["model", "session"], limit: 3, pageSize: 64 })
  const exported = Chunk.toReadonlyArray(yield* Stream.runCollect(Ledger.rows({ sinceMs: BASE + 50 * 97_000, pageSize: 64 })))
  const control = yield* Control.readAfter(0)
  const resets = control.resets
  // Cloud ingest: the unsent rows, marking some sent, the backlog, the lease taken, held, refused, given up.
  yield* Outbox.prepare
  const unsent = yield* Outbox.pending(64)
  yield* Outbox.markSent(unsent.map((row) => row.id), NOW)
  const outbox = {
    unsent,
    backlog: yield* Outbox.backlog,
    next: (yield* Outbox.pending(8)).map((row) => row.request_id),
    lease: [
      yield* Outbox.claim("a", NOW, 60_000),
      yield* Outbox.claim("b", NOW + 1, 60_000),
      yield* Outbox.claim("a", NOW + 2, 60_000),
      yield* Outbox.claim("b", NOW + 70_000, 60_000),
      yield* Effect.zipRight(Outbox.release("b"), Outbox.claim("a", NOW + 70_001, 60_000))
    ]
  }
  return {
    stats,
    exported,
    unpriced: yield* Ledger.unpriced({ sinceMs: 0 }),
    outbox,
    found: yield* Ledger.findRequest("req_v_41"),
    missing: yield* Ledger.findRequest("nope"),
    losses: yield* Ledger.losses,
    // Not their ids: a Postgres sequence is spent by an insert the dedupe key turns away, so ids may skip.
    alerts: (yield* Alerts.list(0)).map(({ delivered_at, id: _, ...rest }) => ({ ...rest, delivered: delivered_at !== null })),
    storedKeys: [...yield* Alerts.storedKeys(BASE + 2000)].sort(),
    control: { ...control, resets: resets.map((r) => ({ ...r, at: typeof r.at })) },
    blocks: yield* Control.activeBlocks(NOW),
    // Counters go into a map: their order is each engine's own.
    spend: byKey(yield* Spend.rebuild({ limits, zone: new Zone("UTC"), resets: [], now: NOW, sessionTtl: 3_600_000 })),
    spendAfterReset: byKey(yield* Spend.rebuild({
      limits,
      zone: new Zone("UTC"),
      resets: [{ at: BASE + 300 * 97_000, scope: "project", key: "proj0", window: "monthly" }],
      now: NOW,
      sessionTtl: 3_600_000
    }))
  }
})

/**
 * Sums of doubles depend on the order rows are added in, which is each engine's own: amounts are
 * compared to 12 significant digits (a millionth of a cent on a $10,000 total), everything else exactly.
 */
const rounded = (value: unknown): unknown =>
  typeof value === "number" && !Number.isInteger(value)
    ? Number(value.toPrecision(12))
    : Array.isArray(value)
    ? value.map(rounded)
    : value !== null && typeof value === "object"
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v)]))
    : value

const ledgerOn = (store: Layer.Layer<SqlClient.SqlClient, Store.StoreError>) =>
  Layer.mergeAll(Telemetry.layerWith({}), Alerts.layerWith(AlertSettings.make({}))).pipe(Layer.provideMerge(store))

describe.skipIf(Pg.unreachable !== undefined)(`one set of ledger queries on SQLite and PostgreSQL${Pg.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable})`}`, () => {
  it.live("the same ledger written to both engines reads back the same through every query", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const sqlitePath = tempDbPath()
      const sqlite = yield* Effect.scoped(Effect.zipRight(fill, readAll).pipe(Effect.provide(ledgerOn(Store.layerAt(sqlitePath)))))
      const postgres = yield* Effect.scoped(Effect.zipRight(fill, readAll).pipe(Effect.provide(ledgerOn(Store.layerPostgres(Redacted.make(db.url))))))
      // The suite reads something: groups, rows, alerts, blocks and counters.
      assert.strictEqual((sqlite.stats.all as ReadonlyArray<Ledger.StatsRow>)[0]!.requests, N)
      assert.isAbove((sqlite.stats.day as ReadonlyArray<unknown>).length, 1)
      const byHour = sqlite.stats.byHour as ReadonlyArray<Ledger.BucketRow>
      assert.isAbove(byHour.length, 5)
      assert.strictEqual(byHour.reduce((n, b) => n + b.requests, 0), N)
      assert.isTrue(byHour.every((b) => b.t % Series.STEPS.hour === 0))
      assert.strictEqual((sqlite.stats.top as ReadonlyArray<unknown>).length, 2)
      assert.isTrue(byHour.some((b) => (b.p50TtfbMs ?? 0) > 0))
      // Read in pages (as the dashboard does on SQLite), the queries' own figures: in total, per bucket, per group.
      const paged = sqlite.stats.paged as Effect.Effect.Success<ReturnType<typeof Ledger.summaryPaged<"model" | "session">>>
      const whole = yield* Effect.scoped(Effect.provide(
        Effect.all({
          total: Ledger.stats({ sinceMs: 0, by: undefined, percentiles: "latency+ttfb" }),
          model: Ledger.stats({ sinceMs: 0, by: "model", limit: 3, percentiles: "none" }),
          session: Ledger.stats({ sinceMs: 0, by: "session", limit: 3, percentiles: "none" })
        }),
        Store.layerAt(sqlitePath)
      ))
      assert.deepStrictEqual(rounded(paged.total), rounded(whole.total[0]))
      assert.deepStrictEqual(rounded(paged.buckets), rounded(byHour))
      assert.deepStrictEqual(rounded(paged.groups), rounded({ model: whole.model, session: whole.session }))
      assert.isAbove((sqlite.stats.project as ReadonlyArray<Ledger.StatsRow>)[0]!.p95LatencyMs ?? 0, 0)
      assert.isAbove(sqlite.exported.length, 300)
      assert.isAbove(sqlite.unpriced.length, 0)
      assert.strictEqual(sqlite.alerts.length, 4)
      assert.deepStrictEqual(sqlite.blocks.map((b) => b.session), ["sess4"])
      assert.isAbove(sqlite.spend.length, 5)
      assert.strictEqual(sqlite.outbox.unsent.length, 64)
      assert.strictEqual(sqlite.outbox.backlog.rows, N - 64)
      assert.deepStrictEqual(sqlite.outbox.lease, [true, false, true, true, true])
      for (const key of Object.keys(sqlite) as Array<keyof typeof sqlite>) {
        assert.deepStrictEqual(rounded(postgres[key]), rounded(sqlite[key]), `${key} differs between SQLite and PostgreSQL`)
      }
    }).pipe(Effect.scoped))
})
