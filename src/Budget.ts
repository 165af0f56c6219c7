/**
 * The `Budget` service: limits that really block.
 *
 * Before a request is sent, `admit` reserves its worst-case cost against every limit that applies
 * (global, client, project, session; hourly/daily/monthly calendar windows in `budget.timezone`,
 * per session, per request) in ONE `Ref.modify`, so 200 requests in flight at the limit cannot
 * overspend. The caller settles the reservation to the real cost afterwards, or releases it on an
 * error or abort. On a breach the limit's action decides: block (429 `budget_exceeded` with
 * Retry-After), downgrade to a cheaper model, warn (header), or alert only.
 *
 * Spend per open window is rebuilt from the ledger when the layer is built; reservations live in
 * memory only. `tollgate budget set/reset/unblock` reach a running server through the
 * `budget_control` table, re-read every `budget.refreshInterval` (see `Budget/Control.ts`).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Alerts from "./Budget/Alerts.js"
import type { Alert } from "./Budget/Alert.js"
import { Detector, type Hit } from "./Budget/Anomalies.js"
import * as Control from "./Budget/Control.js"
import * as Downgrade from "./Budget/Downgrade.js"
import * as Reservations from "./Budget/Reservations.js"
import * as Settlement from "./Budget/Settlement.js"
import * as Shared from "./Budget/Shared.js"
import * as SharedAdmission from "./Budget/SharedAdmission.js"
import { type Action, costAtFallback, type Scope, type Window } from "./Budget/Settings.js"
import * as Spend from "./Budget/Spend.js"
import { isCalendar, Zone } from "./Budget/Windows.js"
import { TollgateConfig } from "./Config.js"
import { BadRequest, type BudgetExceeded, type BudgetStoreUnavailable, type SessionBlocked } from "./Domain/Errors.js"
import type { Usage } from "./Domain/Usage.js"
import * as Logging from "./Logging.js"
import { Pricing } from "./Pricing.js"
import * as RedisStore from "./Redis.js"
import type { StoreError } from "./Store.js"

export { BudgetExceeded, BudgetStoreUnavailable, SessionBlocked } from "./Domain/Errors.js"
export type { BudgetRequest } from "./Budget/Reservations.js"
export { Alerts } from "./Budget/Alerts.js"

export interface Admission {
  /** Serve this (the routed model, or a downgrade). */
  readonly model: string
  readonly downgradedFrom: string | null
  /** `x-tollgate-downgraded`, `x-tollgate-budget-warning`; empty (and shared) when neither. */
  readonly headers: Readonly<Record<string, string>>
  readonly reservedUsd: number
  /** The real cost (`null`: unpriced, counted as 0). Idempotent; frees the rest of the reservation. */
  readonly settle: (costUsd: number | null) => Effect.Effect<void>
  /** Frees the reservation without spending it (error, abort). Idempotent. */
  readonly release: Effect.Effect<void>
}

export interface LimitStatus {
  readonly scope: Scope
  /** The client hash, project or session this line counts; `null` for global. */
  readonly key: string | null
  readonly window: Window
  readonly limitUsd: number
  readonly spentUsd: number
  readonly reservedUsd: number
  /** When the window reopens (Unix ms); `null` for session and per-request limits. */
  readonly resetsAt: number | null
  readonly onBreach: Action
}

export interface SessionBlock {
  readonly session: string
  readonly anomaly: string
  readonly until: number
}

