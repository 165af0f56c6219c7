/**
 * Anomaly detection over sliding windows: velocity, cost acceleration, repetition (an agent
 * loop), token explosion. Each watched key (a session, else a client, else everyone) keeps a few
 * timestamps, capped at what its rule needs, so memory stays bounded per key; `prune` forgets
 * keys that went quiet.
 *
 * The detector's maps are mutated in synchronous calls only: on the one JS thread each call is
 * atomic, and this state never needs to agree with the reservations, so it stays out of their Ref.
 */
import * as Money from "../Domain/Money.js"
import type { AnomalyAction, Anomalies } from "./Settings.js"

export type AnomalyKind = "velocity" | "costAcceleration" | "repetition" | "tokenExplosion"

export interface Hit {
  readonly anomaly: AnomalyKind
  readonly action: AnomalyAction
  /** How long `block` stops the session. */
  readonly blockFor: number
  /** The rule's window in ms (for dedupe buckets and messages). */
  readonly window: number
  readonly message: string
}

const NONE: ReadonlyArray<Hit> = []

const seconds = (ms: number) => `${Math.round(ms / 1000)}s`

/** Appends `now`, drops what left the window, keeps at most `cap` entries. Returns the count. */
const slide = (times: Array<number>, now: number, window: number, cap: number): number => {
  times.push(now)
  while (times.length > 0 && times[0]! <= now - window) times.shift()
  while (times.length > cap) times.shift()
  return times.length
}

export class Detector {
  private readonly velocity = new Map<string, Array<number>>()
  private readonly repetition = new Map<string, Array<number>>()
  private readonly spend = new Map<string, Array<readonly [number, number]>>()
  /** When a key's spend was first seen: acceleration needs a whole previous window to compare with. */
  private readonly spendSince = new Map<string, number>()
  /** Any rule configured: when not, `onRequest`/`onSpend` return at once. */
  readonly active: boolean

  constructor(private readonly rules: Anomalies) {
    this.active = rules.velocity !== undefined || rules.costAcceleration !== undefined ||
      rules.repetition !== undefined || rules.tokenExplosion !== undefined
  }

  /** Before a request is admitted: velocity, repetition, token explosion. */
  onRequest(key: string, fingerprint: string, estimatedUsd: number, now: number): ReadonlyArray<Hit> {
    if (!this.active) return NONE
    let hits: Array<Hit> | undefined
    const { repetition, tokenExplosion, velocity } = this.rules
    if (velocity !== undefined) {
      let times = this.velocity.get(key)
      if (times === undefined) this.velocity.set(key, times = [])
      const count = slide(times, now, velocity.window, velocity.maxRequests + 1)
      if (count > velocity.maxRequests) {
        ;(hits ??= []).push({
          anomaly: "velocity",
          action: velocity.action,
          blockFor: velocity.blockFor ?? velocity.window,
          window: velocity.window,
          message: `more than ${velocity.maxRequests} requests in ${seconds(velocity.window)}`
        })
      }
    }
    if (repetition !== undefined) {
      const id = `${key}\u0000${fingerprint}`
      let times = this.repetition.get(id)
      if (times === undefined) this.repetition.set(id, times = [])
      const count = slide(times, now, repetition.window, repetition.maxRepeats + 1)
      if (count > repetition.maxRepeats) {
        ;(hits ??= []).push({
          anomaly: "repetition",
          action: repetition.action,
          blockFor: repetition.blockFor ?? repetition.window,
          window: repetition.window,
          message: `the same request more than ${repetition.maxRepeats} times in ${seconds(repetition.window)} (a loop?)`
        })
      }
    }
    if (tokenExplosion !== undefined && estimatedUsd > tokenExplosion.maxUsd) {
      ;(hits ??= []).push({
        anomaly: "tokenExplosion",
        action: tokenExplosion.action,
        blockFor: tokenExplosion.blockFor,
        window: tokenExplosion.blockFor,
        message: `one request could cost ${Money.usd(estimatedUsd)}, above ${Money.usd(tokenExplosion.maxUsd)}`
      })
    }
    return hits ?? NONE
  }

  /** After a request settles: cost acceleration (the last window spent `factor` x the one before). */
  onSpend(key: string, usd: number, now: number): ReadonlyArray<Hit> {
    const rule = this.rules.costAcceleration
    if (rule === undefined || usd <= 0) return NONE
    let entries = this.spend.get(key)
    if (entries === undefined) {
      this.spend.set(key, entries = [])
      if (!this.spendSince.has(key)) this.spendSince.set(key, now)
    }
    entries.push([now, usd])
    if (now - this.spendSince.get(key)! < 2 * rule.window) return NONE
    while (entries.length > 0 && entries[0]![0] <= now - 2 * rule.window) entries.shift()
    let current = 0
    let previous = 0
    for (const [at, amount] of entries) {
      if (at > now - rule.window) current += amount
      else previous += amount
    }
    if (previous > 0 && current >= rule.minUsd && current >= rule.factor * previous) {
      return [{
        anomaly: "costAcceleration",
        action: rule.action,
        blockFor: rule.blockFor ?? rule.window,
        window: rule.window,
        message: `spend over the last ${seconds(rule.window)} is ${Money.usd(current)}, ${
          (current / previous).toFixed(1)
        }x the ${Money.usd(previous)} of the window before`
      }]
    }
    return NONE
  }

  /** Forgets keys with nothing left inside their windows. */
  prune(now: number): void {
    const { costAcceleration, repetition, velocity } = this.rules
    if (velocity !== undefined) dropQuiet(this.velocity, (t) => t > now - velocity.window)
    if (repetition !== undefined) dropQuiet(this.repetition, (t) => t > now - repetition.window)
    if (costAcceleration !== undefined) {
      for (const [key, entries] of this.spend) {
        if (entries.every(([at]) => at <= now - 2 * costAcceleration.window)) {
          this.spend.delete(key)
          this.spendSince.delete(key)
        }
      }
    }
  }

  /** Watched keys, for tests and status. */
  get size(): number {
    return this.velocity.size + this.repetition.size + this.spend.size
  }
}

const dropQuiet = (map: Map<string, Array<number>>, inside: (t: number) => boolean) => {
  for (const [key, times] of map) {
    if (!times.some(inside)) map.delete(key)
  }
}
