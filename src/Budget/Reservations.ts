/**
 * The budget's state and its transitions, as pure functions for `Ref.modify`: one call checks a
 * request against every limit that applies and reserves its worst-case cost on all of them, so
 * no number of requests in flight can reserve past a limit between a check and a reservation.
 *
 * Counters are keyed by scope, window, scope value and window start: a new calendar window is a
 * new counter, and a settle always lands in the window its request was admitted in (as the
 * ledger row's `ts` does, so a rebuild from the ledger agrees).
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import { type BadRequest, BudgetExceeded, SessionBlocked } from "../Domain/Errors.js"
import { type Alert, usd } from "./Alert.js"
import type { Hit } from "./Anomalies.js"
import type { Action, Scope, Window } from "./Settings.js"
import { type Bounds, type CalendarWindow, isCalendar } from "./Windows.js"

export interface BudgetRequest {
  readonly requestId: string
  /** Salted hash of the client key (`Telemetry.hashClient`). */
  readonly clientHash: string | null
  /** `x-tollgate-project`. */
  readonly project: string | null
  /** `x-tollgate-session`. */
  readonly session: string | null
  /** The model about to be served (after routing). */
  readonly model: string
  /**
   * The other models the request may be billed at: failover targets, any one of which may serve
   * instead of `model` (the dearest is reserved), or the further steps of a cascade, each of which
   * may be paid for after it (their sum is). A downgrade of `model` applies to these too.
   */
  readonly alternatives?: Alternatives | undefined
  /** The models it may reach that have no price (`budget.unpriced` decides what that means). */
  readonly unpriced?: ReadonlyArray<string> | undefined
  /**
   * At least the input tokens, as the tokenizer counts them (never an estimate below the real
   * count); called only when the reservation could matter (see `Budget.admit`), since the
   * tokenizer costs CPU and memory (`Tokens.ts`).
   */
  readonly estimatedInputTokens: () => number
  /** A bound no count can exceed (the body's UTF-8 length): the reservation far from every limit. */
  readonly inputTokensUpperBound: number
  /** Worst case, computed by the caller (`max_tokens`, or the model's max output). */
  readonly maxOutputTokens: number
  /** Stable hash of the request body, for loop detection: called only when a rule watches for loops. */
  readonly fingerprint: () => string
}

export interface Alternatives {
  readonly models: ReadonlyArray<string>
  readonly cumulative: boolean
}

/**
 * The worst case of a request served first by `model` (the request's own, or its downgrade): the
 * dearest of the targets that may serve it, or the sum of the cascade steps that may be paid for.
 */
export const worstCost = (request: BudgetRequest, model: string, costAt: (model: string) => number): number => {
  const first = costAt(model)
  const alternatives = request.alternatives
  if (alternatives === undefined) return first
  let worst = first
  for (const other of alternatives.models) {
    const cost = costAt(other === request.model ? model : other)
    worst = alternatives.cumulative ? worst + cost : Math.max(worst, cost)
  }
  return worst
}

export interface CompiledLimit {
  readonly scope: Scope
  readonly key: string | undefined
  readonly window: Window
  readonly usd: number
  readonly onBreach: Action
}

export interface Counter {
  readonly scope: Scope
  readonly window: Window
  readonly value: string
  readonly start: number
  /** `Infinity` for a session counter. */
  readonly end: number
  readonly spent: number
  readonly reserved: number
  readonly touched: number
}

export interface Block {
  readonly session: string
  readonly anomaly: string
  readonly until: number
}

export interface State {
  readonly limits: ReadonlyArray<CompiledLimit>
  /** `scope|window|key` of limits with a key: they replace the keyless limit for that value. */
  readonly specific: ReadonlySet<string>
  readonly counters: HashMap.HashMap<string, Counter>
  /** Alert dedupe keys, with when they may be forgotten. */
  readonly fired: HashMap.HashMap<string, number>
  readonly blocks: HashMap.HashMap<string, Block>
}

/** A limit as it applies to one request: which counter it is checked against. */
export interface Applied {
  readonly limit: CompiledLimit
  /** `undefined` for `perRequest`. */
  readonly counterKey: string | undefined
  readonly value: string
  readonly bounds: Bounds | undefined
}