export class Budget extends Context.Tag("tollgate/Budget")<Budget, {
  /** Reserves the request's worst case, or refuses it (a limit, an anomaly block, an unpriced model under `budget.unpriced: block`). */
  readonly admit: (request: Reservations.BudgetRequest) => Effect.Effect<Admission, BudgetExceeded | SessionBlocked | BadRequest | BudgetStoreUnavailable>
  /** Limits or anomaly rules are in force: when not, the caller skips the work `admit` needs (token counts, fingerprint). */
  readonly active: () => boolean
  /** End a stream whose running cost passes its reservation. */
  readonly enforceMidStream: boolean
  /** Limits and their spend in the open windows. */
  readonly status: Effect.Effect<ReadonlyArray<LimitStatus>>
  readonly blocks: Effect.Effect<ReadonlyArray<SessionBlock>>
  /** Lifts an anomaly block in this process (the CLI goes through `Control.unblock`). */
  readonly unblock: (session: string) => Effect.Effect<boolean>
  /** Applies `tollgate budget set/reset/unblock` rows now, instead of at the next refresh. */
  readonly refresh: Effect.Effect<void>
}>() {}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
const ZERO_USAGE = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "estimated" as const }
/** The byte bound is reserved while its cost is under this share of every limit's headroom. */
const PRECISE_WITHIN = 0.05
const NO_HITS: ReadonlyArray<Hit> = []
/** How long stored alert keys keep deduplicating after a restart (longer than a monthly window). */
const DEDUPE_MEMORY_MS = 32 * 86_400_000
const PASS_THROUGH_CACHE = 256

