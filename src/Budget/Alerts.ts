/**
 * The `Alerts` service: budget alerts leave the request path through a bounded queue (offering
 * never waits: when it is full the alert is dropped and logged), a fiber in the layer's scope
 * stores them in SQLite (`budget_alerts`, plus `budget_blocks` for a blocking anomaly) and hands
 * them to a second fiber that POSTs them to `alerts.webhookUrl` with retries, so a slow or failing
 * receiver delays neither requests nor storage. Closing the layer stores what is queued;
 * deliveries still pending then are left undelivered (`delivered_at` stays NULL).
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { TollgateConfig } from "../Config.js"
import type { Alert } from "./Alert.js"
import type { AlertSettings } from "./Settings.js"
import * as Logging from "../Logging.js"
import * as Webhook from "./Webhook.js"

export type { Alert } from "./Alert.js"

export class Alerts extends Context.Tag("tollgate/Alerts")<Alerts, {
  /** Queues alerts for storage and delivery. Never waits, never fails. */
  readonly emit: (alerts: ReadonlyArray<Alert>) => Effect.Effect<void>
  /** Completes once every alert emitted before the call is stored. */
  readonly flush: Effect.Effect<void>
  /** Webhook deliveries that succeeded since the layer was built. */
  readonly delivered: SubscriptionRef.SubscriptionRef<number>
}>() {}

class Flush {
  constructor(readonly done: Deferred.Deferred<void>) {}
}

export interface AlertRow {
  readonly id: number
  readonly ts: number
  readonly kind: string
  readonly scope: string
  readonly time_window: string | null
  readonly window_start: number | null
  readonly threshold: number | null
  readonly limit_usd: number | null
  readonly spent_usd: number | null
  readonly anomaly: string | null
  readonly message: string
  readonly dedupe_key: string
  readonly delivered_at: number | null
  readonly attempts: number
}

/** Stored alerts since `sinceMs`, oldest first. */
export const list = (sinceMs: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<AlertRow>`SELECT * FROM budget_alerts WHERE ts >= ${sinceMs} ORDER BY ts, id`)

/** Dedupe keys already stored, so a restart does not raise the same alert again. */
export const storedKeys = (sinceMs: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ dedupe_key: string }>`SELECT dedupe_key FROM budget_alerts WHERE ts >= ${sinceMs}`, (rows) =>
      rows.map((r) => r.dedupe_key)))

export const make = (settings: AlertSettings) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const http = yield* HttpClient.HttpClient
    const stored = yield* Queue.dropping<Alert | Flush>(settings.queueSize)
    const outbox = yield* Queue.dropping<Alert>(settings.queueSize)
    const delivered = yield* SubscriptionRef.make(0)
    const url = settings.webhookUrl

    const store = (alert: Alert) =>
      Effect.gen(function*() {
        yield* sql`INSERT INTO budget_alerts ${
          sql.insert({
            ts: alert.ts,
            kind: alert.kind,
            scope: alert.scope,
            time_window: alert.window,
            window_start: alert.windowStart,
            threshold: alert.thresholdPercent,
            limit_usd: alert.limitUsd,
            spent_usd: alert.spentUsd,
            anomaly: alert.anomaly,
            message: alert.message,
            dedupe_key: alert.dedupeKey
          })
        } ON CONFLICT (dedupe_key) DO NOTHING`
        if (alert.block !== null) {
          yield* sql`INSERT INTO budget_blocks (session, until, anomaly, ts)
            VALUES (${alert.block.session}, ${alert.block.until}, ${alert.anomaly ?? "anomaly"}, ${alert.ts})
            ON CONFLICT (session) DO UPDATE SET until = excluded.until, anomaly = excluded.anomaly, ts = excluded.ts`
        }
      }).pipe(Effect.catchAll((error) => Effect.logError("alerts: could not store an alert", error)))

    // Logged here, in the storing fiber, not where the alert is raised (on a request's path).
    const fired = (alert: Alert) =>
      Logging.event("warning", "alert", `alert: ${alert.message}`, {
        kind: alert.kind,
        scope: alert.scope,
        window: alert.window,
        thresholdPercent: alert.thresholdPercent,
        limitUsd: alert.limitUsd,
        spentUsd: alert.spentUsd,
        anomaly: alert.anomaly
      })

    const process = (items: Iterable<Alert | Flush>) =>
      Effect.forEach(items, (item) =>
        item instanceof Flush
          ? Deferred.succeed(item.done, undefined)
          : Effect.zipRight(
            Effect.zipRight(fired(item), store(item)),
            url === undefined ? Effect.void : Queue.offer(outbox, item)
          ), { discard: true })

    const storeLoop = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(Queue.takeBetween(stored, 1, 64)), process)
    ).pipe(Effect.forever)
    const storer = yield* Effect.forkScoped(storeLoop)

    if (url !== undefined) {
      const send = yield* Webhook.deliver({ ...settings, webhookUrl: url }).pipe(
        Effect.provideService(HttpClient.HttpClient, http)
      )
      yield* Effect.forkScoped(Effect.forever(
        Effect.gen(function*() {
          const alert = yield* Queue.take(outbox)
          const result = yield* send(alert)
          const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          yield* sql`UPDATE budget_alerts SET attempts = ${result.attempts}, delivered_at = ${result.delivered ? at : null}
            WHERE dedupe_key = ${alert.dedupeKey}`.pipe(Effect.catchAll((error) => Effect.logError("alerts: could not mark a delivery", error)))
          if (result.delivered) yield* SubscriptionRef.update(delivered, (n) => n + 1)
        })
      ))
    }

    // Runs before the scope interrupts the fibers: what is still queued is stored.
    yield* Effect.addFinalizer(() =>
      Fiber.interrupt(storer).pipe(Effect.zipRight(Queue.takeAll(stored)), Effect.flatMap(process))
    )

    const emit = (alerts: ReadonlyArray<Alert>): Effect.Effect<void> =>
      alerts.length === 0 ? Effect.void : Effect.flatMap(Queue.offerAll(stored, alerts), (all) =>
        all ? Effect.void : Effect.logWarning("alerts: queue full, alerts dropped"))

    return Alerts.of({
      emit,
      flush: Effect.flatMap(Deferred.make<void>(), (done) => Effect.zipRight(Queue.offer(stored, new Flush(done)), Deferred.await(done))),
      delivered
    })
  })

export const layerWith = (settings: AlertSettings): Layer.Layer<Alerts, never, SqlClient.SqlClient> =>
  Layer.scoped(Alerts, make(settings)).pipe(Layer.provide(FetchHttpClient.layer))

/** Alerts on the configured settings; the ledger comes from the caller. */
export const layer: Layer.Layer<Alerts, never, TollgateConfig | SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.map(TollgateConfig, (config) => layerWith(config.alerts))
)