export type Decision =
  | {
    readonly _tag: "Admit"
    readonly model: string
    readonly downgradedFrom: string | null
    readonly headers: Readonly<Record<string, string>>
    readonly reservedUsd: number
    readonly applied: ReadonlyArray<Applied>
    readonly alerts: ReadonlyArray<Alert>
  }
  | { readonly _tag: "Reject"; readonly error: BudgetExceeded | SessionBlocked | BadRequest; readonly alerts: ReadonlyArray<Alert> }

export interface AdmitInput {
  readonly request: BudgetRequest
  readonly now: number
  readonly bounds: (window: CalendarWindow, now: number) => Bounds
  /** Worst-case cost of the request when `model` serves it first (see `worstCost`). */
  readonly costAt: (model: string) => number
  readonly downgradeOf: (model: string) => string | undefined
  readonly thresholdPercent: number | undefined
  readonly hits: ReadonlyArray<Hit>
  /** The key anomalies watch this request under. */
  readonly watchedAs: string
  /** `applicable(state, input)`, when the caller has it already (same state, same instant). */
  readonly applied?: ReadonlyArray<Applied>
}

/** Float sums of cents must not refuse the request that lands exactly on the limit. */
export const EPSILON = 1e-9
const RANK: Record<Action, number> = { alert: 0, warn: 1, downgrade: 2, block: 3 }
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
/** A dedupe key for a session counter is kept this long. */
const SESSION_DEDUPE_MS = 30 * 86_400_000

export const compile = (
  limits: ReadonlyArray<{ readonly scope?: Scope | undefined; readonly key?: string | undefined; readonly window: Window; readonly usd: number; readonly onBreach?: Action | undefined }>,
  defaultAction: Action
): Pick<State, "limits" | "specific"> => {
  const compiled = limits.map((limit): CompiledLimit => ({
    scope: limit.scope ?? (limit.window === "session" ? "session" : "global"),
    key: limit.key,
    window: limit.window,
    usd: limit.usd,
    onBreach: limit.onBreach ?? defaultAction
  }))
  return {
    limits: compiled,
    specific: new Set(compiled.filter((l) => l.key !== undefined).map((l) => `${l.scope}|${l.window}|${l.key}`))
  }
}

export const valueOf = (scope: Scope, request: Pick<BudgetRequest, "clientHash" | "project" | "session">): string | null =>
  scope === "global" ? "" : scope === "client" ? request.clientHash : scope === "project" ? request.project : request.session

export const scopeLabel = (scope: Scope, value: string): string =>
  scope === "global" ? "global" : scope === "client" ? `client ${value}` : `${scope} "${value}"`

export const counterKey = (scope: Scope, window: Window, value: string, start: number) => `${scope}|${window}|${value}|${start}`

/**
 * Counters held at most. Clients choose project and session names, so past this many a new name
 * does not get a counter of its own: it shares one with every other new name of its limit (and so
 * a stricter limit, never a looser one) until finished windows are pruned.
 */
export const MAX_COUNTERS = 50_000

/** The value every name past `MAX_COUNTERS` is counted under (no header can hold a NUL). */
export const OVERFLOW_VALUE = "\u0000overflow"

/** The limits that apply to a request, each with its counter. */
export const applicable = (state: State, input: Pick<AdmitInput, "request" | "now" | "bounds">): Array<Applied> => {
  const out: Array<Applied> = []
  for (const limit of state.limits) {
    const value = valueOf(limit.scope, input.request)
    if (value === null) continue
    if (limit.key !== undefined ? limit.key !== value : state.specific.has(`${limit.scope}|${limit.window}|${value}`)) continue
    if (limit.window === "perRequest") {
      out.push({ limit, counterKey: undefined, value, bounds: undefined })
    } else {
      const bounds = isCalendar(limit.window) ? input.bounds(limit.window, input.now) : undefined
      const start = bounds?.start ?? 0
      let key = counterKey(limit.scope, limit.window, value, start)
      if (limit.scope !== "global" && HashMap.size(state.counters) >= MAX_COUNTERS && !HashMap.has(state.counters, key)) {
        key = counterKey(limit.scope, limit.window, OVERFLOW_VALUE, start)
      }
      out.push({ limit, counterKey: key, value, bounds })
    }
  }
  return out
}

export const usedOf = (counters: HashMap.HashMap<string, Counter>, applied: Applied): number => {
  if (applied.counterKey === undefined) return 0
  const counter = Option.getOrUndefined(HashMap.get(counters, applied.counterKey))
  return counter === undefined ? 0 : counter.spent + counter.reserved
}

