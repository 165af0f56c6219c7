/**
 * What happens to a reservation after its request: settled to the real cost (the difference
 * freed, threshold alerts raised once per window), released on an error or abort, and the
 * housekeeping of the state (finished windows pruned, `tollgate budget reset`). Pure functions
 * for `Ref.modify`, like `Reservations.admit`.
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import { type Alert, usd } from "./Alert.js"
import type { Hit } from "./Anomalies.js"
import {
  type Applied,
  dedupeUntil,
  EPSILON,
  scopeLabel,
  type State,
  unreserve,
  windowName
} from "./Reservations.js"
import type { Scope, Window } from "./Settings.js"

/**
 * Turns a reservation into spend (`costUsd`), or frees it (`costUsd` null: released). Threshold
 * alerts fire here, on settled spend, once per counter and threshold.
 */
export const settle = (
  state: State,
  input: {
    readonly applied: ReadonlyArray<Applied>
    readonly reservedUsd: number
    readonly costUsd: number
    readonly now: number
    readonly thresholds: ReadonlyArray<number>
    readonly hits: ReadonlyArray<Hit>
    readonly session: string | null
    readonly watchedAs: string
  }
): [ReadonlyArray<Alert>, State] => {
  let counters = state.counters
  let fired = state.fired
  let blocks = state.blocks
  const alerts: Array<Alert> = []
  for (const a of input.applied) {
    if (a.counterKey === undefined) continue
    const counter = Option.getOrUndefined(HashMap.get(counters, a.counterKey))
    if (counter === undefined) continue
    const spent = counter.spent + input.costUsd
    counters = HashMap.set(counters, a.counterKey, {
      ...counter,
      spent,
      reserved: unreserve(counter.reserved, input.reservedUsd),
      touched: input.now
    })
    if (input.costUsd <= 0 || a.limit.usd <= 0) continue
    const percent = (spent / a.limit.usd) * 100
    for (const threshold of input.thresholds) {
      const dedupeKey = `threshold|${a.counterKey}|${threshold}`
      if (percent + EPSILON < threshold || HashMap.has(fired, dedupeKey)) continue
      fired = HashMap.set(fired, dedupeKey, dedupeUntil(a, input.now))
      const scope = scopeLabel(a.limit.scope, a.value)
      alerts.push({
        ts: input.now,
        kind: "threshold",
        scope,
        window: a.limit.window,
        windowStart: a.bounds?.start ?? null,
        thresholdPercent: threshold,
        limitUsd: a.limit.usd,
        spentUsd: spent,
        anomaly: null,
        message: `${windowName(a.limit.window)} budget for ${scope} at ${Math.floor(percent)}% (${usd(spent)} of ${usd(a.limit.usd)}), past the ${threshold}% threshold`,
        dedupeKey,
        block: null
      })
    }
  }
  for (const hit of input.hits) {
    const dedupeKey = `anomaly|${hit.anomaly}|${input.watchedAs}|${Math.floor(input.now / hit.window)}`
    const block = hit.action === "block" && input.session !== null ? { session: input.session, until: input.now + hit.blockFor } : null
    if (block !== null) blocks = HashMap.set(blocks, block.session, { session: block.session, anomaly: hit.anomaly, until: block.until })
    if (HashMap.has(fired, dedupeKey)) continue
    fired = HashMap.set(fired, dedupeKey, input.now + hit.window)
    alerts.push({
      ts: input.now,
      kind: "anomaly",
      scope: input.watchedAs,
      window: `${Math.round(hit.window / 1000)}s`,
      windowStart: Math.floor(input.now / hit.window) * hit.window,
      thresholdPercent: null,
      limitUsd: null,
      spentUsd: null,
      anomaly: hit.anomaly,
      message: `${hit.anomaly} anomaly for ${input.watchedAs}: ${hit.message}${block !== null ? "; session blocked" : ""}`,
      dedupeKey,
      block
    })
  }
  return [alerts, { ...state, counters, fired, blocks }]
}

/** Frees a reservation without spending it (error, abort). */
export const release = (state: State, applied: ReadonlyArray<Applied>, reservedUsd: number): State => {
  let counters = state.counters
  for (const a of applied) {
    if (a.counterKey === undefined) continue
    const counter = Option.getOrUndefined(HashMap.get(counters, a.counterKey))
    if (counter !== undefined) counters = HashMap.set(counters, a.counterKey, { ...counter, reserved: unreserve(counter.reserved, reservedUsd) })
  }
  return { ...state, counters }
}

/** Drops finished windows, idle sessions and expired dedupe keys and blocks. */
export const prune = (state: State, now: number, sessionTtl: number): State => ({
  ...state,
  counters: HashMap.filter(state.counters, (c) =>
    c.reserved > EPSILON || (c.window === "session" ? c.touched > now - sessionTtl : c.end > now)),
  fired: HashMap.filter(state.fired, (until) => until > now),
  blocks: HashMap.filter(state.blocks, (b) => b.until > now)
})

/** `tollgate budget reset`: spend in the matching open windows starts again from zero. */
export const reset = (
  state: State,
  match: { readonly scope: Scope | null; readonly key: string | null; readonly window: Window | null }
): State => ({
  ...state,
  counters: HashMap.map(state.counters, (c) =>
    (match.scope === null || match.scope === c.scope) && (match.key === null || match.key === c.value) &&
      (match.window === null || match.window === c.window)
      ? { ...c, spent: 0 }
      : c)
})
