/**
 * The `Telemetry` service: the ledger writer.
 *
 * `record` offers an event to a bounded in-memory queue and returns at once; a fiber forked in the
 * layer's scope drains the queue in batches into SQLite, one transaction per batch. Closing the
 * layer (shutdown, SIGINT/SIGTERM) writes every queued event before the scope ends.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type * as SqlError from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { hash, randomBytes } from "node:crypto"
import { COLUMNS, type LedgerEvent, rowParams } from "./Domain/LedgerEvent.js"
import type { Config } from "./Config.js"
import * as Store from "./Store.js"

export class Telemetry extends Context.Tag("tollgate/Telemetry")<Telemetry, {
  /** Queue one ledger event. Never fails; waits only if the queue is full (back-pressure, not loss). */
  readonly record: (event: LedgerEvent) => Effect.Effect<void>
  /** Completes once every event recorded before the call is in SQLite. */
  readonly flush: Effect.Effect<void>
  /** Rows written since the layer was built; `changes` lets a caller wait for a count. */
  readonly written: SubscriptionRef.SubscriptionRef<number>
  /** A salted, one-way hash of a client key: the ledger can group by client, never recover the key. */
  readonly hashClient: (key: string) => string
}>() {}

export interface Options {
  /** Events held in memory before `record` applies back-pressure. */
  readonly capacity: number
  /** Largest number of rows in one INSERT. */
  readonly batchSize: number
  /** Least time between two writes while rows keep coming (ms; 0 = write each batch at once). */
  readonly linger: number
  /**
   * How long a row that comes after a quiet spell waits before its write (ms): a client's next
   * call comes right after its answer, and a commit then would hold that call up.
   */
  readonly hold: number
}

const defaults: Options = { capacity: 65_536, batchSize: 512, linger: 50, hold: 10 }

/** Client keys whose hash is kept; past this many the memo starts over. */
const CLIENT_HASH_MEMO = 256

/** Control messages travel through the same queue, so they are ordered with the events. */
class FlushRequest {
  constructor(readonly done: Deferred.Deferred<void>) {}
}
class Stop {}
type Item = LedgerEvent | FlushRequest | Stop
const isControl = (item: Item): boolean => item instanceof FlushRequest || item instanceof Stop

