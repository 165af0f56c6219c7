import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Effect, Fiber, Layer, Logger, Stream, SubscriptionRef, TestClock } from "effect"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import { tempDbPath } from "../support/Tollgate.js"
import { sampleEvent } from "../support/Events.js"


const countRows = (dbPath: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests`).pipe(
    Effect.map((rows) => rows[0]!.n),
    Effect.provide(Store.layerAt(dbPath))
  )

/**
 * A writer on a fresh ledger, with the lines it logs collected and a flush that turns the test
 * clock 100 ms at a time until it returns (the writer's retries wait on that clock).
 */
const withLoggedWriter = <A, E>(
  test: (writer: {
    readonly telemetry: Context.Tag.Service<Telemetry.Telemetry>
    readonly sql: SqlClient.SqlClient
    readonly logs: ReadonlyArray<string>
    readonly flushed: Effect.Effect<void>
  }) => Effect.Effect<A, E>
) => {
  const logs: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${String(message)}`))
  return Effect.gen(function*() {
    const context = yield* Layer.build(Telemetry.layerWith({}).pipe(Layer.provideMerge(Store.layerAt(tempDbPath()))))
    const telemetry = Context.get(context, Telemetry.Telemetry)
    const flushed = Effect.gen(function*() {
      const fiber = yield* Effect.fork(telemetry.flush)
      while ((yield* Fiber.poll(fiber))._tag === "None") yield* TestClock.adjust("100 millis")
    })
    return yield* test({ telemetry, sql: Context.get(context, SqlClient.SqlClient), logs, flushed })
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

describe("Telemetry", () => {
  it.live("every event offered before the layer closes is in SQLite (N = 5,000)", () =>
    Effect.gen(function*() {
      const dbPath = tempDbPath()
      const N = 5_000
      // Offer everything, then close the layer at once: the writer must drain what is queued.
      yield* Effect.gen(function*() {
        const telemetry = yield* Telemetry.Telemetry
        for (let i = 0; i < N; i++) yield* telemetry.record(sampleEvent(i))
      }).pipe(Effect.provide(Telemetry.layerWith({}).pipe(Layer.provide(Store.layerAt(dbPath)))))
      assert.strictEqual(yield* countRows(dbPath), N)
    }))

  it.live("a small queue applies back-pressure instead of dropping", () =>
    Effect.gen(function*() {
      const dbPath = tempDbPath()
      const N = 2_000
      yield* Effect.gen(function*() {
        const telemetry = yield* Telemetry.Telemetry
        yield* Effect.forEach(Array.from({ length: N }, (_, i) => i), (i) => telemetry.record(sampleEvent(i)), {
          concurrency: 64,
          discard: true
        })
      }).pipe(Effect.provide(Telemetry.layerWith({ capacity: 16, batchSize: 7 }).pipe(Layer.provide(Store.layerAt(dbPath)))))
      assert.strictEqual(yield* countRows(dbPath), N)
    }))

  it.live("flush returns once what was recorded before it is written", () =>
    Effect.gen(function*() {
      const dbPath = tempDbPath()
      yield* Effect.gen(function*() {
        const telemetry = yield* Telemetry.Telemetry
        const sql = yield* SqlClient.SqlClient
        for (let i = 0; i < 250; i++) yield* telemetry.record(sampleEvent(i))
        yield* telemetry.flush
        const rows = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests`
        assert.strictEqual(rows[0]!.n, 250)
      }).pipe(Effect.provide(Telemetry.layerWith({}).pipe(Layer.provideMerge(Store.layerAt(dbPath)))))
    }))

  it.scoped("a row after a quiet spell waits `hold`; writes are spaced `linger` apart while rows keep coming", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Telemetry.layerWith({ linger: 50, hold: 10 }).pipe(Layer.provide(Store.layerAt(tempDbPath()))))
      const telemetry = Context.get(context, Telemetry.Telemetry)
      const writtenReaches = (n: number) => telemetry.written.changes.pipe(Stream.takeUntil((count) => count >= n), Stream.runDrain)
      // When the writer's pending sleep ends, on the test clock.
      const nextWake = TestClock.sleeps().pipe(
        Effect.tap(() => Effect.yieldNow()),
        Effect.repeat({ until: (sleeps) => Chunk.size(sleeps) > 0 }),
        Effect.map(Chunk.toArray)
      )

      // Nothing written before: the first row waits `hold` (its commit would hold up the client's
      // next call, which comes right after its answer), and not a moment less.
      yield* telemetry.record(sampleEvent(0))
      assert.deepStrictEqual(yield* nextWake, [10])
      yield* TestClock.adjust("9 millis")
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 0)
      yield* TestClock.adjust("1 millis")
      yield* writtenReaches(1)

      // The next one, right after, waits until 50 ms after that write (at 10 ms), and not a moment less.
      yield* telemetry.record(sampleEvent(1))
      assert.deepStrictEqual(yield* nextWake, [60])
      yield* TestClock.adjust("49 millis")
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 1)
      yield* TestClock.adjust("1 millis")
      yield* writtenReaches(2)
    }))

  it.scoped("a batch SQLite refuses is written row by row: a bad row costs only itself, and is logged", () =>
    withLoggedWriter(({ flushed, logs, sql, telemetry }) =>
      Effect.gen(function*() {
        // `endpoint` is NOT NULL in the ledger: no row of a batch with this one in it can be committed.
        const bad: LedgerEvent = { ...sampleEvent(1), endpoint: null as unknown as string }
        for (const event of [sampleEvent(0), bad, sampleEvent(2), sampleEvent(3)]) yield* telemetry.record(event)
        // The batch is retried (100 ms apart, on the test clock), then written one row at a time.
        yield* flushed
        const rows = yield* sql<{ request_id: string }>`SELECT request_id FROM requests ORDER BY id`
        assert.deepStrictEqual(rows.map((row) => row.request_id), ["req_0", "req_2", "req_3"])
        assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 3)
        assert.isTrue(logs.some((line) => line.startsWith("ERROR ledger: could not write a row")))
      })
    ))

  it.scoped("a batch refused for the file (here read-only) is dropped after its retries and logged, not tried row by row", () =>
    withLoggedWriter(({ flushed, logs, sql, telemetry }) =>
      Effect.gen(function*() {
        yield* sql`PRAGMA query_only = ON` // every write now fails with SQLITE_READONLY, at once
        for (let i = 0; i < 3; i++) yield* telemetry.record(sampleEvent(i))
        yield* flushed
        assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 0)
        assert.isTrue(logs.some((line) => line.startsWith("ERROR ledger: could not write 3 rows")), logs.join("\n"))
        assert.isFalse(logs.some((line) => line.includes("one by one")))
        // The writer is still there for what comes next.
        yield* sql`PRAGMA query_only = OFF`
        yield* telemetry.record(sampleEvent(3))
        yield* flushed
        const rows = yield* sql<{ request_id: string }>`SELECT request_id FROM requests`
        assert.deepStrictEqual(rows.map((row) => row.request_id), ["req_3"])
      })
    ))

  it.live("client hashes are salted per ledger, stable within it, and never the key", () =>
    Effect.gen(function*() {
      const hashIn = (dbPath: string) =>
        Effect.map(Telemetry.Telemetry, (t) => t.hashClient("sk-secret")).pipe(
          Effect.provide(Telemetry.layerWith({}).pipe(Layer.provide(Store.layerAt(dbPath))))
        )
      const a = tempDbPath()
      const first = yield* hashIn(a)
      assert.strictEqual(yield* hashIn(a), first)
      assert.notStrictEqual(yield* hashIn(tempDbPath()), first)
      assert.notInclude(first, "secret")
    }))
})

describe("durable", () => {
  const rowsIn = (sql: SqlClient.SqlClient) => Effect.map(sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests`, (rows) => rows[0]!.n)

  it.scoped("record returns once its row is committed; 100 concurrent records share few commits", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Telemetry.layerWith({ durable: true }).pipe(Layer.provideMerge(Store.layerAt(tempDbPath()))))
      const telemetry = Context.get(context, Telemetry.Telemetry)
      const sql = Context.get(context, SqlClient.SqlClient)
      // No clock turned: the row is written because the record waits for it, not after `hold`.
      yield* telemetry.record(sampleEvent(0))
      assert.strictEqual(yield* rowsIn(sql), 1)
      yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => sampleEvent(i + 1)), telemetry.record, { concurrency: "unbounded", discard: true })
      assert.strictEqual(yield* rowsIn(sql), 101)
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 101)
    }))

  it.scoped("without it, record returns with the row still queued (written after hold)", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Telemetry.layerWith({}).pipe(Layer.provideMerge(Store.layerAt(tempDbPath()))))
      const telemetry = Context.get(context, Telemetry.Telemetry)
      const sql = Context.get(context, SqlClient.SqlClient)
      yield* telemetry.record(sampleEvent(0))
      assert.strictEqual(yield* rowsIn(sql), 0)
      yield* TestClock.adjust("10 millis")
      yield* telemetry.flush
      assert.strictEqual(yield* rowsIn(sql), 1)
    }))
})

describe("Store", () => {
  it.live("the ledger's connection keeps SQLite's 2 MB page cache and WAL (better-sqlite3 builds a 16 MB one)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [cache] = yield* sql<{ cache_size: number }>`PRAGMA cache_size`
      assert.strictEqual(cache!.cache_size, -2000)
      const [mode] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
      assert.strictEqual(mode!.journal_mode, "wal")
    }).pipe(Effect.provide(Store.layerAt(tempDbPath()))))
})