const watchedKey = (request: Reservations.BudgetRequest): string =>
  request.session !== null
    ? `session "${request.session}"`
    : request.clientHash !== null
    ? `client ${request.clientHash}`
    : request.project !== null
    ? `project "${request.project}"`
    : "global"

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const pricing = yield* Pricing
  const alerts = yield* Alerts.Alerts
  const sql = yield* SqlClient.SqlClient
  const clock = yield* Effect.clock
  const settings = config.budget
  const thresholds = config.alerts.thresholds
  const zone = new Zone(settings.timezone)
  const downgradeOf = Downgrade.make(settings.downgrade)
  const detector = new Detector(settings.anomalies)
  const configured = settings.limits.map((limit) => ({
    scope: limit.scope ?? (limit.window === "session" ? "session" as const : "global" as const),
    key: limit.key,
    window: limit.window,
    usd: limit.usd,
    onBreach: limit.onBreach
  }))

  const initial = yield* Control.readAfter(0)
  let lastId = initial.lastId
  let overrides: ReadonlyArray<Control.Override> = initial.overrides
  const limitsNow = () => Reservations.compile(Control.applyOverrides(configured, overrides), settings.onBreach)
  // A limit set with `tollgate budget set` turns budgets on even when the file leaves them off.
  let active = settings.enabled || overrides.length > 0

  const startedAt = clock.unsafeCurrentTimeMillis()
  const compiled = limitsNow()
  const counters = yield* Spend.rebuild({
    limits: compiled.limits,
    zone,
    resets: initial.resets,
    now: startedAt,
    sessionTtl: settings.sessionTtl
  })
  const blockRows = yield* Control.activeBlocks(startedAt)
  const storedKeys = yield* Alerts.storedKeys(startedAt - DEDUPE_MEMORY_MS)
  const state = yield* Ref.make<Reservations.State>({
    ...compiled,
    counters: HashMap.fromIterable(counters),
    fired: HashMap.fromIterable(storedKeys.map((key) => [key, startedAt + DEDUPE_MEMORY_MS] as const)),
    blocks: HashMap.fromIterable(blockRows.map((b) => [b.session, b] as const))
  })

  const bounds = (window: "hourly" | "daily" | "monthly", now: number) => zone.bounds(window, now)

  // With Redis, the counters are shared by every replica (`Budget/SharedAdmission.ts`); this
  // replica's state is then its copy of them, refreshed by every answer from the store.
  const redis = yield* RedisStore.Redis
  const shared = Option.isNone(redis) ? undefined : SharedAdmission.make({
    counters: Shared.make(redis.value),
    state,
    settings,
    zone,
    now: () => clock.unsafeCurrentTimeMillis(),
    rebuild: Effect.suspend(() =>
      Spend.rebuild({ limits: limitsNow().limits, zone, resets: [], now: clock.unsafeCurrentTimeMillis(), sessionTtl: settings.sessionTtl })
    ).pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.orDie),
    releaseLocal: (decision) => Ref.update(state, (s) => Settlement.release(s, decision.applied, decision.reservedUsd))
  })

  /** Alerts raised once across replicas when the counters are shared. */
  const emit = (raised: ReadonlyArray<Alert>) =>
    shared === undefined || raised.length === 0 ? alerts.emit(raised) : Effect.flatMap(shared.claimed(raised), alerts.emit)

  const admissionOf = (
    decision: Extract<Reservations.Decision, { _tag: "Admit" }>,
    session: string | null,
    watchedAs: string,
    hold: SharedAdmission.Hold | undefined
  ): Admission => {
    let open = true
    return {
      model: decision.model,
      downgradedFrom: decision.downgradedFrom,
      headers: decision.headers,
      reservedUsd: decision.reservedUsd,
      settle: (costUsd) =>
        Effect.suspend(() => {
          if (!open) return Effect.void
          open = false
          const now = clock.unsafeCurrentTimeMillis()
          const cost = costUsd ?? 0
          const hits = detector.onSpend(watchedAs, cost, now)
          const settled = Effect.flatMap(
            Ref.modify(state, (s) =>
              Settlement.settle(s, {
                applied: decision.applied,
                reservedUsd: decision.reservedUsd,
                costUsd: cost,
                now,
                thresholds,
                hits,
                session,
                watchedAs
              })),
            emit
          )
          return hold === undefined || shared === undefined ? settled : Effect.zipRight(shared.finish(hold, cost), settled)
        }),
      release: Effect.suspend(() => {
        if (!open) return Effect.void
        open = false
        const released = Ref.update(state, (s) => Settlement.release(s, decision.applied, decision.reservedUsd))
        return hold === undefined || shared === undefined ? released : Effect.zipRight(released, shared.finish(hold, 0))
      })
    }
  }

  // Budgets off: one shared, allocation-free admission per model.
  const passThrough = new Map<string, Effect.Effect<Admission>>()
  const passThroughOf = (model: string): Effect.Effect<Admission> => {
    let admission = passThrough.get(model)
    if (admission === undefined) {
      admission = Effect.succeed({
        model,
        downgradedFrom: null,
        headers: EMPTY_HEADERS,
        reservedUsd: 0,
        settle: () => Effect.void,
        release: Effect.void
      })
      if (passThrough.size < PASS_THROUGH_CACHE) passThrough.set(model, admission)
    }
    return admission
  }

  /**
   * The input side of the worst case. Far from every limit the body's byte length (an upper
   * bound: every token covers at least one byte) is reserved as it is, and the tokenizer is not
   * run: over-reserving a little cannot change this request's outcome, and settling corrects
   * it. Within reach of a limit, a downgrade threshold or the token-explosion rule, the count is
   * exact. The read of the state here only picks the precision; the reservation itself stays one
   * atomic step.
   */
  const inputTokensFor = (
    request: Reservations.BudgetRequest,
    snapshot: Reservations.State,
    applicable: ReadonlyArray<Reservations.Applied>
  ): number => {
    const upper = request.inputTokensUpperBound
    const atUpper = { ...ZERO_USAGE, inputTokens: upper, outputTokens: request.maxOutputTokens }
    const cost = Reservations.worstCost(request, request.model, (model) => priceAt(model, atUpper))
    const exact = request.estimatedInputTokens
    if (cost === 0) return upper
    const explosion = settings.anomalies.tokenExplosion
    if (explosion !== undefined && cost > explosion.maxUsd) return exact()
    const threshold = settings.downgrade.thresholdPercent
    for (const applied of applicable) {
      const used = Reservations.usedOf(snapshot.counters, applied)
      const limit = applied.limit.usd
      if (cost > PRECISE_WITHIN * (limit - used)) return exact()
      if (threshold !== undefined && applied.limit.window !== "perRequest" && (used + cost) * 100 >= limit * threshold) return exact()
    }
    return upper
  }

  /** A model's price for this usage: an unpriced one at the fallback under `unpriced: estimate`, else 0 (and refused under `block`). */
  const fallback = settings.unpricedPrice
  const priceAt = (model: string, usage: Usage): number =>
    pricing.costOf(model, usage) ?? (settings.unpriced === "estimate" ? costAtFallback(fallback, usage) : 0)

  /** `budget.unpriced: block`: a request that may reach an unpriced model, under a limit that applies, is refused. */
  const unpricedRefusal = (request: Reservations.BudgetRequest): BadRequest | undefined => {
    const model = request.unpriced?.[0]
    if (settings.unpriced !== "block" || model === undefined) return undefined
    return new BadRequest({
      code: "unpriced_model",
      message: `Model "${model}" has no price and a budget limit applies to this request, so tollgate cannot count what it would cost. ` +
        `Price it under pricing: in tollgate.yaml (USD per 1M tokens, e.g. pricing: { "${model}": { input: 0.5, output: 1.5 } }), ` +
        `or set budget.unpriced to estimate or allow`
    })
  }

  /** The log line of a request the budget refused. */
  const blockedLine = (error: BudgetExceeded | SessionBlocked | BadRequest, model: string) =>
    error._tag === "BudgetExceeded"
      ? Logging.event("warning", "budget_block", `budget: blocked a request for ${model}: ${error.scope} ${error.window} limit $${error.limitUsd} reached`, {
        model,
        scope: error.scope,
        window: error.window,
        limitUsd: error.limitUsd,
        spentUsd: error.spentUsd,
        retryAfterSeconds: error.retryAfterSeconds
      })
      : error._tag === "SessionBlocked"
      ? Logging.event("warning", "budget_block", `budget: blocked a request for ${model}: anomaly ${error.anomaly}`, {
        model,
        session: error.session,
        anomaly: error.anomaly,
        retryAfterSeconds: error.retryAfterSeconds
      })
      : Logging.event("warning", "budget_block", `budget: refused a request for ${model}: ${error.code}`, { model, code: error.code })

  /** The log line of a request the budget sent to a cheaper model. */
  const downgradedLine = (from: string, to: string, watchedAs: string) =>
    Logging.event("info", "budget_downgrade", `budget: downgraded ${from} to ${to} (${watchedAs} near its limit)`, { from, to, scope: watchedAs })

  /**
   * The local decision: reading the state to pick the input count's precision, and reserving, in
   * one synchronous step (nothing else runs in between, and it is one step instead of two).
   * `anomalies`: whether the anomaly rules see this request (once per request, not per retry).
   */
  const decide = (request: Reservations.BudgetRequest, watchedAs: string, anomalies: boolean) =>
    Ref.modify(state, (snapshot) => {
      const now = clock.unsafeCurrentTimeMillis()
      // The limits this request is checked against, worked out once for both uses.
      const applied = Reservations.applicable(snapshot, { request, now, bounds })
      if (applied.length > 0 && request.unpriced !== undefined && request.unpriced.length > 0) {
        const refused = unpricedRefusal(request)
        if (refused !== undefined) return [{ _tag: "Reject", error: refused, alerts: [] }, snapshot] as const
      }
      const usage = {
        ...ZERO_USAGE,
        inputTokens: inputTokensFor(request, snapshot, applied),
        outputTokens: request.maxOutputTokens
      }
      const costAt = (model: string) => Reservations.worstCost(request, model, (m) => priceAt(m, usage))
      const hits = anomalies && detector.active ? detector.onRequest(watchedAs, request.fingerprint(), costAt(request.model), now) : NO_HITS
      return Reservations.admit(snapshot, {
        request,
        now,
        bounds,
        costAt,
        downgradeOf,
        thresholdPercent: settings.downgrade.thresholdPercent,
        hits,
        watchedAs,
        applied
      })
    })

  const conclude = (
    request: Reservations.BudgetRequest,
    watchedAs: string,
    decision: Reservations.Decision,
    hold: SharedAdmission.Hold | undefined
  ): Effect.Effect<Admission, BudgetExceeded | SessionBlocked | BadRequest> => {
    if (decision._tag === "Reject") {
      const refused = Effect.zipRight(blockedLine(decision.error, request.model), Effect.fail(decision.error))
      return decision.alerts.length === 0 ? refused : Effect.zipRight(emit(decision.alerts), refused)
    }
    const admission = admissionOf(decision, request.session, watchedAs, hold)
    const admitted = decision.alerts.length === 0 ? Effect.succeed(admission) : Effect.as(emit(decision.alerts), admission)
    return decision.downgradedFrom === null ? admitted : Effect.zipRight(downgradedLine(decision.downgradedFrom, decision.model, watchedAs), admitted)
  }

  const admit = (
    request: Reservations.BudgetRequest
  ): Effect.Effect<Admission, BudgetExceeded | SessionBlocked | BadRequest | BudgetStoreUnavailable> => {
    if (!active) return passThroughOf(request.model)
    const watchedAs = watchedKey(request)
    if (shared === undefined) return Effect.flatMap(decide(request, watchedAs, true), (decision) => conclude(request, watchedAs, decision, undefined))
    const commit = (decision: Reservations.Decision) =>
      decision._tag === "Reject"
        ? conclude(request, watchedAs, decision, undefined)
        : Effect.flatMap(
          shared.commit(decision, () => decide(request, watchedAs, false)),
          (committed) => conclude(request, watchedAs, committed.decision, committed.hold)
        )
    return Effect.flatMap(decide(request, watchedAs, true), (decision) => {
      if (decision._tag !== "Reject" || decision.error._tag !== "BudgetExceeded") return commit(decision)
      // The copy may be stale high (other replicas settled below their reservations, or their
      // leases lapsed): a refusal is decided again on the store's numbers before it is final.
      return Effect.flatMap(sharedKeysOf(request), (keys) =>
        keys.length === 0 ? commit(decision) : shared.refresh(keys).pipe(
          Effect.zipRight(forget(decision.alerts.filter((a) => a.kind === "breach"))),
          Effect.zipRight(decide(request, watchedAs, false)),
          // The anomaly rules saw this request once: what they raised stands.
          Effect.map((again) => ({ ...again, alerts: [...decision.alerts.filter((a) => a.kind === "anomaly"), ...again.alerts] })),
          Effect.flatMap(commit)
        ))
    })
  }

  /** The shared counters a request is checked against. */
  const sharedKeysOf = (request: Reservations.BudgetRequest) =>
    Effect.map(Ref.get(state), (snapshot) =>
      Reservations.applicable(snapshot, { request, now: clock.unsafeCurrentTimeMillis(), bounds }).flatMap((a) =>
        a.counterKey === undefined ? [] : [a.counterKey]
      ))

  /** Un-marks breach alerts a decision raised on stale numbers (it is taken again, and raises them again if they hold). */
  const forget = (alerts: ReadonlyArray<Alert>) =>
    alerts.length === 0 ? Effect.void : Ref.update(state, (s) => ({
      ...s,
      fired: alerts.reduce((fired, alert) => HashMap.remove(fired, alert.dedupeKey), s.fired)
    }))

  /** The counters `status` shows: every open one of this copy, and each global or keyed limit's current one. */
  const shownKeys = (s: Reservations.State, now: number): Array<string> => {
    const keys = new Set<string>()
    for (const counter of HashMap.values(s.counters)) {
      if (counter.window === "session" || counter.end > now) keys.add(Reservations.counterKey(counter.scope, counter.window, counter.value, counter.start))
    }
    for (const limit of s.limits) {
      if (limit.window === "perRequest" || (limit.scope !== "global" && limit.key === undefined)) continue
      const open = isCalendar(limit.window) ? bounds(limit.window, now) : undefined
      keys.add(Reservations.counterKey(limit.scope, limit.window, limit.key ?? "", open?.start ?? 0))
    }
    return [...keys]
  }

  const current = shared === undefined
    ? Ref.get(state)
    : Effect.flatMap(Ref.get(state), (s) => Effect.zipRight(shared.refresh(shownKeys(s, clock.unsafeCurrentTimeMillis())), Ref.get(state)))

  const status = Effect.map(current, (s) => {
    const now = clock.unsafeCurrentTimeMillis()
    const lines: Array<LimitStatus> = []
    for (const limit of s.limits) {
      const open = isCalendar(limit.window) ? bounds(limit.window, now) : undefined
      const line = (key: string | null, counter: Reservations.Counter | undefined): LimitStatus => ({
        scope: limit.scope,
        key,
        window: limit.window,
        limitUsd: limit.usd,
        spentUsd: counter?.spent ?? 0,
        reservedUsd: counter?.reserved ?? 0,
        resetsAt: open?.end ?? null,
        onBreach: limit.onBreach
      })
      if (limit.window === "perRequest") {
        lines.push(line(limit.key ?? (limit.scope === "global" ? null : "*"), undefined))
      } else if (limit.scope === "global" || limit.key !== undefined) {
        const value = limit.key ?? ""
        const key = Reservations.counterKey(limit.scope, limit.window, value, open?.start ?? 0)
        lines.push(line(limit.key ?? null, Option.getOrUndefined(HashMap.get(s.counters, key))))
      } else {
        for (const counter of HashMap.values(s.counters)) {
          if (counter.scope !== limit.scope || counter.window !== limit.window || counter.start !== (open?.start ?? 0)) continue
          if (s.specific.has(`${limit.scope}|${limit.window}|${counter.value}`)) continue
          lines.push(line(counter.value, counter))
        }
      }
    }
    return lines
  })

  const blocks = Effect.map(Ref.get(state), (s) => {
    const now = clock.unsafeCurrentTimeMillis()
    return [...HashMap.values(s.blocks)].filter((b) => b.until > now).sort((a, b) => a.session.localeCompare(b.session))
  })

  const unblock = (session: string) =>
    Ref.modify(state, (s) => {
      const was = HashMap.has(s.blocks, session)
      return [was, { ...s, blocks: HashMap.remove(s.blocks, session) }]
    })

  const refresh = Effect.gen(function*() {
    const batch = yield* Control.readAfter(lastId)
    if (batch.lastId === lastId) return
    lastId = batch.lastId
    if (batch.overrides.length > 0) {
      overrides = [...overrides, ...batch.overrides]
      active = settings.enabled || overrides.length > 0
      const next = limitsNow()
      yield* Ref.update(state, (s) => ({ ...s, ...next }))
    }
    for (const r of batch.resets) {
      yield* Ref.update(state, (s) => Settlement.reset(s, r))
      if (shared !== undefined) yield* shared.reset(r)
    }
    for (const session of batch.unblocks) yield* unblock(session)
  }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.catchAll((error) => Effect.logWarning("budget: could not read budget changes from the ledger", error))
  )

  yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(settings.refreshInterval)))
  yield* Effect.forkScoped(Effect.repeat(
    Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      detector.prune(now)
      return Ref.update(state, (s) => Settlement.prune(s, now, settings.sessionTtl))
    }),
    Schedule.spaced("1 minute")
  ))

  if (shared !== undefined) {
    // Seeded now when limits apply (so the first request does not wait for it), else on first use.
    if (active) yield* shared.start.pipe(Effect.catchTag("RedisUnavailable", (error) => Effect.logWarning("budget: cannot seed the shared store yet", error)))
    yield* Effect.forkScoped(Effect.repeat(shared.maintain, Schedule.spaced(Math.max(100, Math.floor(settings.reservationLease / 3)))))
  }

  return Budget.of({ admit, active: () => active, enforceMidStream: settings.enforceMidStream, status, blocks, unblock, refresh })
}).pipe(Effect.catchTag("SqlError", Effect.die))

/** The budget, with alerts it raises; `Alerts` stays visible so a caller can flush them. */
export const layerWithoutDependencies: Layer.Layer<
  Budget,
  never,
  TollgateConfig | Pricing | SqlClient.SqlClient | Alerts.Alerts | RedisStore.Redis
> = Layer.scoped(Budget, make)

/** With the shared store the config names, if any. */
export const layer: Layer.Layer<Budget | Alerts.Alerts, StoreError, TollgateConfig | Pricing | SqlClient.SqlClient> =
  layerWithoutDependencies.pipe(Layer.provideMerge(Alerts.layer), Layer.provide(RedisStore.layer))