/** The per-ledger salt for client hashes, created on first use. */
const installSalt = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT OR IGNORE INTO meta (key, value) VALUES ('client_salt', ${randomBytes(16).toString("hex")})`
  const rows = yield* sql<{ value: string }>`SELECT value FROM meta WHERE key = 'client_salt'`
  return rows[0]!.value
})

/** SQLite's result codes that say the file, not the rows, is the trouble (`SQLITE_BUSY_TIMEOUT`...). */
const FILE_TROUBLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|NOMEM|PERM|INTERRUPT|PROTOCOL)/

const refusedForTheFile = (error: SqlError.SqlError): boolean => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" && FILE_TROUBLE.test(code)
}

export const make = (options: Partial<Options> = {}) =>
  Effect.gen(function*() {
    const { batchSize, capacity, hold, linger } = { ...defaults, ...options }
    // SQLite takes at most 32,766 parameters in one statement.
    const maxRows = Math.min(batchSize, Math.floor(32_766 / COLUMNS.length))
    const sql = yield* SqlClient.SqlClient
    const salt = yield* installSalt.pipe(Effect.orDie)
    const queue = yield* Queue.bounded<Item>(capacity)
    const written = yield* SubscriptionRef.make(0)
    const clock = yield* Effect.clock

    // The statement text for a batch of n rows, built once per n: the SQL helper's `insert`
    // compiles the text and its column list again for every batch (~4 KB of garbage per row).
    const statements = new Map<number, string>()
    const tuple = `(${COLUMNS.map(() => "?").join(", ")})`
    const statementFor = (n: number): string => {
      let text = statements.get(n)
      if (text === undefined) {
        text = `INSERT INTO requests (${COLUMNS.join(", ")}) VALUES ${Array.from({ length: n }, () => tuple).join(", ")}`
        statements.set(n, text)
      }
      return text
    }

    // Statements are prepared once per distinct row count: cutting a batch into powers of two
    // keeps that to a handful (a fresh prepare per batch size cost more than the inserts).
    const inserts = (conn: SqlConnection.Connection, events: ReadonlyArray<LedgerEvent>) =>
      Effect.suspend(() => {
        const statements: Array<Effect.Effect<unknown, SqlError.SqlError>> = []
        let i = 0
        while (i < events.length) {
          const size = 2 ** Math.floor(Math.log2(Math.min(events.length - i, maxRows)))
          const rows = events.slice(i, i + size)
          statements.push(conn.execute(statementFor(size), rowParams(rows), undefined))
          i += size
        }
        return Effect.all(statements, { discard: true })
      })

    // A batch is one transaction: every commit writes the last pages of the table and of its
    // indexes to the WAL again, so a 50 ms batch cut into power-of-two INSERTs, each its own commit,
    // wrote ~1.5x the bytes (bench load, ~4,000 rows/s: ~950 -> ~640 bytes to disk per row). Not
    // `sql.withTransaction`, which turns a failed COMMIT into a defect: this fiber must outlive any
    // failure. On the connection reserved for the batch, BEGIN ... COMMIT, and ROLLBACK on a failure
    // (harmless when SQLite has already rolled back).
    const transaction = (events: ReadonlyArray<LedgerEvent>) =>
      Effect.scoped(Effect.flatMap(sql.reserve, (conn) =>
        conn.execute("BEGIN", [], undefined).pipe(
          Effect.zipRight(inserts(conn, events)),
          Effect.zipRight(conn.execute("COMMIT", [], undefined)),
          Effect.tapError(() => Effect.ignore(conn.execute("ROLLBACK", [], undefined)))
        )))

    const retried = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.retry(effect, Schedule.spaced("100 millis").pipe(Schedule.compose(Schedule.recurs(5))))

    const counted = (n: number) => SubscriptionRef.update(written, (total) => total + n)

    // A batch SQLite refuses for what is in it (a constraint, a value it cannot bind) is written row
    // by row, so that one bad row costs only itself. A batch refused for the file (busy or locked
    // past the retries, an I/O error, a full disk) is not: every row would wait out the busy
    // timeout in turn. It is dropped, and said so, as before.
    const writeAll = (events: ReadonlyArray<LedgerEvent>) =>
      events.length === 0 ? Effect.void : retried(transaction(events)).pipe(
        Effect.zipRight(counted(events.length)),
        Effect.catchAll((error) =>
          refusedForTheFile(error)
            ? Effect.logError(`ledger: could not write ${events.length} rows`, error)
            : Effect.zipRight(
              Effect.logWarning(`ledger: a batch of ${events.length} rows could not be written whole; writing them one by one`, error),
              Effect.forEach(events, (event) =>
                sql.unsafe(statementFor(1), rowParams([event])).pipe(
                  Effect.zipRight(counted(1)),
                  Effect.catchAll((error) => Effect.logError("ledger: could not write a row", error))
                ), { discard: true })
            )
        )
      )

    /** Writes the events in `items` in order, answering flushes once what precedes them is written. */
    const process = (items: Iterable<Item>) =>
      Effect.gen(function*() {
        let events: Array<LedgerEvent> = []
        let stop = false
        for (const item of items) {
          if (item instanceof FlushRequest) {
            yield* writeAll(events)
            events = []
            yield* Deferred.succeed(item.done, undefined)
          } else if (item instanceof Stop) {
            stop = true
          } else {
            events.push(item)
          }
        }
        yield* writeAll(events)
        return stop
      })

    // The take is interruptible; once a batch is taken, it is written without interruption.
    // Commits are spaced at least `linger` apart while rows keep coming: a commit and the Effect
    // work around a batch (the SQL client's span and lock, the counter) cost per batch, not per
    // row. Measured when each INSERT was its own commit (~45 us of CPU, and as much again around
    // it): at 2,000 requests/s a 5 ms wait (batches of ~10) cost ~130 us per row and a 50 ms one
    // ~35-40 us (paced in-process feed). A row that comes after a quiet spell waits `hold`:
    // written at once, its commit landed on the client's next call, which comes right after its
    // answer; one paced stream after another started ~1 ms later for it. A batch with a flush or a
    // stop in it is written at once.
    let lastWriteAt = Number.NEGATIVE_INFINITY
    const drainLoop = Effect.uninterruptibleMask((restore) =>
      restore(Queue.takeBetween(queue, 1, batchSize)).pipe(
        Effect.flatMap((first) => {
          const wait = Math.max(lastWriteAt + linger - clock.unsafeCurrentTimeMillis(), hold)
          return wait <= 0 || first.length >= batchSize / 4 || Chunk.some(first, isControl)
            ? Effect.succeed(first)
            : Effect.sleep(wait).pipe(
              Effect.zipRight(Queue.takeUpTo(queue, batchSize - first.length)),
              Effect.map((rest) => Chunk.appendAll(first, rest))
            )
        }),
        Effect.flatMap((items) => {
          lastWriteAt = clock.unsafeCurrentTimeMillis()
          return process(items)
        })
      )
    ).pipe(Effect.repeat({ until: (stopped) => stopped }))

    const consumer = yield* Effect.forkScoped(drainLoop)

    // Runs before the consumer's own interruption (finalizers run in reverse order): ask it to
    // stop after what is queued, wait for it, then write anything offered meanwhile.
    yield* Effect.addFinalizer(() =>
      Queue.offer(queue, new Stop()).pipe(
        Effect.zipRight(Fiber.await(consumer)),
        Effect.zipRight(Queue.takeAll(queue)),
        Effect.flatMap(process)
      )
    )

    const clientHashes = new Map<string, string>()

    return Telemetry.of({
      record: (event) => Queue.offer(queue, event),
      flush: Effect.flatMap(Deferred.make<void>(), (done) =>
        Effect.zipRight(Queue.offer(queue, new FlushRequest(done)), Deferred.await(done))),
      written,
      hashClient: (key) => {
        // Most deployments have a handful of client keys: each is hashed once, not per request.
        let hashed = clientHashes.get(key)
        if (hashed === undefined) {
          hashed = hash("sha256", salt + key, "hex").slice(0, 16)
          if (clientHashes.size >= CLIENT_HASH_MEMO) clientHashes.clear()
          clientHashes.set(key, hashed)
        }
        return hashed
      }
    })
  })

export const layerWith = (options: Partial<Options>): Layer.Layer<Telemetry, never, SqlClient.SqlClient> =>
  Layer.scoped(Telemetry, make(options))

/** The writer, on the configured ledger. */
export const layer: Layer.Layer<Telemetry, Store.StoreError, Config> = layerWith({}).pipe(
  Layer.provide(Store.layer)
)
