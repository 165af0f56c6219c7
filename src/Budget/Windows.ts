/**
 * Calendar windows (hourly, daily, monthly) in an IANA time zone, from `Intl.DateTimeFormat` (UTC
 * from `Date` alone).
 * A `Zone` remembers the window it computed last, so the hot path pays for `Intl` only when a
 * window rolls over, not per request.
 */
import * as Schema from "effect/Schema"

/**
 * `hourly`/`daily`/`monthly`: calendar windows in `budget.timezone`. `session`: everything a
 * session spends. `perRequest`: the worst-case cost of one call. Declared here rather than in
 * `Settings.ts` (which re-exports it), since `Settings.ts` imports `isUtc` from this module.
 */
export const Window = Schema.Literal("hourly", "daily", "monthly", "session", "perRequest")
export type Window = typeof Window.Type

export type CalendarWindow = Extract<Window, "hourly" | "daily" | "monthly">

export interface Bounds {
  /** Unix ms, inclusive. */
  readonly start: number
  /** Unix ms, exclusive: when the window reopens. */
  readonly end: number
}

export const isCalendar = (window: Window): window is CalendarWindow =>
  window === "hourly" || window === "daily" || window === "monthly"

const HOUR = 3_600_000

interface Fields {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hour: number
  readonly minute: number
  readonly second: number
}

/**
 * Zones whose clock is UTC all year (`UTC` is the default). Their fields come from `Date`'s UTC
 * getters: no `Intl`, whose formatting and time-zone data, once touched, keep more of the node
 * binary resident.
 */
const UTC_ZONES = new Set(["UTC", "Etc/UTC"])
export const isUtc = (zone: string): boolean => UTC_ZONES.has(zone)

const utcFields = (at: number): Fields => {
  const date = new Date(at)
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
    hour: date.getUTCHours(),
    minute: date.getUTCMinutes(),
    second: date.getUTCSeconds()
  }
}

/** Local wall-clock fields of an instant in an IANA zone, from `Intl.DateTimeFormat`. */
const zoneFields = (zone: string): (at: number) => Fields => {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric"
  })
  return (at) => {
    const fields: Record<string, number> = {}
    for (const part of format.formatToParts(at)) {
      if (part.type !== "literal") fields[part.type] = Number(part.value)
    }
    return { year: fields.year!, month: fields.month!, day: fields.day!, hour: fields.hour!, minute: fields.minute!, second: fields.second! }
  }
}

export class Zone {
  /** Local wall-clock fields of an instant. */
  private readonly parts: (at: number) => Fields
  private readonly cached: Record<CalendarWindow, Bounds> = {
    hourly: { start: 0, end: 0 },
    daily: { start: 0, end: 0 },
    monthly: { start: 0, end: 0 }
  }

  constructor(readonly name: string) {
    this.parts = isUtc(name) ? utcFields : zoneFields(name)
  }

  /** The window of kind `window` that contains `now`. */
  bounds(window: CalendarWindow, now: number): Bounds {
    const cached = this.cached[window]
    if (now >= cached.start && now < cached.end) return cached
    const fresh = this.compute(window, now)
    this.cached[window] = fresh
    return fresh
  }

  /** How far local time is ahead of UTC at `at`, in ms. */
  private offsetAt(at: number): number {
    const p = this.parts(at)
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(at / 1000) * 1000
  }

  /** The instant a local wall-clock time names (Date.UTC normalises overflow such as day 32). */
  private fromLocal(year: number, month: number, day: number): number {
    const local = Date.UTC(year, month - 1, day)
    // Two passes settle the offset even when the guess lands across a DST change.
    const first = local - this.offsetAt(local)
    return local - this.offsetAt(first)
  }

  private compute(window: CalendarWindow, now: number): Bounds {
    if (window === "hourly") {
      // Local hours, so a +05:30 zone's hours start at :30 UTC; DST shifts whole hours only.
      const local = now + this.offsetAt(now)
      const start = now - (((local % HOUR) + HOUR) % HOUR)
      return { start, end: start + HOUR }
    }
    const p = this.parts(now)
    return window === "daily"
      ? { start: this.fromLocal(p.year, p.month, p.day), end: this.fromLocal(p.year, p.month, p.day + 1) }
      : { start: this.fromLocal(p.year, p.month, 1), end: this.fromLocal(p.year, p.month + 1, 1) }
  }
}
