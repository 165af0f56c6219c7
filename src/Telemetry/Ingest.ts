/**
 * Cloud ingest: ledger rows, metadata only (the ledger's own fields, never a body or a key), POSTed
 * in batches to a workspace's ingest endpoint by a fiber in the layer's scope, never on a
 * request's path. The outbox is the ledger (`Telemetry/Outbox.ts`): a batch is the oldest rows not
 * yet sent, and its rows are marked sent only after the receiver's 2xx, so an outage or a restart
 * loses nothing and memory does not grow with the backlog.
 *
 * Delivery is at least once: a crash between the receiver's 2xx and the mark sends the batch
 * again. Each batch carries an `Idempotency-Key` (a hash of the ledger's id and the rows' ids) and
 * each row a stable `key` (`<ledger id>:<row id>`), so the receiver recognises a resend; at least
 * once plus that key is exactly once at the receiver (docs/operations.md, "Cloud ingest").
 *
 * A failed POST (no answer, a timeout, any non-2xx) is tried again with exponential backoff and
 * jitter up to `maxDelay`, a `Retry-After` setting a floor, for as long as it takes. The log says
 * once when sending starts failing and once when it recovers.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { createHash, randomUUID } from "node:crypto"
import { TollgateConfig } from "../Config.js"
import type { CloudTarget } from "../Config/Cloud.js"
import * as Logging from "../Logging.js"
import { StoreError } from "../Store.js"
import { failureReasonOf, retryAfterMs } from "../Upstream/Transport.js"
import * as Outbox from "./Outbox.js"

/** Rows the receiver took (2xx), since start. */
export const rowsDelivered = Metric.counter("tollgate_ingest_rows_delivered_total", {
  description: "Ledger rows cloud ingest delivered (2xx)",
  incremental: true
})

/** POSTs that failed: no answer, a timeout, or an answer other than 2xx. */
export const postFailures = Metric.counter("tollgate_ingest_post_failures_total", {
  description: "Cloud ingest POSTs that failed",
  incremental: true
})

/** 1 while sending fails, 0 otherwise. */
export const failing = Metric.gauge("tollgate_ingest_failing", { description: "1 while cloud ingest cannot send, else 0" })

/** Rows not yet sent, set when `/metrics` is scraped. */
export const backlogRows = Metric.gauge("tollgate_ingest_backlog_rows", { description: "Ledger rows cloud ingest has not sent yet" })

/** The receiver answered, but not 2xx. */
export class IngestRefused extends Data.TaggedError("IngestRefused")<{
  readonly status: number
  /** From `Retry-After`, in ms. */
  readonly retryAfter: number | undefined
}> {
  override get message() {
    return `the receiver answered ${this.status}`
  }
}

/** No answer: refused or cut connection, DNS, a timeout. */
export class IngestUnreachable extends Data.TaggedError("IngestUnreachable")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** Another replica holds the lease: this one stops sending. */
class LeaseLost extends Data.TaggedError("LeaseLost") {}

export type IngestError = IngestRefused | IngestUnreachable

export interface IngestState {
  /** Sending is failing since this time (Unix ms), or null. */
  readonly failingSince: number | null
  /** Why the last attempt failed, while failing. */
  readonly lastError: string | null
  /** Rows this process delivered (2xx) since it started. */
  readonly delivered: number
  /** POSTs this process made, failed ones included. */
  readonly attempts: number
}

export interface Sender {
  /** The receiver's origin (scheme, host, port): what may be shown of the target. */
  readonly origin: string
  readonly workspaceId: string
  readonly state: SubscriptionRef.SubscriptionRef<IngestState>
}

/** The cloud ingest sender, `Option.none()` when ingest is off. */
export class Ingest extends Context.Tag("tollgate/Ingest")<Ingest, Option.Option<Sender>>() {}

/** What the receiver gets: one batch. */
export const payloadOf = (target: CloudTarget, ledgerId: string, batch: string, rows: ReadonlyArray<Outbox.OutboxRow>) => ({
  type: "tollgate.ledger.batch",
  version: 1,
  workspaceId: target.workspaceId,
  ledgerId,
  batch,
  rows: rows.map((row) => ({ key: `${ledgerId}:${row.id}`, ...row }))
})

/** The batch's idempotency key: the same rows of the same ledger give the same key. */
export const batchKey = (ledgerId: string, ids: ReadonlyArray<number>): string =>
  createHash("sha256").update(`${ledgerId}:${ids.join(",")}`).digest("hex")

/**
 * `baseDelay`, doubling, at most `maxDelay`, with jitter; a `Retry-After` is a floor. Forever: the
 * rows wait in the ledger, not in memory.
 */
