/**
 * The ledger's failures as alerts, through the budget's alert machinery (stored in
 * `budget_alerts`, listed by `tollgate alerts`, POSTed to `alerts.webhookUrl`): one when an
 * episode begins, one when it ends, never one per row. The first is often not stored (the
 * ledger is what fails) but still delivered; the second is stored in the recovered ledger and
 * says how long the episode lasted and what it lost.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as SubscriptionRef from "effect/SubscriptionRef"
import type { Alert } from "../Budget/Alert.js"
import { Alerts } from "../Budget/Alerts.js"
import type { Health } from "./Failures.js"

const ledgerAlert = (ts: number, dedupeKey: string, message: string): Alert => ({
  ts,
  kind: "ledger",
  scope: "global",
  window: null,
  windowStart: null,
  thresholdPercent: null,
  limitUsd: null,
  spentUsd: null,
  anomaly: null,
  message,
  dedupeKey,
  block: null
})

/** Alerts for each episode in `health`'s changes, until the scope closes. */
export const raise = (health: SubscriptionRef.SubscriptionRef<Health>) =>
  Effect.gen(function*() {
    const alerts = yield* Alerts
    let open: Health | undefined
    yield* health.changes.pipe(
      Stream.runForEach((now) =>
        Effect.suspend(() => {
          if (now.status === "failing" && open === undefined) {
            open = now
            const then = now.onWriteFailure === "block"
              ? "requests are refused (503) until it can be written"
              : "rows are dropped until it can be written"
            return alerts.emit([ledgerAlert(now.since ?? 0, `ledger:${now.since}`, `the ledger cannot be written (${now.reason}); ${then}`)])
          }
          if (now.status === "ok" && open !== undefined) {
            const began = open
            open = undefined
            return Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (at) => {
              const lost = now.lost - began.lost
              return alerts.emit([ledgerAlert(
                at,
                `ledger:${began.since}:recovered`,
                `the ledger can be written again after ${((at - (began.since ?? at)) / 1000).toFixed(1)} s (${began.reason}); ${
                  lost > 0 ? `${lost} rows were lost` : "no row was lost"
                }`
              )])
            })
          }
          return Effect.void
        })
      ),
      Effect.forkScoped
    )
  })
