/**
 * The `Failover` service: sends a request to a route's targets in order, retrying each with a
 * `Schedule` that honours `Retry-After`, through each target's circuit breaker.
 *
 * - Retry (per target): exponential backoff from `retry.baseDelay`, doubling, capped at
 *   `retry.maxDelay`, with "equal jitter": retry n waits a uniform draw in [d/2, d] where
 *   d = min(maxDelay, baseDelay * 2^n). A provider's `Retry-After` / `retry-after-ms` is a floor on
 *   that wait (never jittered below); one longer than `maxDelay` means fail over now.
 * - Retryable: unreachable, timeouts, 408, 409, 429, 5xx, 529. Any other 4xx is the request's
 *   fault: it goes back to the client unchanged, with no retry and no failover.
 * - A target whose breaker is open is skipped. When every target was skipped the request fails
 *   with `NoTargetAvailable` and the time until the earliest breaker half-opens.
 * - Adapters answer a stream only once its first chunk is there, so a stream that fails before its
 *   first byte fails the attempt and can still be retried or failed over; after it, nothing is.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { Circuit, layer as CircuitLayer } from "./Circuit.js"
import type { Retry } from "./Config/Schema.js"
import { TollgateConfig } from "./Config.js"
import { type CircuitOpen, errorTypeOf, isRetryable, NoTargetAvailable, type UpstreamError } from "./Domain/Errors.js"
import type { Target } from "./Router.js"
import { targetName } from "./Router/Decision.js"
import * as Logging from "./Logging.js"
import { Metrics } from "./Metrics.js"
import { layer as UpstreamLayer, Upstream, type UpstreamRequest, type UpstreamResponse } from "./Upstream.js"

/** The name of a target, for breakers, headers and the ledger (defined in `Router/Decision.ts`). */
export { targetName }

/**
 * What happened on the way, filled in as it happens so that it is known even when the request
 * fails or its client goes away.
 */
export class Trail {
  /** Requests actually sent upstream. */
  attempts = 0
  /** The target that answered (or was tried last). */
  target: Target | undefined = undefined
  /** The answer came from a target after the first one tried. */
  failover = false
  /** `target:error_type` for each failed attempt, in order. */
  readonly failures: Array<string> = []
  /** `target:circuit_open` for each target skipped by its breaker. */
  readonly skipped: Array<string> = []
}

export interface Dispatch {
  readonly route: string | null
  readonly targets: ReadonlyArray<Target>
  /** The request for a target, to its provider (its body may differ per target: the served model). */
  readonly requestFor: (target: Target) => UpstreamRequest
}

export class Failover extends Context.Tag("tollgate/Failover")<Failover, {
  readonly send: (dispatch: Dispatch, trail: Trail) => Effect.Effect<UpstreamResponse, UpstreamError | NoTargetAvailable>
}>() {}

const retryAfterOf = (error: UpstreamError | CircuitOpen): number =>
  "retryAfterMs" in error && error.retryAfterMs !== undefined ? error.retryAfterMs : 0

/** The per-target retry policy, as a `Schedule` fed with each attempt's error. */
export const retrySchedule = (retry: Retry) =>
  Schedule.exponential(Duration.millis(retry.baseDelay), 2).pipe(
    Schedule.modifyDelay((delay) => Duration.min(delay, Duration.millis(retry.maxDelay))),
    Schedule.jitteredWith({ min: 0.5, max: 1 }),
    Schedule.intersect(Schedule.identity<UpstreamError | CircuitOpen>()),
    Schedule.modifyDelay(([, error], delay) => Duration.max(delay, Duration.millis(retryAfterOf(error)))),
    Schedule.intersect(Schedule.recurs(retry.attempts)),
    Schedule.whileInput((error: UpstreamError | CircuitOpen) => isRetryable(error) && retryAfterOf(error) <= retry.maxDelay)
  )