export const retrySchedule = (target: Pick<CloudTarget, "baseDelay" | "maxDelay">) =>
  Schedule.exponential(Duration.millis(target.baseDelay)).pipe(
    Schedule.either(Schedule.spaced(Duration.millis(target.maxDelay))),
    Schedule.jittered,
    Schedule.intersect(Schedule.identity<IngestError | LeaseLost>()),
    Schedule.modifyDelay(([, error], delay) =>
      error._tag === "IngestRefused" && error.retryAfter !== undefined ? Duration.max(delay, Duration.millis(error.retryAfter)) : delay
    ),
    Schedule.whileInput((error: IngestError | LeaseLost) => error._tag !== "LeaseLost")
  )

/** How long a lease lasts without renewal; renewed at a third of that. */
const LEASE_MS = 60_000

/**
 * Why a POST got no answer, without its URL (which may carry credentials): fetch's own error is
 * "fetch failed", the socket's code (`ECONNREFUSED`...) is in its cause.
 */
const unreachable = (error: { readonly cause?: unknown; readonly description?: string | undefined }): IngestUnreachable =>
  new IngestUnreachable({ reason: `cannot reach the receiver (${failureReasonOf(error.cause, error.description ?? "no answer")})` })

export const make = (target: CloudTarget) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const http = yield* HttpClient.HttpClient
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const origin = new URL(target.url).origin
    const withSql = Effect.provideService(SqlClient.SqlClient, sql)

    yield* withSql(Outbox.prepare)
    const ledgerId = yield* withSql(Outbox.ledgerId)
    const owner = randomUUID()
    const state = yield* SubscriptionRef.make<IngestState>({ failingSince: null, lastError: null, delivered: 0, attempts: 0 })
    let holding = false
    // Shown from the first scrape, at 0, rather than from their first event.
    for (const metric of [rowsDelivered, postFailures, backlogRows]) metric.register()
    yield* Metric.set(failing, 0)

    const post = (rows: ReadonlyArray<Outbox.OutboxRow>, key: string): Effect.Effect<void, IngestError | LeaseLost> =>
      Effect.suspend((): Effect.Effect<void, IngestError | LeaseLost> => {
        if (!holding) return Effect.fail(new LeaseLost())
        return HttpClientRequest.post(target.url).pipe(
          HttpClientRequest.setHeaders({
            authorization: `Bearer ${Redacted.value(target.key)}`,
            "idempotency-key": key,
            "user-agent": "tollgate"
          }),
          HttpClientRequest.bodyUnsafeJson(payloadOf(target, ledgerId, key, rows)),
          http.execute,
          Effect.flatMap((response) =>
            response.status >= 200 && response.status < 300
              ? Effect.asVoid(Effect.ignore(response.text))
              : Effect.flatMap(Effect.ignore(response.text), () =>
                Effect.fail(new IngestRefused({ status: response.status, retryAfter: retryAfterMs(response.headers, now()) })))
          ),
          Effect.scoped,
          Effect.catchTags({
            RequestError: (error) => Effect.fail(unreachable(error)),
            ResponseError: (error) => Effect.fail(unreachable(error))
          }),
          Effect.timeoutFail({
            duration: Duration.millis(target.timeout),
            onTimeout: () => new IngestUnreachable({ reason: `no answer in ${target.timeout} ms` })
          }),
          Effect.ensuring(SubscriptionRef.update(state, (s) => ({ ...s, attempts: s.attempts + 1 }))),
          Effect.tapError((error) => failed(error))
        )
      })

    // One line when an episode begins (WARN; ERROR when the receiver refuses the key), the rest at debug.
    const failed = (error: IngestError) =>
      Effect.flatMap(Effect.zipRight(Metric.increment(postFailures), SubscriptionRef.get(state)), (s) => {
        const reason = error.message
        const status = error._tag === "IngestRefused" ? error.status : null
        const first = s.failingSince === null
        const update = Effect.zipRight(
          Metric.set(failing, 1),
          SubscriptionRef.set(state, { ...s, failingSince: s.failingSince ?? now(), lastError: reason })
        )
        if (!first) return Effect.zipRight(update, Effect.logDebug(`cloud ingest: still failing: ${reason}`))
        return Effect.zipRight(
          update,
          Effect.flatMap(Effect.orElseSucceed(withSql(Outbox.backlog), () => ({ rows: -1, oldest: null })), (backlog) =>
            Logging.event(
              status === 401 || status === 403 ? "error" : "warning",
              "ingest_failed",
              `cloud ingest: cannot send to ${origin}: ${reason}` +
                (status === 401 || status === 403 ? " (check the workspace id and WORKSPACE_INGEST_KEY)" : "") +
                `; retrying with backoff, rows wait in the ledger`,
              { target: origin, status, error: reason, backlog: backlog.rows }
            ))
        )
      })

    const delivered = (rows: number) =>
      Effect.flatMap(SubscriptionRef.get(state), (s) => {
        const update = Effect.zipRight(
          Effect.zipRight(Metric.incrementBy(rowsDelivered, rows), Metric.set(failing, 0)),
          SubscriptionRef.set(state, { ...s, failingSince: null, lastError: null, delivered: s.delivered + rows })
        )
        if (s.failingSince === null) return update
        const seconds = (now() - s.failingSince) / 1000
        return Effect.zipRight(
          update,
          Logging.event("info", "ingest_recovered", `cloud ingest: ${origin} accepts again after ${seconds.toFixed(1)} s`, {
            target: origin,
            failedForMs: now() - s.failingSince
          })
        )
      })

    const schedule = retrySchedule(target)
    // The mark is retried for a while if the ledger is busy; if it never lands, the batch is sent
    // again later under the same keys, which the receiver recognises.
    const markRetries = Schedule.exponential("100 millis").pipe(Schedule.either(Schedule.spaced("5 seconds")), Schedule.upTo("1 minute"))

    // Rows per POST: `batchSize`, halved each time the receiver answers 413 (too large), down to one.
    let limit = target.batchSize
    const tooLarge = (error: unknown, rows: number) => error instanceof IngestRefused && error.status === 413 && rows > 1

    /** One batch, sent until the receiver takes it, then marked. Whether to go on at once (more may wait). */
    const cycle = Effect.gen(function*() {
      if (!holding) return false
      const rows = yield* withSql(Outbox.pending(limit))
      if (rows.length === 0) return false
      const ids = rows.map((row) => row.id)
      const key = batchKey(ledgerId, ids)
      const retries = schedule.pipe(Schedule.whileInput((error: IngestError | LeaseLost) => !tooLarge(error, rows.length)))
      // Once the receiver has the batch, the mark is not cut off by a shutdown.
      return yield* Effect.uninterruptibleMask((restore) =>
        restore(Effect.retry(post(rows, key), retries)).pipe(
          Effect.zipRight(Effect.retry(withSql(Outbox.markSent(ids, now())), markRetries)),
          Effect.zipRight(delivered(rows.length)),
          Effect.as(rows.length === limit),
          Effect.catchAll((error) => {
            if (error._tag === "LeaseLost") return Effect.succeed(false)
            if (!tooLarge(error, rows.length)) return Effect.fail(error)
            limit = Math.ceil(rows.length / 2)
            return Effect.as(Effect.logWarning(`cloud ingest: ${origin} refuses ${rows.length} rows as too large; sending ${limit} per POST`), true)
          })
        )
      )
    })

    const renew = Effect.gen(function*() {
      const held = yield* withSql(Outbox.claim(owner, now(), LEASE_MS))
      if (held !== holding) {
        yield* Effect.logDebug(held ? "cloud ingest: this process sends for the ledger" : "cloud ingest: another process sends for the ledger")
      }
      holding = held
    }).pipe(Effect.catchAll((error) => Effect.logDebug(`cloud ingest: cannot renew the lease: ${error.message}`)))

    // The ledger itself failing (its own episode is logged by the writer): said once, then at debug.
    let ledgerTrouble = false
    const loop = Effect.gen(function*() {
      const more = yield* cycle.pipe(
        Effect.tap(() => {
          ledgerTrouble = false
        }),
        Effect.catchAllCause((cause) => {
          const line = "cloud ingest: cannot read or mark the ledger; trying again every interval"
          const log = ledgerTrouble ? Effect.logDebug(line, cause) : Effect.logWarning(line, cause)
          ledgerTrouble = true
          return Effect.as(log, false)
        })
      )
      if (!more) yield* Effect.sleep(Duration.millis(target.interval))
    })

    yield* Effect.addFinalizer(() => Effect.ignore(withSql(Outbox.release(owner))))
    yield* renew
    const backlog = yield* withSql(Outbox.backlog)
    yield* Logging.event(
      "info",
      "ingest_started",
      `cloud ingest: sending ledger rows to ${origin} for workspace ${target.workspaceId} (${backlog.rows} waiting)` +
        (holding ? "" : "; another process sends for this ledger now"),
      { target: origin, workspaceId: target.workspaceId, backlog: backlog.rows }
    )
    yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(Duration.millis(LEASE_MS / 3))))
    yield* Effect.forkScoped(Effect.forever(loop))

    return { origin, workspaceId: target.workspaceId, state } satisfies Sender
  })

/** The ledger could not be prepared for ingest at start: said as the ledger's own start failures are. */
const unprepared = (error: SqlError.SqlError) =>
  new StoreError({ message: `cloud ingest: cannot prepare the ledger for sending: ${error.message}` })

/** Ingest to `target`, on the ledger and the HTTP client the caller gives. */
export const layerTo = (target: CloudTarget): Layer.Layer<Ingest, StoreError, SqlClient.SqlClient | HttpClient.HttpClient> =>
  Layer.scoped(Ingest, Effect.map(Effect.mapError(make(target), unprepared), Option.some))

/** Ingest as `telemetry.cloud` (or the environment) says, on the caller's ledger; `Option.none()` when it is off. */
export const layerWithoutDependencies: Layer.Layer<Ingest, StoreError, TollgateConfig | SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.map(TollgateConfig, (config) =>
    config.cloud === undefined
      ? Layer.succeed(Ingest, Option.none())
      : layerTo(config.cloud).pipe(Layer.provide(FetchHttpClient.layer)))
)
