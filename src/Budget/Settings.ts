/**
 * The `budget:` and `alerts:` sections of `tollgate.yaml`, decoded with `effect/Schema`.
 *
 * ```yaml
 * budget:
 *   enabled: true
 *   timezone: Europe/Paris          # calendar windows (hourly/daily/monthly) are local to this zone
 *   onBreach: block                 # block | downgrade | warn | alert (a limit may override it)
 *   limits:
 *     - { window: daily, usd: 10 }                                   # global
 *     - { scope: project, key: agent-x, window: daily, usd: 10 }     # one project
 *     - { scope: session, window: session, usd: 1 }                  # every session, each
 *     - { window: perRequest, usd: 0.5, onBreach: downgrade }
 *   downgrade: { thresholdPercent: 90, mapping: { gpt-5: gpt-5-mini } }
 *   anomalies:
 *     repetition: { maxRepeats: 5, window: 5m, action: block }
 * alerts:
 *   thresholds: [50, 80, 95]
 *   webhookUrl: http://127.0.0.1:9000/hook
 * ```
 *
 * Durations are read by `Config/Duration.ts`, the one schema every config duration uses.
 */
import * as Schema from "effect/Schema"
import { Millis } from "../Config/Duration.js"
import { isUtc, Window } from "./Windows.js"

export { Window }

const Usd = Schema.Number.pipe(Schema.nonNegative({ message: () => "expected an amount in USD >= 0" }))
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "expected a positive integer" }))
const Percent = Schema.Number.pipe(Schema.between(1, 100, { message: () => "expected a percentage between 1 and 100" }))
const Url = Schema.String.pipe(
  Schema.filter((s) => URL.canParse(s) && /^https?:/.test(s), { message: () => "expected an http(s) URL" })
)
// UTC (the default) is known without asking `Intl` (see `Windows.ts`: its data costs memory).
const TimeZone = Schema.String.pipe(Schema.filter((zone) => {
  if (isUtc(zone)) return true
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}, { message: () => "expected an IANA time zone such as UTC or Europe/Paris" }))

/** Who a limit counts for: everyone, each client key, each `x-tollgate-project`, each `x-tollgate-session`. */
export const Scope = Schema.Literal("global", "client", "project", "session")
export type Scope = typeof Scope.Type

/** What happens when a request would pass a limit. */
export const Action = Schema.Literal("block", "downgrade", "warn", "alert")
export type Action = typeof Action.Type

export const Limit = Schema.Struct({
  /** Defaults to `session` for the `session` window, `global` otherwise. */
  scope: Schema.optional(Scope),
  /** Only this client hash / project / session; without it the limit applies to each one separately. */
  key: Schema.optional(Schema.String),
  window: Window,
  usd: Usd,
  /** Overrides `budget.onBreach` for this limit. */
  onBreach: Schema.optional(Action)
}).pipe(Schema.filter((limit) =>
  limit.window === "session" && limit.scope !== undefined && limit.scope !== "session"
    ? "the session window counts per session: use scope: session (or leave scope out)"
    : limit.scope === "global" && limit.key !== undefined
    ? "a global limit has no key"
    : undefined
))
export type Limit = typeof Limit.Type

export const AnomalyAction = Schema.Literal("alert", "block")
export type AnomalyAction = typeof AnomalyAction.Type

const anomalyAction = Schema.optionalWith(AnomalyAction, { default: () => "alert" as const })
/** How long `action: block` stops the session (default: the rule's window). */
const blockFor = Schema.optional(Millis)

export const Anomalies = Schema.Struct({
  /** More than `maxRequests` requests in `window` from one session (or client, or everyone). */
  velocity: Schema.optional(Schema.Struct({
    maxRequests: PositiveInt,
    window: Schema.optionalWith(Millis, { default: () => 60_000 }),
    action: anomalyAction,
    blockFor
  })),
  /** Spend in the last `window` at least `factor` times the spend of the window before it. */
  costAcceleration: Schema.optional(Schema.Struct({
    window: Schema.optionalWith(Millis, { default: () => 60_000 }),
    factor: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(1)), { default: () => 2 }),
    /** Ignore windows that spend less than this: doubling from $0.001 is not a runaway. */
    minUsd: Schema.optionalWith(Usd, { default: () => 0.01 }),
    action: anomalyAction,
    blockFor
  })),
  /** The same request body (fingerprint) more than `maxRepeats` times in `window`: an agent loop. */
  repetition: Schema.optional(Schema.Struct({
    maxRepeats: Schema.optionalWith(PositiveInt, { default: () => 5 }),
    window: Schema.optionalWith(Millis, { default: () => 300_000 }),
    action: anomalyAction,
    blockFor
  })),
  /** One request whose worst-case cost is above `maxUsd`. */
  tokenExplosion: Schema.optional(Schema.Struct({
    maxUsd: Usd,
    action: anomalyAction,
    blockFor: Schema.optionalWith(Millis, { default: () => 3_600_000 })
  }))
})
export type Anomalies = typeof Anomalies.Type