export const windowName = (window: Window) => (window === "perRequest" ? "per-request" : window)

const exceeded = (applied: Applied, used: number, cost: number, now: number): BudgetExceeded => {
  const { limit } = applied
  const scope = scopeLabel(limit.scope, applied.value)
  const retryAfterSeconds = applied.bounds === undefined ? null : Math.max(1, Math.ceil((applied.bounds.end - now) / 1000))
  const reopens = applied.bounds === undefined
    ? limit.window === "perRequest" ? "lower max_tokens or use a cheaper model" : "this session has spent its budget"
    : `the window reopens at ${new Date(applied.bounds.end).toISOString()} (in ${retryAfterSeconds} s)`
  const message = limit.window === "perRequest"
    ? `Budget exceeded: this request could cost up to ${usd(cost)}, above the per-request limit of ${usd(limit.usd)} for ${scope}; ${reopens}`
    : `Budget exceeded: the ${windowName(limit.window)} limit of ${usd(limit.usd)} for ${scope} has ${usd(used)} spent or reserved and this request could cost up to ${usd(cost)}; ${reopens}`
  return new BudgetExceeded({ scope, window: limit.window, limitUsd: limit.usd, spentUsd: used, retryAfterSeconds, message })
}

/** Float residue of sums and differences must not show as a reservation still held. */
export const unreserve = (reserved: number, amount: number) => {
  const left = reserved - amount
  return left < EPSILON ? 0 : left
}

export const dedupeUntil = (applied: Applied, now: number) => applied.bounds?.end ?? now + SESSION_DEDUPE_MS