/** An attempt's HTTP status when the provider answered one, else null (unreachable, timed out). */
const statusOfAttempt = (error: UpstreamError | CircuitOpen): number | null => ("status" in error ? error.status : null)

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const upstream = yield* Upstream
  const circuit = yield* Circuit
  const metrics = Option.getOrUndefined(yield* Effect.serviceOption(Metrics))
  const schedule = retrySchedule(config.retry)

  /**
   * The retry schedule for one target, which logs and counts each retry it decides, with its wait.
   * Built only once an attempt on that target has failed, so the path every request takes pays nothing.
   */
  const retriesOf = (target: Target, name: string) => {
    let retry = 0
    return Schedule.intersect(Schedule.delays(schedule), Schedule.identity<UpstreamError | CircuitOpen>()).pipe(
      Schedule.onDecision(([wait, error], decision) => {
        if (decision._tag === "Done") return Effect.void
        retry++
        metrics?.retried(target.provider.name, target.model, errorTypeOf(error))
        const waitMs = Math.round(Duration.toMillis(wait))
        return Logging.event("warning", "retry", `retrying ${name} in ${waitMs} ms after ${errorTypeOf(error)}`, {
          target: name,
          status: statusOfAttempt(error),
          error: errorTypeOf(error),
          waitMs,
          retry
        })
      })
    )
  }

  // One generator function for every call (`fnUntraced`): a new one per call would cost V8 a new
  // prototype and three hidden classes each time.
  const send = Effect.fnUntraced(function*(dispatch: Dispatch, trail: Trail) {
    let last: UpstreamError | undefined
    let earliestProbeMs = Number.POSITIVE_INFINITY
    for (const target of dispatch.targets) {
      const name = targetName(target)
      const request = dispatch.requestFor(target)
      const attempt = circuit.guard(
        name,
        Effect.suspend(() => {
          trail.attempts++
          trail.target = target
          trail.failover = trail.failover || target !== dispatch.targets[0]
          return upstream.send(request)
        })
      )
      const noteFailure = (error: UpstreamError | CircuitOpen): void => {
        if (error._tag === "CircuitOpen") return
        last = error
        trail.failures.push(`${name}:${errorTypeOf(error)}`)
      }
      // One handler on the path every request takes (an answer at the first try). The schedule's
      // driver is only built once an attempt has failed: building it costs ~12 us. The first
      // failure is replayed into it, so the waits are exactly those of
      // `Effect.retry(attempt, schedule)`.
      const result = yield* Effect.matchEffect(attempt, {
        onSuccess: (response) => Effect.succeed(Either.right(response)),
        onFailure: (first) => {
          noteFailure(first)
          let replayed = false
          return Effect.either(Effect.retry(
            Effect.suspend(() => {
              if (replayed) return Effect.tapError(attempt, (error) => Effect.sync(() => noteFailure(error)))
              replayed = true
              return Effect.fail(first)
            }),
            retriesOf(target, name)
          ))
        }
      })
      if (result._tag === "Right") return result.right
      const error = result.left
      if (error._tag === "CircuitOpen") {
        // Skipped outright, or its breaker opened during our own retries: next target.
        trail.skipped.push(`${name}:circuit_open`)
        earliestProbeMs = Math.min(earliestProbeMs, error.retryAfterMs)
      } else if (!isRetryable(error)) {
        break
      }
      const next = nextTarget(dispatch.targets, target)
      if (next !== undefined && error._tag !== "CircuitOpen") {
        const to = targetName(next)
        yield* Logging.event("warning", "failover", `failing over from ${name} to ${to} after ${errorTypeOf(error)}`, {
          route: dispatch.route,
          from: name,
          to,
          status: statusOfAttempt(error),
          error: errorTypeOf(error)
        })
      }
    }
    // The client gets the last provider answer (a 429 stays a 429 with its Retry-After)...
    if (last !== undefined) return yield* Effect.fail(last)
    // ...unless nothing was sent at all.
    return yield* new NoTargetAvailable({ route: dispatch.route, retryAfterMs: earliestProbeMs })
  })

  return Failover.of({ send })
})

const nextTarget = (targets: ReadonlyArray<Target>, current: Target): Target | undefined => targets[targets.indexOf(current) + 1]

export const layerWithoutDependencies: Layer.Layer<Failover, never, TollgateConfig | Upstream | Circuit> = Layer.effect(Failover, make)

export const layer: Layer.Layer<Failover, never, TollgateConfig> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.merge(UpstreamLayer, CircuitLayer))
)
