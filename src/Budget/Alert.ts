/** What an alert is: a threshold crossed, a limit breached, an anomaly seen, or the ledger failing. */

export interface Alert {
  readonly ts: number
  readonly kind: "threshold" | "breach" | "anomaly" | "ledger"
  /** `global`, `client <hash>`, `project "x"`, `session "s"`. */
  readonly scope: string
  /** `hourly`, `daily`, `monthly`, `session`, `perRequest`, or the anomaly's sliding window (`60s`). */
  readonly window: string | null
  readonly windowStart: number | null
  readonly thresholdPercent: number | null
  readonly limitUsd: number | null
  readonly spentUsd: number | null
  /** `velocity`, `costAcceleration`, `repetition`, `tokenExplosion`. */
  readonly anomaly: string | null
  readonly message: string
  /** One alert per key: scope + window (+ threshold). */
  readonly dedupeKey: string
  /** The session this alert blocks, and until when (persisted, so `status` and restarts see it). */
  readonly block: { readonly session: string; readonly until: number } | null
}

/** Amounts in alert and budget messages: `Money.usd` (a $0.015 limit reads $0.015, not $0.01). */
export { usd } from "../Domain/Money.js"