/** The one step that admits (and reserves) or refuses a request. */
export const admit = (state: State, input: AdmitInput): [Decision, State] => {
  const { now, request } = input
  let fired = state.fired
  let blocks = state.blocks
  const alerts: Array<Alert> = []
  const raise = (alert: Alert, until: number) => {
    if (HashMap.has(fired, alert.dedupeKey)) return
    fired = HashMap.set(fired, alert.dedupeKey, until)
    alerts.push(alert)
  }

  // Anomalies seen on this request: alerts, and blocks for `action: block`.
  let blockedByHit: Hit | undefined
  for (const hit of input.hits) {
    const until = now + hit.blockFor
    const block = hit.action === "block" && request.session !== null ? { session: request.session, until } : null
    if (block !== null) blocks = HashMap.set(blocks, block.session, { session: block.session, anomaly: hit.anomaly, until })
    if (hit.action === "block") blockedByHit ??= hit
    raise({
      ts: now,
      kind: "anomaly",
      scope: input.watchedAs,
      window: `${Math.round(hit.window / 1000)}s`,
      windowStart: Math.floor(now / hit.window) * hit.window,
      thresholdPercent: null,
      limitUsd: null,
      spentUsd: null,
      anomaly: hit.anomaly,
      message: `${hit.anomaly} anomaly for ${input.watchedAs}: ${hit.message}${hit.action === "block" ? "; blocked" : ""}`,
      dedupeKey: `anomaly|${hit.anomaly}|${input.watchedAs}|${Math.floor(now / hit.window)}`,
      block
    }, now + hit.window)
  }
  const reject = (error: BudgetExceeded | SessionBlocked): [Decision, State] => [
    { _tag: "Reject", error, alerts },
    { ...state, fired, blocks }
  ]

  if (request.session !== null) {
    const block = Option.getOrUndefined(HashMap.get(blocks, request.session))
    if (block !== undefined && block.until > now) {
      const seconds = Math.max(1, Math.ceil((block.until - now) / 1000))
      return reject(new SessionBlocked({
        session: request.session,
        anomaly: block.anomaly,
        retryAfterSeconds: seconds,
        message: `Session "${request.session}" is blocked after a ${block.anomaly} anomaly until ${
          new Date(block.until).toISOString()
        } (in ${seconds} s); unblock it with: tollgate budget unblock --session ${request.session}`
      }))
    }
  }
  if (blockedByHit !== undefined) {
    return reject(new SessionBlocked({
      session: null,
      anomaly: blockedByHit.anomaly,
      retryAfterSeconds: null,
      message: `Request blocked by the ${blockedByHit.anomaly} anomaly rule: ${blockedByHit.message}`
    }))
  }

  const applied = input.applied ?? applicable(state, input)
  let model = request.model
  let cost = input.costAt(model)
  let downgradedFrom: string | null = null
  let downgradeReason = ""
  const used = applied.map((a) => usedOf(state.counters, a))

  // Auto-downgrade: a limit is close to full once this request is counted.
  if (input.thresholdPercent !== undefined) {
    const threshold = input.thresholdPercent
    const hot = applied.findIndex((a, i) => a.limit.window !== "perRequest" && (used[i]! + cost) >= (a.limit.usd * threshold) / 100)
    const cheaper = hot === -1 ? undefined : input.downgradeOf(model)
    if (cheaper !== undefined) {
      const a = applied[hot]!
      downgradedFrom = model
      downgradeReason = `${windowName(a.limit.window)} budget for ${scopeLabel(a.limit.scope, a.value)} past ${threshold}%`
      model = cheaper
      cost = input.costAt(model)
    }
  }

  let warning: string | undefined
  for (let step = 0;; step++) {
    const breached: Array<number> = []
    for (let i = 0; i < applied.length; i++) {
      const a = applied[i]!
      const projected = a.limit.window === "perRequest" ? cost : used[i]! + cost
      if (projected > a.limit.usd + EPSILON) breached.push(i)
    }
    if (breached.length === 0) break
    let worst: Action = "alert"
    for (const i of breached) if (RANK[applied[i]!.limit.onBreach] > RANK[worst]) worst = applied[i]!.limit.onBreach
    for (const i of breached) {
      const a = applied[i]!
      if (a.counterKey === undefined) continue
      const scope = scopeLabel(a.limit.scope, a.value)
      raise({
        ts: now,
        kind: "breach",
        scope,
        window: a.limit.window,
        windowStart: a.bounds?.start ?? null,
        thresholdPercent: null,
        limitUsd: a.limit.usd,
        spentUsd: used[i]!,
        anomaly: null,
        message: `${windowName(a.limit.window)} limit of ${usd(a.limit.usd)} for ${scope} reached (${usd(used[i]!)} spent or reserved); action: ${a.limit.onBreach}`,
        dedupeKey: `breach|${a.counterKey}`,
        block: null
      }, dedupeUntil(a, now))
    }
    const cheaper = worst === "downgrade" && step < 3 ? input.downgradeOf(model) : undefined
    if (worst === "block" || (worst === "downgrade" && cheaper === undefined)) {
      // The limit that stays shut longest decides Retry-After.
      const candidates = breached.filter((i) => RANK[applied[i]!.limit.onBreach] >= RANK.downgrade)
      const last = candidates.reduce((best, i) => ((applied[i]!.bounds?.end ?? Infinity) > (applied[best]!.bounds?.end ?? Infinity) ? i : best))
      return reject(exceeded(applied[last]!, used[last]!, cost, now))
    }
    if (cheaper !== undefined) {
      const a = applied[breached[0]!]!
      downgradedFrom ??= model
      downgradeReason = `${windowName(a.limit.window)} budget for ${scopeLabel(a.limit.scope, a.value)} reached`
      model = cheaper
      cost = input.costAt(model)
      continue
    }
    if (worst === "warn") {
      const a = applied[breached.find((i) => applied[i]!.limit.onBreach === "warn")!]!
      warning = `${windowName(a.limit.window)} limit of ${usd(a.limit.usd)} for ${scopeLabel(a.limit.scope, a.value)} exceeded`
    }
    break
  }

  let counters = state.counters
  for (const a of applied) {
    if (a.counterKey === undefined) continue
    const existing = Option.getOrUndefined(HashMap.get(counters, a.counterKey))
    counters = HashMap.set(counters, a.counterKey, {
      scope: a.limit.scope,
      window: a.limit.window,
      value: a.value,
      start: a.bounds?.start ?? 0,
      end: a.bounds?.end ?? Infinity,
      spent: existing?.spent ?? 0,
      reserved: (existing?.reserved ?? 0) + cost,
      touched: now
    })
  }
  const headers = downgradedFrom === null && warning === undefined ? EMPTY_HEADERS : {
    ...(downgradedFrom === null ? {} : { "x-tollgate-downgraded": `${downgradedFrom} -> ${model} (${downgradeReason})` }),
    ...(warning === undefined ? {} : { "x-tollgate-budget-warning": warning })
  }
  return [
    { _tag: "Admit", model, downgradedFrom, headers, reservedUsd: cost, applied, alerts },
    { ...state, counters, fired, blocks }
  ]
}
