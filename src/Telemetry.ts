/**
 * The `Telemetry` service: the ledger writer.
 *
 * `record` offers an event to a bounded in-memory queue and returns at once; a fiber forked in the
 * layer's scope drains the queue in batches into SQLite, one transaction per batch. Closing the
 * layer (shutdown, SIGINT/SIGTERM) writes every queued event before the scope ends.
 *
 * When the ledger cannot be written (a full disk, a read-only or deleted file), `onWriteFailure`
 * decides. `block`: the batch is held in memory and retried every `retryInterval`, nothing
 * behind it is taken, and `refusing()` turns true so the proxy refuses new requests (503) until
 * a write succeeds: no spend happens that the ledger and the budget cannot see. `continue`: the
 * batch is dropped and counted. Either way the episode is logged once each way and published in
 * `health` (which raises one alert, see `Telemetry/Alerting.ts`), and lost rows are counted
 * (`health`, the `tollgate_ledger_*` metrics, and `meta` once the ledger is writable again).
 *
 * On PostgreSQL a lost connection is expected to come back (a restart, a failover): a batch is
 * retried with backoff for `spillAfter` (less if `spillRows` rows pile up behind it), then it and
 * every batch after it go to a spill file (`Telemetry/Spill.ts`), and requests are served on.
 * The database is probed every `retryInterval`; once it answers, the spill files are replayed,
 * oldest first, before anything newer, and writing goes on. One log line each way. Only when
 * the spill file cannot be written either does `onWriteFailure` decide, as above.
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
import * as Alerts from "./Budget/Alerts.js"
import { TollgateConfig } from "./Config.js"
import * as Store from "./Store.js"
import * as Dialect from "./Store/Dialect.js"
import * as Alerting from "./Telemetry/Alerting.js"
import { Failures, type Health, type OnWriteFailure } from "./Telemetry/Failures.js"
import * as LedgerFile from "./Telemetry/LedgerFile.js"
import * as Losses from "./Telemetry/Losses.js"
import * as Spill from "./Telemetry/Spill.js"

export { type Health, type OnWriteFailure, writable } from "./Telemetry/Failures.js"

export class Telemetry extends Context.Tag("tollgate/Telemetry")<Telemetry, {
  /** Queue one ledger event. Never fails; waits only if the queue is full (back-pressure, not loss). */
  readonly record: (event: LedgerEvent) => Effect.Effect<void>
  /** Completes once every event recorded before the call is in SQLite. */
  readonly flush: Effect.Effect<void>
  /** Rows written since the layer was built; `changes` lets a caller wait for a count. */
  readonly written: SubscriptionRef.SubscriptionRef<number>
  /** A salted, one-way hash of a client key: the ledger can group by client, never recover the key. */
  readonly hashClient: (key: string) => string
  /** The ledger's state; changes when an episode begins or ends and when rows are held or lost. */
  readonly health: SubscriptionRef.SubscriptionRef<Health>
  /** The ledger cannot be written and `onWriteFailure` is `block`: refuse new requests. A plain read, for the hot path. */
  readonly refusing: () => boolean
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
  /** When the ledger cannot be written: hold, retry and refuse requests, or drop and count. */
  readonly onWriteFailure: OnWriteFailure
  /** `record` completes once its row is committed (or spilled), not when it is queued. */
  readonly durable: boolean
  /** How long a held batch waits before its next try (ms, `block`); on Postgres, how often a spilling writer probes the database. */
  readonly retryInterval: number
  /** Postgres: how long a batch is retried, with backoff, before rows go to the spill file (ms). */
  readonly spillAfter: number
  /** Postgres: rows waiting behind a retried batch past which they go to the spill file at once. */
  readonly spillRows: number
  /** Postgres: the folder of the spill files (one folder per database is made in it); default `spill` in `$TOLLGATE_HOME` or `~/.tollgate`. */
  readonly spillRoot: string | undefined
}

const defaults: Options = {
  capacity: 65_536,
  batchSize: 512,
  linger: 50,
  hold: 10,
  onWriteFailure: "continue",
  durable: false,
  retryInterval: 1_000,
  spillAfter: 5_000,
  spillRows: 8_192,
  spillRoot: undefined
}

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
  yield* sql`INSERT INTO meta (key, value) VALUES ('client_salt', ${randomBytes(16).toString("hex")}) ON CONFLICT (key) DO NOTHING`
  const rows = yield* sql<{ value: string }>`SELECT value FROM meta WHERE key = 'client_salt'`
  return rows[0]!.value
})

