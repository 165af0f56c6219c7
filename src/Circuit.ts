/**
 * The `Circuit` service: one breaker per target (provider + model), on `Clock`.
 *
 *   closed ──(failureThreshold consecutive failures, or failure rate over a window)──▶ open
 *   open ──(cooldown elapsed)──▶ half-open: exactly one probe is let through, others are skipped
 *   half-open ──probe succeeds──▶ closed        half-open ──probe fails──▶ open again
 *
 * A failure is what is worth failing over for (unreachable, timeout, 429, 5xx); a provider that
 * answers 4xx to a bad request is healthy. A request interrupted by its client counts for nothing
 * (an interrupted probe gives the probe slot back).
 *
 * Clients choose model names, so the breakers held are bounded (`MAX_BREAKERS`, the oldest closed
 * one goes first), and a routing decision reads only the open ones, kept apart.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type { CircuitSettings } from "./Config/Schema.js"
import { TollgateConfig } from "./Config.js"
import { CircuitOpen, isRetryable, type UpstreamError } from "./Domain/Errors.js"
import * as Logging from "./Logging.js"

type Breaker =
  | { readonly _tag: "Closed"; readonly failures: number; readonly outcomes: ReadonlyArray<Outcome> }
  | { readonly _tag: "Open"; readonly until: number }
  | { readonly _tag: "HalfOpen" }

interface Outcome {
  readonly at: number
  readonly ok: boolean
}

export interface BreakerStatus {
  readonly target: string
  readonly state: "closed" | "open" | "half-open"
  /** For an open breaker: until it lets a probe through. */
  readonly retryAfterMs: number
  readonly consecutiveFailures: number
}

