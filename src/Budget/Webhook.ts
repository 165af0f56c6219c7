/**
 * Delivery of one alert to `alerts.webhookUrl`: a JSON POST, retried with exponential backoff
 * (a `Schedule` on `Clock`) on a network error, a timeout or a non-2xx answer.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Money from "../Domain/Money.js"
import type { Alert } from "./Alert.js"
import type { AlertSettings } from "./Settings.js"

/** What a webhook receives. */
export const payloadOf = (alert: Alert) => ({
  type: "tollgate.budget.alert",
  alert: {
    ts: new Date(alert.ts).toISOString(),
    kind: alert.kind,
    scope: alert.scope,
    window: alert.window,
    thresholdPercent: alert.thresholdPercent,
    // Rounded (Money.json): a sum of float costs would otherwise carry noise such as 0.00008399999999999998.
    limitUsd: Money.jsonOrNull(alert.limitUsd),
    spentUsd: Money.jsonOrNull(alert.spentUsd),
    anomaly: alert.anomaly,
    message: alert.message,
    blockedUntil: alert.block === null ? null : new Date(alert.block.until).toISOString()
  }
})

/** base, 2 x base, 4 x base... capped at `maxDelay`, `attempts` retries after the first try. */
export const retrySchedule = (retry: AlertSettings["retry"]) =>
  Schedule.exponential(Duration.millis(retry.baseDelay)).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.millis(retry.maxDelay))),
    Schedule.intersect(Schedule.recurs(retry.attempts))
  )

export interface Delivery {
  readonly delivered: boolean
  readonly attempts: number
}

export const deliver = (settings: AlertSettings & { readonly webhookUrl: string }) =>
  Effect.gen(function*() {
    const client = HttpClient.filterStatusOk(yield* HttpClient.HttpClient)
    const schedule = retrySchedule(settings.retry)
    return (alert: Alert): Effect.Effect<Delivery> => {
      let attempts = 0
      const once = Effect.suspend(() => {
        attempts++
        return HttpClientRequest.post(settings.webhookUrl).pipe(
          HttpClientRequest.setHeaders(settings.headers),
          HttpClientRequest.bodyUnsafeJson(payloadOf(alert)),
          client.execute,
          Effect.flatMap((response) => response.text),
          Effect.scoped,
          Effect.timeoutFail({ duration: settings.timeout, onTimeout: () => new Error(`no answer in ${settings.timeout} ms`) })
        )
      })
      return once.pipe(
        Effect.retry(schedule),
        Effect.as(true),
        Effect.catchAll((error) =>
          Effect.logWarning(`alerts: webhook delivery failed after ${attempts} attempt(s): ${String(error)}`).pipe(Effect.as(false))
        ),
        Effect.map((delivered) => ({ delivered, attempts }))
      )
    }
  })