/** SQLite's result codes that say the file, not the rows, is the trouble (`SQLITE_BUSY_TIMEOUT`...). */
const FILE_TROUBLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|NOMEM|PERM|INTERRUPT|PROTOCOL)/

const codeOf = (error: SqlError.SqlError): string | undefined => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

const refusedForTheFile = (error: SqlError.SqlError): boolean => FILE_TROUBLE.test(codeOf(error) ?? "")

/** Busy or locked: another process holds the file for a moment, worth a quick retry (a full disk is not). */
const isBusy = (error: SqlError.SqlError): boolean => /^SQLITE_(BUSY|LOCKED)/.test(codeOf(error) ?? "")

/**
 * On Postgres, what is wrong with the rows (a data exception, class 22, or a constraint, class
 * 23) is theirs; anything else (a refused or cut connection, a terminated backend, a database
 * that does not accept connections) is the database being away, to be ridden out.
 */
const isOutage = (error: SqlError.SqlError): boolean => !/^2[23][0-9A-Z]{3}$/.test(codeOf(error) ?? "")

/** `postgres://host:port/database` of a Postgres client (its password is not in it). */
const postgresWhere = (sql: SqlClient.SqlClient): string => {
  const config = (sql as { readonly config?: { readonly host?: string; readonly port?: number; readonly database?: string } }).config
  return `postgres://${config?.host ?? "localhost"}:${config?.port ?? 5432}/${config?.database ?? ""}`
}

/** `SQLITE_FULL: database or disk is full`. */
const describe = (error: SqlError.SqlError): string => {
  const cause = error.cause
  const message = cause instanceof Error ? cause.message : error.message
  const code = codeOf(error)
  return code === undefined ? message : `${code}: ${message}`
}

/** Why the writer cannot start on this ledger, in one line a person can act on. */
const unwritable = (where: string) => (error: SqlError.SqlError): Store.StoreError => {
  const code = codeOf(error) ?? ""
  const advice = /^SQLITE_(READONLY|PERM|CANTOPEN)/.test(code)
    ? "make the file and its directory writable by this user, or point database.path (TOLLGATE_DB) at another file"
    : /^SQLITE_FULL/.test(code)
    ? "free some space on its disk, or point database.path (TOLLGATE_DB) at another file"
    : "check the file, or point database.path (TOLLGATE_DB) at another file"
  return new Store.StoreError({ message: `cannot write the ledger ${where} (${describe(error)}): ${advice}` })
}