export const Downgrade = Schema.Struct({
  /** Serve the cheaper model once a limit's spend (with this request) reaches this share. */
  thresholdPercent: Schema.optional(Percent),
  /** `model: cheaper-model`; checked before the built-in families. */
  mapping: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Use the built-in family defaults (gpt-5 -> gpt-5-mini, opus -> sonnet, ...) for unmapped models. */
  builtIn: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type Downgrade = typeof Downgrade.Type

/**
 * A model with no price, under a limit that applies: refuse it (`block`, the default: spend the
 * budget cannot see is spend it cannot stop), reserve and book it at `unpricedPrice` (`estimate`),
 * or let it through uncounted (`allow`).
 */
export const Unpriced = Schema.Literal("block", "estimate", "allow")
export type Unpriced = typeof Unpriced.Type

/** USD per 1M tokens, as `pricing:` entries are written. */
export const FallbackPrice = Schema.Struct({
  input: Schema.Number.pipe(Schema.nonNegative()),
  output: Schema.Number.pipe(Schema.nonNegative())
})
export type FallbackPrice = typeof FallbackPrice.Type

/** What `tokens` cost at the fallback price (`budget.unpriced: estimate`). */
export const costAtFallback = (price: FallbackPrice, tokens: { readonly inputTokens: number; readonly outputTokens: number }): number =>
  (tokens.inputTokens * price.input + tokens.outputTokens * price.output) / 1_000_000

export const BudgetSettings = Schema.Struct({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  timezone: Schema.optionalWith(TimeZone, { default: () => "UTC" }),
  onBreach: Schema.optionalWith(Action, { default: () => "block" as const }),
  limits: Schema.optionalWith(Schema.Array(Limit), { default: () => [] }),
  downgrade: Schema.optionalWith(Downgrade, { default: () => Downgrade.make({}) }),
  unpriced: Schema.optionalWith(Unpriced, { default: () => "block" as const }),
  /** The price `unpriced: estimate` reserves and books at (default: a frontier model's, so it errs high). */
  unpricedPrice: Schema.optionalWith(FallbackPrice, { default: () => ({ input: 15, output: 75 }) }),
  /** End a stream whose running cost passes its reservation (with a final SSE error event). */
  enforceMidStream: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  anomalies: Schema.optionalWith(Anomalies, { default: () => ({}) }),
  /** How often a running server picks up `tollgate budget set/reset/unblock` from the ledger file. */
  refreshInterval: Schema.optionalWith(Millis, { default: () => 5_000 }),
  /** A session idle this long is forgotten (its spend is rebuilt at start only if active within it). */
  sessionTtl: Schema.optionalWith(Millis, { default: () => 86_400_000 }),
  /**
   * With a shared store (`redis:`), when it cannot be reached: `block` refuses requests under a
   * limit (503) until it can; `local` admits against this replica's own counters (each replica
   * may then spend up to the limit) and says so in the log.
   */
  onStoreDown: Schema.optionalWith(Schema.Literal("block", "local"), { default: () => "block" as const }),
  /**
   * A reservation in the shared store lapses this long after its replica last renewed it (every
   * third of it while the request runs), so a replica that dies frees what it held.
   */
  reservationLease: Schema.optionalWith(Millis, { default: () => 30_000 })
})
export type BudgetSettings = typeof BudgetSettings.Type

export const AlertSettings = Schema.Struct({
  /** Percentages of a limit that raise a threshold alert, once per window each. */
  thresholds: Schema.optionalWith(Schema.Array(Percent), { default: () => [50, 80, 95] }),
  /** Alerts are POSTed here as JSON, by a background fiber, with retries. */
  webhookUrl: Schema.optional(Url),
  /** Extra headers on webhook calls (an auth token, say). */
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  retry: Schema.optionalWith(
    Schema.Struct({
      attempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 20)), { default: () => 5 }),
      baseDelay: Schema.optionalWith(Millis, { default: () => 1_000 }),
      maxDelay: Schema.optionalWith(Millis, { default: () => 60_000 })
    }),
    { default: () => ({ attempts: 5, baseDelay: 1_000, maxDelay: 60_000 }) }
  ),
  /** Per webhook call. */
  timeout: Schema.optionalWith(Millis, { default: () => 10_000 }),
  /** Alerts waiting to be stored or delivered; past this, new ones are dropped (a request never waits). */
  queueSize: Schema.optionalWith(PositiveInt, { default: () => 1_024 })
})
export type AlertSettings = typeof AlertSettings.Type