export class Circuit extends Context.Tag("tollgate/Circuit")<Circuit, {
  /** Runs `attempt` through the breaker of `target`, or fails with `CircuitOpen` without running it. */
  readonly guard: <A, E extends UpstreamError, R>(
    target: string,
    attempt: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | CircuitOpen, R>
  /** The given targets' breakers (closed when never used), or every breaker held when none are given. */
  readonly snapshot: (targets?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<BreakerStatus>>
  /** The breakers open now, read in place, for a caller inside a synchronous step of its own (a routing decision). */
  readonly unsafeOpen: () => ReadonlyArray<BreakerStatus>
}>() {}

/** Breakers held at most: past it, the oldest closed one is forgotten (an open one only when all are open). */
export const MAX_BREAKERS = 1_024

const CLOSED: Breaker = { _tag: "Closed", failures: 0, outcomes: [] }
const HALF_OPEN: Breaker = { _tag: "HalfOpen" }
/** While a probe is in flight, others are told to come back after this long. */
const PROBE_PENDING_MS = 1_000

export const make = (settings: CircuitSettings) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    // Every state change is one synchronous step (an `Effect.sync`): on the one JS thread nothing
    // runs between its read and its write, as with `Ref.modify`, and reading all the breakers for
    // a routing decision is one step too, not one per breaker.
    const breakers = new Map<string, Breaker>()
    // The open ones again, target -> until: what a decision reads, without walking every breaker.
    const opened = new Map<string, number>()
    const breakerOf = (target: string): Breaker => breakers.get(target) ?? CLOSED
    const setBreaker = (target: string, breaker: Breaker): void => {
      if (breaker._tag === "Open") opened.set(target, breaker.until)
      else opened.delete(target)
      if (breakers.size >= MAX_BREAKERS && !breakers.has(target)) forgetOne()
      breakers.set(target, breaker)
    }
    /** Makes room: the oldest closed breaker goes, or the oldest of all when every one is open. */
    const forgetOne = (): void => {
      let victim: string | undefined
      for (const [name, breaker] of breakers) {
        if (breaker._tag === "Closed") {
          victim = name
          break
        }
        victim ??= name
      }
      if (victim === undefined) return
      breakers.delete(victim)
      opened.delete(victim)
    }
    const rate = settings.failureRate

    /** Closed-state bookkeeping after one outcome: stays closed or opens. */
    const afterOutcome = (breaker: Breaker & { _tag: "Closed" }, ok: boolean, now: number): Breaker => {
      const failures = ok ? 0 : breaker.failures + 1
      const outcomes = rate === undefined ? [] : [...breaker.outcomes.filter((o) => o.at > now - rate.window), { at: now, ok }]
      const failed = outcomes.filter((o) => !o.ok).length
      const overRate = rate !== undefined && outcomes.length >= rate.minRequests && failed / outcomes.length >= rate.threshold
      return failures >= settings.failureThreshold || overRate
        ? { _tag: "Open", until: now + settings.cooldown }
        : { _tag: "Closed", failures, outcomes }
    }

    /** Was this failure the target's fault (worth opening a breaker for)? */
    const failedOn = (cause: Cause.Cause<unknown>): boolean => cause._tag === "Fail" && isRetryable(cause.error as UpstreamError)

    /**
     * After a normal (closed-state) attempt: a result that lands after another request opened the
     * breaker leaves it as it is. Returns the breaker this outcome opened, if it opened one.
     */
    const recordOutcome = (target: string, ok: boolean): Breaker | undefined => {
      const breaker = breakerOf(target)
      if (breaker._tag !== "Closed") return undefined
      const next = afterOutcome(breaker, ok, clock.unsafeCurrentTimeMillis())
      setBreaker(target, next)
      return next._tag === "Open" ? next : undefined
    }

    /** The one log line of a breaker's change of state. */
    const changed = (target: string, state: "open" | "half-open" | "closed", why: string, from: Breaker["_tag"]) =>
      Logging.event(state === "closed" ? "info" : "warning", "breaker", `breaker ${target} ${state === "open" ? "opened" : state === "closed" ? "closed" : "half-open"}: ${why}`, {
        target,
        state,
        from: from === "HalfOpen" ? "half-open" : from.toLowerCase(),
        ...(state === "open" ? { cooldownMs: settings.cooldown } : {})
      })
    const openedBy = (target: string, failures: number) =>
      changed(
        target,
        "open",
        failures >= settings.failureThreshold ? `${failures} consecutive failures` : `failure rate reached ${settings.failureRate?.threshold ?? 1}`,
        "Closed"
      )

    const guard = <A, E extends UpstreamError, R>(target: string, attempt: Effect.Effect<A, E, R>) =>
      // One synchronous step decides: run normally, run as the probe, or skip.
      Effect.suspend((): Effect.Effect<A, E | CircuitOpen, R> => {
        const now = clock.unsafeCurrentTimeMillis()
        const breaker = breakerOf(target)
        switch (breaker._tag) {
          case "Closed":
            if (!breakers.has(target)) setBreaker(target, breaker)
            // An interrupted attempt counts for nothing, and skipping these handlers on
            // interruption is what matchCauseEffect does: no uninterruptible region is needed
            // (on the path every request takes, that region is five steps).
            // The outcome is recorded in the continuation itself (as many steps as an
            // `Effect.sync`); a breaker it opens adds its log line.
            return Effect.matchCauseEffect(attempt, {
              onSuccess: (a) => (recordOutcome(target, true) === undefined ? Effect.succeed(a) : Effect.as(openedBy(target, 0), a)),
              onFailure: (cause) =>
                Effect.suspend(() => {
                  const before = breakerOf(target)
                  const open = Cause.isInterrupted(cause) ? undefined : recordOutcome(target, !failedOn(cause))
                  return open === undefined || before._tag !== "Closed"
                    ? Effect.failCause(cause)
                    : Effect.zipRight(openedBy(target, before.failures + 1), Effect.failCause(cause))
                })
            })
          case "Open":
            if (now < breaker.until) return Effect.fail(new CircuitOpen({ target, retryAfterMs: breaker.until - now }))
            setBreaker(target, HALF_OPEN)
            // The probe must settle its breaker however it ends, interrupted included (an
            // interrupted probe gives the slot back, opening the breaker until now).
            return Effect.zipRight(
              changed(target, "half-open", "cooldown over, letting one probe through", "Open"),
              Effect.onExit(attempt, (exit) =>
                Effect.suspend(() => {
                  const at = clock.unsafeCurrentTimeMillis()
                  const interrupted = Exit.isInterrupted(exit)
                  const ok = !interrupted && (Exit.isSuccess(exit) || !failedOn(exit.cause))
                  setBreaker(target, interrupted ? { _tag: "Open", until: at } : ok ? CLOSED : { _tag: "Open", until: at + settings.cooldown })
                  return interrupted
                    ? Effect.void
                    : ok
                    ? changed(target, "closed", "the probe succeeded", "HalfOpen")
                    : changed(target, "open", "the probe failed", "HalfOpen")
                }))
            )
          case "HalfOpen":
            return Effect.fail(new CircuitOpen({ target, retryAfterMs: PROBE_PENDING_MS }))
        }
      })

    const statusOf = (target: string, breaker: Breaker, now: number): BreakerStatus => {
      switch (breaker._tag) {
        case "Closed":
          return { target, state: "closed", retryAfterMs: 0, consecutiveFailures: breaker.failures }
        case "Open":
          return breaker.until > now
            ? { target, state: "open", retryAfterMs: breaker.until - now, consecutiveFailures: settings.failureThreshold }
            : { target, state: "half-open", retryAfterMs: 0, consecutiveFailures: settings.failureThreshold }
        case "HalfOpen":
          return { target, state: "half-open", retryAfterMs: 0, consecutiveFailures: settings.failureThreshold }
      }
    }

    const snapshot = (targets?: ReadonlyArray<string>) =>
      Effect.sync(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const out: Array<BreakerStatus> = []
        for (const target of targets ?? breakers.keys()) out.push(statusOf(target, breakerOf(target), now))
        return out
      })

    const NONE_OPEN: ReadonlyArray<BreakerStatus> = []
    const unsafeOpen = (): ReadonlyArray<BreakerStatus> => {
      if (opened.size === 0) return NONE_OPEN
      const now = clock.unsafeCurrentTimeMillis()
      const out: Array<BreakerStatus> = []
      for (const [target, until] of opened) {
        if (until > now) out.push({ target, state: "open", retryAfterMs: until - now, consecutiveFailures: settings.failureThreshold })
      }
      return out
    }

    return Circuit.of({ guard, snapshot, unsafeOpen })
  })

export const layer: Layer.Layer<Circuit, never, TollgateConfig> = Layer.effect(
  Circuit,
  Effect.flatMap(TollgateConfig, (config) => make(config.circuit))
)