export const make = (options: Partial<Options> = {}) =>
  Effect.gen(function*() {
    const { batchSize, capacity, durable, hold, linger, onWriteFailure, retryInterval, spillAfter, spillRoot, spillRows } = { ...defaults, ...options }
    const sql = yield* SqlClient.SqlClient
    const dialect = Dialect.of(sql)
    const postgres = dialect.name === "pg"
    // SQLite takes at most 32,766 parameters in one statement, Postgres 65,535.
    const maxRows = Math.min(batchSize, Math.floor(dialect.maxParams / COLUMNS.length))
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()

    // The writer starts only on a ledger it can write (a read-only file opens and reads fine), and
    // only on the ledger whose spend the budget will read. A Postgres ledger has no file to watch.
    const file = postgres ? undefined : yield* LedgerFile.opened.pipe(Effect.mapError(unwritable("(ledger)")))
    const where = postgres ? postgresWhere(sql) : file?.path ?? "(in memory)"
    yield* sql`INSERT INTO meta (key, value) VALUES ('writer_started_at', ${String(now())})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`.pipe(Effect.mapError(unwritable(where)))
    const salt = yield* installSalt.pipe(Effect.mapError(unwritable(where)))
    if (file !== undefined) {
      const identity = yield* LedgerFile.identify(file).pipe(Effect.mapError(unwritable(where)))
      if (identity._tag === "Replaced") {
        const what = `the ledger ${file.path} is not the one tollgate kept there before (${identity.marker} names ledger ` +
          `${identity.expected}; this one is ${identity.fresh ? "new" : identity.id}): the spend recorded before is not in it, so budgets would count from $0`
        if (onWriteFailure === "block") {
          return yield* new Store.StoreError({ message: `${what}. Put the old file back, or delete ${identity.marker} to start this ledger afresh` })
        }
        yield* Effect.logWarning(`ledger: ${what}; going on (database.onWriteFailure: continue)`)
        yield* LedgerFile.adopt(file, identity.id)
      }
    }

    const queue = yield* Queue.bounded<Item>(capacity)
    const written = yield* SubscriptionRef.make(0)
    const failures = yield* Failures.make(onWriteFailure, where)
    // Set by the finalizer: a held batch gets one more try, then is counted lost.
    let stopping = false
    const stopped = yield* Deferred.make<void>()

    // The statement text for a batch of n rows, built once per n: the SQL helper's `insert`
    // compiles the text and its column list again for every batch (garbage per row: docs/performance.md).
    const statements = new Map<number, string>()
    const tuple = `(${COLUMNS.map(() => "?").join(", ")})`
    const statementFor = (n: number): string => {
      let text = statements.get(n)
      if (text === undefined) {
        text = dialect.placeholders(`INSERT INTO requests (${COLUMNS.join(", ")}) VALUES ${Array.from({ length: n }, () => tuple).join(", ")}`)
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
    // indexes to the WAL again, so one commit per INSERT wrote half as many bytes again. Not
    // `sql.withTransaction`, which turns a failed COMMIT into a defect: this fiber must outlive any
    // failure. On the connection reserved for the batch, BEGIN ... COMMIT, and ROLLBACK on a failure
    // (harmless when SQLite has already rolled back). Rows lost earlier are added to `meta` in the
    // first batch that commits.
    // `also`: statements (with `?` placeholders) committed with the rows (a spill file's progress).
    const transaction = (events: ReadonlyArray<LedgerEvent>, also: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]> = []) =>
      Effect.scoped(Effect.flatMap(sql.reserve, (conn) => {
        const losses = failures.unsavedLosses()
        const statements = losses === undefined ? also : [...also, ...Losses.additions(losses.rows, losses.first ?? 0, losses.last ?? 0)]
        const commit = conn.execute("BEGIN", [], undefined).pipe(
          Effect.zipRight(inserts(conn, events)),
          Effect.zipRight(
            statements.length === 0 ? Effect.void : Effect.forEach(
              statements,
              ([text, params]) => conn.execute(dialect.placeholders(text), params, undefined),
              { discard: true }
            )
          ),
          Effect.zipRight(conn.execute("COMMIT", [], undefined)),
          Effect.tapError(() => Effect.ignore(conn.execute("ROLLBACK", [], undefined)))
        )
        return losses === undefined ? commit : Effect.zipLeft(commit, Effect.sync(() => failures.saved(losses.rows)))
      }))

    // Busy or locked is retried a few times at once; a full disk or a read-only file is not
    // going away within half a second.
    const retried = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
      Effect.retry(effect, { schedule: Schedule.spaced("100 millis"), times: 5, while: isBusy })

    const counted = (n: number) => SubscriptionRef.update(written, (total) => total + n)

    // Waits out `retryInterval` (on the Clock), or less if the layer is closing.
    const pause = Effect.race(Effect.interruptible(Effect.sleep(retryInterval)), Effect.interruptible(Deferred.await(stopped)))

    /**
     * A batch the file refuses (busy or locked past the retries, an I/O error, a full disk, a
     * read-only, deleted or replaced file). `continue`: dropped and counted. `block`: held and
     * tried again every `retryInterval`, taking nothing else from the queue meanwhile, until it is
     * written or the layer closes (then counted lost after one last try). Never tried row by row:
     * every row would wait out the busy timeout in turn.
     */
    const refused = (events: ReadonlyArray<LedgerEvent>, reason: string): Effect.Effect<void> =>
      Effect.zipRight(
        failures.begin(reason),
        Effect.suspend(() =>
          onWriteFailure === "continue" || stopping
            ? failures.lose(events.length, reason)
            : failures.hold(events.length).pipe(Effect.zipRight(pause), Effect.zipRight(writeAll(events)))
        )
      )

    // A batch SQLite refuses for what is in it (a constraint, a value it cannot bind) is written row
    // by row, so that one bad row costs only itself (and is counted lost).
    const oneByOne = (events: ReadonlyArray<LedgerEvent>, error: SqlError.SqlError) =>
      Effect.zipRight(
        Effect.logWarning(`ledger: a batch of ${events.length} rows could not be written whole; writing them one by one`, error),
        Effect.forEach(events, (event) =>
          sql.unsafe(statementFor(1), rowParams([event])).pipe(
            Effect.zipRight(counted(1)),
            Effect.catchAll((error) =>
              refusedForTheFile(error)
                ? refused([event], describe(error))
                : Effect.zipRight(Effect.logError("ledger: could not write a row", error), failures.lose(1, describe(error))))
          ), { discard: true })
      )

    const recovered = Effect.suspend(() =>
      failures.failing || failures.holding ? failures.written() : Effect.void
    )

    // --- Postgres: ride out the database being away (retry, then spill, then replay) ---

    const spillDir = postgres ? Spill.folder(spillRoot ?? (yield* Spill.defaultRoot), where) : ""
    // Spill files not replayed yet, oldest first; the last one is appended to while spilling.
    const pending: Array<Spill.SpillFile> = postgres
      ? [...yield* Spill.claimOrphans(spillDir).pipe(
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`ledger: ${error.message}; spill files there are not replayed`), []))
      )]
      : []
    let appending: Spill.SpillFile | undefined = undefined
    let spilled = 0
    let awaySince = 0
    let probedAt = Number.NEGATIVE_INFINITY
    const spilling = () => pending.length > 0
    const setSpilled = (n: number) => Effect.suspend(() => failures.spilled(spilled = n))

    // Exponential from 100 ms, at most 2 s apart, for `spillAfter` in all; not past `spillRows`
    // rows waiting behind the batch, nor once the layer is closing (the rows then go to the file).
    const outageRetries = Schedule.exponential("100 millis").pipe(
      Schedule.either(Schedule.spaced("2 seconds")),
      Schedule.jittered,
      Schedule.upTo(spillAfter)
    )
    const whileAway = (error: SqlError.SqlError) =>
      isOutage(error) && !stopping ? Effect.map(Queue.size(queue), (waiting) => waiting < spillRows) : Effect.succeed(false)

    const progress = (file: Spill.SpillFile, lines: number): readonly [string, ReadonlyArray<unknown>] =>
      ["INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [Spill.progressKey(file), String(lines)]]

    /** Replays a spill file from where its last replay stopped, a chunk per transaction with its progress. */
    const replay = (file: Spill.SpillFile) =>
      Effect.gen(function*() {
        const events = yield* Spill.read(file)
        const key = Spill.progressKey(file)
        const done = Number((yield* sql<{ value: string }>`SELECT value FROM meta WHERE key = ${key}`)[0]?.value ?? 0)
        for (let i = done; i < events.length; i += maxRows) {
          const chunk = events.slice(i, i + maxRows)
          yield* transaction(chunk, [progress(file, i + chunk.length)]).pipe(
            Effect.catchIf((error) => !isOutage(error), () =>
              // A row the database refuses costs only itself (and is counted lost), as in `oneByOne`.
              Effect.forEach(chunk, (event, j) =>
                transaction([event], [progress(file, i + j + 1)]).pipe(
                  Effect.catchIf((error) => !isOutage(error), (error) =>
                    Effect.zipRight(
                      failures.lose(1, describe(error)),
                      sql.unsafe(dialect.placeholders(progress(file, i + j + 1)[0]), progress(file, i + j + 1)[1])
                    ))
                ), { discard: true }))
          )
          yield* counted(chunk.length)
          yield* setSpilled(Math.max(0, spilled - chunk.length))
        }
        // The file goes first: a progress key without its file is harmless, a file without its key would be replayed twice.
        yield* Spill.remove(file)
        yield* sql`DELETE FROM meta WHERE key = ${key}`
        return events.length - done
      })

    /** Probes the database and, if it answers, replays every spill file; whether it is all replayed. */
    const recover: Effect.Effect<boolean> = Effect.gen(function*() {
      probedAt = now()
      yield* sql`SELECT 1`
      let rows = 0
      const files = pending.length
      while (pending.length > 0) {
        const file = pending[0]!
        if (file === appending) appending = undefined
        rows += yield* replay(file)
        pending.shift()
      }
      yield* setSpilled(0)
      const away = awaySince === 0 ? "" : ` after ${((now() - awaySince) / 1000).toFixed(1)} s`
      yield* Effect.logInfo(`ledger: ${where} is back${away}; replayed ${rows} rows from ${files} spill file(s), no row lost`)
      awaySince = 0
      return true
    }).pipe(
      // The file being replayed stays pending (its progress is in the ledger); new rows go to a new file after it.
      Effect.catchAll((error) =>
        Effect.as(Effect.logDebug(`ledger: ${where} still away: ${error._tag === "SqlError" ? describe(error) : error.message}`), false)
      )
    )

    const spill = (events: ReadonlyArray<LedgerEvent>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (appending === undefined) {
          appending = Spill.fresh(spillDir)
          pending.push(appending)
        }
        return Spill.append(appending, events).pipe(
          Effect.matchEffect({
            onSuccess: () => Effect.zipRight(setSpilled(spilled + events.length), recovered),
            // The local disk too: `onWriteFailure` decides, as for a SQLite file.
            onFailure: (error) => refused(events, `${where} is away and ${error.message}`)
          })
        )
      })

    const writePostgres = (events: ReadonlyArray<LedgerEvent>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (spilling()) {
          const probe = now() - probedAt >= retryInterval ? recover : Effect.succeed(false)
          return Effect.flatMap(probe, (back) => back ? writePostgres(events) : events.length === 0 ? Effect.void : spill(events))
        }
        if (events.length === 0) return Effect.void
        return Effect.matchEffect(Effect.retry(transaction(events), { schedule: outageRetries, while: whileAway }), {
          onSuccess: () => Effect.zipRight(counted(events.length), recovered),
          onFailure: (error) => {
            if (!isOutage(error)) return oneByOne(events, error)
            awaySince = now() - spillAfter
            probedAt = now()
            appending = Spill.fresh(spillDir)
            pending.push(appending)
            return Effect.zipRight(
              Effect.logWarning(
                `ledger: cannot reach ${where} (${describe(error)}); rows go to ${appending.path} until it answers, then are written ` +
                  `to it in order (requests are served meanwhile; no row is lost)`
              ),
              spill(events)
            )
          }
        })
      })

    const writeAll = (events: ReadonlyArray<LedgerEvent>): Effect.Effect<void> =>
      postgres ? writePostgres(events) : events.length === 0 ? Effect.void : Effect.suspend(() => {
        // One `stat` per batch: SQLite writes on into a file deleted or replaced under it.
        const gone = file === undefined ? undefined : LedgerFile.trouble(file)
        if (gone !== undefined) return refused(events, gone)
        return Effect.matchEffect(retried(transaction(events)), {
          onSuccess: () =>
            failures.failing || failures.holding ? Effect.zipRight(counted(events.length), failures.written()) : counted(events.length),
          onFailure: (error) => refusedForTheFile(error) ? refused(events, describe(error)) : oneByOne(events, error)
        })
      })

    /**
     * Writes the events in `items` in order, in one batch, then answers the flushes among them
     * (each waits for what precedes it, so for the batch: with `durable`, every row has one).
     */
    const process = (items: Iterable<Item>) =>
      Effect.gen(function*() {
        const events: Array<LedgerEvent> = []
        const flushes: Array<FlushRequest> = []
        let stop = false
        for (const item of items) {
          if (item instanceof FlushRequest) flushes.push(item)
          else if (item instanceof Stop) stop = true
          else events.push(item)
        }
        yield* writeAll(events)
        for (const flush of flushes) yield* Deferred.succeed(flush.done, undefined)
        return stop
      })

    // The take is interruptible; once a batch is taken, it is written without interruption.
    // Commits are spaced at least `linger` apart while rows keep coming: a commit and the Effect
    // work around a batch (the SQL client's span and lock, the counter) cost per batch, not per
    // row. A row that comes after a quiet spell waits `hold`: written at once, its commit landed on
    // the client's next call, which comes right after its answer. A batch with a flush or a stop in
    // it is written at once. (docs/performance.md, "Figures behind src/ comments".)
    let lastWriteAt = Number.NEGATIVE_INFINITY
    // While rows are spilled, the loop also wakes every `retryInterval` with nothing taken, so the
    // database is probed (and the files replayed) even when no request comes.
    const take = Effect.suspend(() =>
      postgres && spilling()
        ? Effect.raceFirst(Queue.takeBetween(queue, 1, batchSize), Effect.as(Effect.sleep(retryInterval), Chunk.empty<Item>()))
        : Queue.takeBetween(queue, 1, batchSize)
    )
    const drainLoop = Effect.uninterruptibleMask((restore) =>
      restore(take).pipe(
        Effect.flatMap((first) => {
          const wait = Math.max(lastWriteAt + linger - now(), hold)
          if (durable) {
            // Answers wait for this write: no pause, but what is queued already goes with it
            // (a waiting take is handed one item, so a row's flush may be just behind it).
            return first.length >= batchSize
              ? Effect.succeed(first)
              : Effect.map(Queue.takeUpTo(queue, batchSize - first.length), (rest) => Chunk.appendAll(first, rest))
          }
          return wait <= 0 || first.length === 0 || first.length >= batchSize / 4 || Chunk.some(first, isControl)
            ? Effect.succeed(first)
            : Effect.sleep(wait).pipe(
              Effect.zipRight(Queue.takeUpTo(queue, batchSize - first.length)),
              Effect.map((rest) => Chunk.appendAll(first, rest))
            )
        }),
        Effect.flatMap((items) => {
          lastWriteAt = now()
          return process(items)
        })
      )
    ).pipe(Effect.repeat({ until: (stopped) => stopped }))

    // Spill files left by a process that is gone are replayed now, before any new row.
    if (pending.length > 0) yield* recover

    const consumer = yield* Effect.forkScoped(drainLoop)

    // Runs before the consumer's own interruption (finalizers run in reverse order): ask it to
    // stop after what is queued (a held batch gets one last try), wait for it, then write
    // anything offered meanwhile, and the count of rows lost if it is not in `meta` yet.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stopping = true
      }).pipe(
        Effect.zipRight(Deferred.succeed(stopped, undefined)),
        Effect.zipRight(Queue.offer(queue, new Stop())),
        Effect.zipRight(Fiber.await(consumer)),
        Effect.zipRight(Queue.takeAll(queue)),
        Effect.flatMap(process),
        Effect.zipRight(Effect.suspend(() =>
          failures.unsavedLosses() === undefined || failures.failing ? Effect.void : Effect.ignore(retried(transaction([])))
        )),
        Effect.zipRight(Effect.suspend(() =>
          spilling()
            ? Effect.logWarning(`ledger: ${spilled} rows wait in spill files under ${spillDir} for ${where}; the next start on this ledger writes them`)
            : Effect.void
        )),
        Effect.zipRight(failures.farewell())
      )
    )

    const clientHashes = new Map<string, string>()

    return Telemetry.of({
      record: durable
        ? (event) =>
          Effect.flatMap(Deferred.make<void>(), (done) =>
            Effect.zipRight(Queue.offerAll(queue, [event, new FlushRequest(done)]), Deferred.await(done)))
        : (event) => Queue.offer(queue, event),
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
      },
      health: failures.health,
      refusing: () => failures.refusing()
    })
  })

