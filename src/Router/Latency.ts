/**
 * The `Latency` service: an exponentially weighted moving average of time to first byte per
 * target (`provider/model`), which the `:fast` suffix orders targets by.
 *
 * The proxy calls `observe` after each answered attempt; `snapshot` is an immutable map, so a
 * decision made from it is reproducible (copy-on-write: `observe` copies, `snapshot` is O(1)).
 * ALPHA = 0.3 weighs the last answer at 30%: a target that slows down is noticed within a few
 * requests, and one slow answer does not reorder everything. Clients choose model names, so at
 * most `MAX_TARGETS` averages are kept (the oldest target seen goes first).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const ALPHA = 0.3

/** Targets whose average is kept. */
export const MAX_TARGETS = 256

/** Target name -> EWMA of TTFB in milliseconds. */
export type LatencySnapshot = ReadonlyMap<string, number>

export class Latency extends Context.Tag("tollgate/Latency")<Latency, {
  readonly observe: (target: string, ms: number) => Effect.Effect<void>
  readonly snapshot: () => Effect.Effect<LatencySnapshot>
  /** `snapshot()` read in place, for a caller that is inside a synchronous step of its own already. */
  readonly unsafeSnapshot: () => LatencySnapshot
}>() {}

/** The next average after observing `ms` (the first observation is taken as is). */
export const next = (previous: number | undefined, ms: number): number =>
  previous === undefined ? ms : previous + ALPHA * (ms - previous)

export const make: Effect.Effect<Latency["Type"]> = Effect.sync(() => {
  let current: LatencySnapshot = new Map()
  return Latency.of({
    observe: (target, ms) =>
      Effect.sync(() => {
        if (!Number.isFinite(ms) || ms < 0) return
        const copy = new Map(current)
        if (copy.size >= MAX_TARGETS && !copy.has(target)) copy.delete(copy.keys().next().value!)
        copy.set(target, next(current.get(target), ms))
        current = copy
      }),
    snapshot: () => Effect.sync(() => current),
    unsafeSnapshot: () => current
  })
})

export const layer: Layer.Layer<Latency> = Layer.effect(Latency, make)