export const layerWith = (options: Partial<Options>): Layer.Layer<Telemetry, Store.StoreError, SqlClient.SqlClient> =>
  Layer.scoped(Telemetry, make(options))

/** The ledger's failures raised as alerts (`Telemetry/Alerting.ts`). */
export const alerting: Layer.Layer<never, never, Telemetry | Alerts.Alerts> = Layer.scopedDiscard(
  Effect.flatMap(Telemetry, (telemetry) => Alerting.raise(telemetry.health))
)

/** The writer with `database.onWriteFailure`, its failures raised as alerts; the ledger and the alerts from the caller. */
export const layerWithoutDependencies: Layer.Layer<Telemetry, Store.StoreError, TollgateConfig | SqlClient.SqlClient | Alerts.Alerts> = alerting.pipe(
  Layer.provideMerge(Layer.unwrapEffect(Effect.map(TollgateConfig, (config) => layerWith({ onWriteFailure: config.onWriteFailure, durable: config.durable }))))
)

/** The writer, on the configured ledger, with `database.onWriteFailure`; its failures are alerts. */
export const layer: Layer.Layer<Telemetry, Store.StoreError, TollgateConfig> = layerWithoutDependencies.pipe(
  Layer.provide(Alerts.layer),
  Layer.provide(Store.layer)
)
