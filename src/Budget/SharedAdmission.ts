/**
 * How the budget uses the shared counters (`Budget/Shared.ts`) when Redis is configured.
 *
 * The decision stays the local one (`Reservations.admit`, on this replica's copy of the
 * counters: downgrades, warnings, alerts, messages); the shared store only guards it. The
 * reservation decided locally is sent in one script; when another replica got there first the
 * script refuses it and answers the counters' real numbers, the copy takes them, and the request
 * is decided again (at most `ATTEMPTS` times). Every answer from the store refreshes the copy, so
 * the local decision is usually right the first time.
 *
 * When the store cannot be reached, `budget.onStoreDown` decides: `block` refuses the request
 * (503), `local` admits it against this replica's copy alone. Both say so in the log, once per
 * outage, and again when the store is back.
 */
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { randomBytes } from "node:crypto"
import { BudgetExceeded, BudgetStoreUnavailable } from "../Domain/Errors.js"
import * as Logging from "../Logging.js"
import type { RedisUnavailable } from "../Redis.js"
import type { Alert } from "./Alert.js"
import type { BudgetSettings } from "./Settings.js"
import * as Reservations from "./Reservations.js"
import * as Shared from "./Shared.js"
import { isCalendar, type Zone } from "./Windows.js"

/** Decisions tried against the shared counters before a request is refused as over its limit. */
const ATTEMPTS = 4
/** Settles waiting for the store to come back, at most (past this the ledger's rebuild counts them). */
const MAX_PENDING = 10_000

type Admit = Extract<Reservations.Decision, { _tag: "Admit" }>

/** A reservation as the shared store holds it. */
export interface Hold {
  readonly epoch: string
  readonly keys: ReadonlyArray<string>
  readonly member: string
  readonly amount: number
}

interface PendingSettle extends Hold {
  readonly cost: number
}

export const make = (options: {
  readonly counters: Shared.SharedCounters
  readonly state: Ref.Ref<Reservations.State>
  readonly settings: BudgetSettings
  readonly zone: Zone
  readonly now: () => number
  /** Spend per open window from the ledger, for a store that lost its data. */
  readonly rebuild: Effect.Effect<ReadonlyArray<readonly [string, Reservations.Counter]>>
  /** Frees a reservation on the copy only (a request refused because the store is down). */
  readonly releaseLocal: (decision: Admit) => Effect.Effect<void>
}) => {
  const { counters, settings, state } = options
  const replica = randomBytes(6).toString("hex")
  let sequence = 0
  let epoch: string | undefined
  const held = new Map<string, Hold>()
  const pending: Array<PendingSettle> = []
  const reseedLock = Effect.unsafeMakeSemaphore(1)

  const ttlOf = (counter: Reservations.Counter) =>
    (counter.window === "session" ? settings.sessionTtl : counter.end - options.now() + 86_400_000) + settings.reservationLease

  /** The copy takes the store's numbers (creating a counter this replica had not seen). */
  const sync = (slots: ReadonlyArray<{ readonly key: string }>, values: ReadonlyArray<Shared.Values>) =>
    Ref.update(state, (s) => {
      let map = s.counters
      const now = options.now()
      slots.forEach((slot, i) => {
        const value = values[i]
        if (value === undefined) return
        const existing = Option.getOrUndefined(HashMap.get(map, slot.key))
        const counter = existing ?? counterOfKey(slot.key, options.zone, now)
        if (counter !== undefined) map = HashMap.set(map, slot.key, { ...counter, spent: value.spent, reserved: value.reserved, touched: now })
      })
      return { ...s, counters: map }
    })

  const { back: storeUp, lost: storeDown } = Logging.transitions(
    (error: RedisUnavailable) =>
      Logging.event(
        "error",
        "budget_store_down",
        `budget: cannot reach the shared store (${error.message}); ` +
          (settings.onStoreDown === "block"
            ? "refusing requests under a limit until it is back (budget.onStoreDown: block)"
            : "counting on this replica alone until it is back (budget.onStoreDown: local)"),
        { store: counters.describe, onStoreDown: settings.onStoreDown }
      ),
    Logging.event("info", "budget_store_up", `budget: the shared store (${counters.describe}) is back`, { store: counters.describe })
  )

  /** Seeds the store from the ledger (once, however many requests find it empty at the same time). */
  const reseed = (seen: string | undefined) =>
    reseedLock.withPermits(1)(Effect.gen(function*() {
      if (epoch !== seen) return
      const rebuilt = yield* options.rebuild
      const proposed = `${replica}-${options.now()}`
      const inForce = yield* counters.seed(proposed, rebuilt, ttlOf)
      epoch = inForce
      if (inForce === proposed) {
        yield* Logging.event("info", "budget_store_seeded", `budget: seeded the shared store (${counters.describe}) with the ledger's spend of ${rebuilt.length} open window(s)`, {
          store: counters.describe,
          counters: rebuilt.length
        })
      }
    }))

  /**
   * Reserves `decision` in the store, or decides again with the store's numbers. `redecide` is
   * the local decision (without anomaly rules, which saw the request once already).
   */
  const commit = (
    first: Admit,
    redecide: () => Effect.Effect<Reservations.Decision>
  ): Effect.Effect<{ readonly decision: Reservations.Decision; readonly hold: Hold | undefined }, BudgetStoreUnavailable> => {
    // The decision whose reservation the copy holds (an earlier one's was replaced by the store's numbers).
    let latest = first
    const attempt = (decision: Reservations.Decision, n: number): Effect.Effect<
      { readonly decision: Reservations.Decision; readonly hold: Hold | undefined },
      RedisUnavailable
    > => {
      if (decision._tag === "Reject") return Effect.succeed({ decision, hold: undefined })
      latest = decision
      const now = options.now()
      const slots = Shared.slotsOf(decision.applied, now, settings.sessionTtl, settings.reservationLease)
      if (slots.length === 0) return Effect.succeed({ decision, hold: undefined })
      if (epoch === undefined) return Effect.zipRight(reseed(undefined), attempt(decision, n + 1))
      const member = `${replica}:${++sequence}|${decision.reservedUsd}`
      const current = epoch
      return Effect.flatMap(
        counters.reserve({ epoch: current, now, member, expires: now + settings.reservationLease, amount: decision.reservedUsd, slots }),
        (result) => {
          if (result._tag === "Reserved") {
            const hold: Hold = { epoch: current, keys: slots.map((s) => s.key), member, amount: decision.reservedUsd }
            held.set(member, hold)
            return Effect.as(sync(slots, result.values), { decision, hold })
          }
          if (n >= ATTEMPTS) {
            if (result._tag === "Reseed") return Effect.zipRight(reseed(current), attempt(decision, n))
            return Effect.zipRight(sync(slots, result.values), Effect.succeed({ decision: refusal(decision, slots, result, now), hold: undefined }))
          }
          const refreshed = result._tag === "Reseed" ? reseed(current) : sync(slots, result.values)
          return Effect.zipRight(refreshed, Effect.flatMap(redecide(), (next) => attempt(next, n + 1)))
        }
      )
    }
    return attempt(first, 1).pipe(
      Effect.tap(() => storeUp),
      Effect.catchTag("RedisUnavailable", (error) =>
        Effect.zipRight(
          storeDown(error),
          settings.onStoreDown === "local"
            ? Effect.succeed({ decision: first, hold: undefined })
            : Effect.zipRight(
              Effect.suspend(() => options.releaseLocal(latest)),
              Effect.fail(new BudgetStoreUnavailable({ store: counters.describe, retryAfterSeconds: 5 }))
            )
        ))
    )
  }

  /** The refusal of a request the store kept refusing: the counter it named, with the store's numbers. */
  const refusal = (decision: Admit, slots: ReadonlyArray<Shared.Slot>, result: Shared.Reserve, now: number): Reservations.Decision => {
    const index = result._tag === "Conflict" ? result.index : 0
    const applied = decision.applied.filter((a) => a.counterKey !== undefined)[index] ?? decision.applied[0]!
    const values = result._tag === "Conflict" ? result.values[index] : undefined
    const used = values === undefined ? 0 : values.spent + values.reserved
    const retryAfterSeconds = applied.bounds === undefined ? null : Math.max(1, Math.ceil((applied.bounds.end - now) / 1000))
    const scope = Reservations.scopeLabel(applied.limit.scope, applied.value)
    return {
      _tag: "Reject",
      alerts: [],
      error: new BudgetExceeded({
        scope,
        window: applied.limit.window,
        limitUsd: applied.limit.usd,
        spentUsd: used,
        retryAfterSeconds,
        message: `Budget exceeded: the ${Reservations.windowName(applied.limit.window)} limit of $${applied.limit.usd} for ${scope} ` +
          `is taken by requests in flight on every replica (${slots.length > 0 ? `$${used.toFixed(6)} spent or reserved` : "no room"}); retry shortly`
      })
    }
  }

  /** Turns a held reservation into spend (`cost` 0: frees it); kept for later when the store is down. */
  const finish = (hold: Hold, cost: number): Effect.Effect<void> => {
    held.delete(hold.member)
    return counters.settle({ epoch: hold.epoch, keys: hold.keys, member: hold.member, amount: hold.amount, cost }).pipe(
      Effect.flatMap((result) => result._tag === "Settled" ? sync(hold.keys.map((key) => ({ key })), result.values) : Effect.void),
      Effect.catchTag("RedisUnavailable", (error) => {
        // A release needs no replay: its lease lapses. Spend does.
        if (cost > 0 && pending.length < MAX_PENDING) pending.push({ ...hold, cost })
        return storeDown(error)
      })
    )
  }

  /** Renews the leases held and replays the settles the store missed: run every third of a lease. */
  const maintain = Effect.suspend(() => {
    const now = options.now()
    const replay = pending.splice(0, pending.length)
    return Effect.gen(function*() {
      yield* counters.renew([...held.values()], now + settings.reservationLease)
      for (let i = 0; i < replay.length; i++) {
        const p = replay[i]!
        const result = yield* counters.settle({ epoch: p.epoch, keys: p.keys, member: p.member, amount: p.amount, cost: p.cost }).pipe(
          Effect.catchTag("RedisUnavailable", (error) => {
            pending.push(...replay.slice(i))
            return Effect.fail(error)
          })
        )
        if (result._tag === "Settled") yield* sync(p.keys.map((key) => ({ key })), result.values)
      }
      yield* storeUp
    }).pipe(Effect.catchTag("RedisUnavailable", storeDown))
  })

  /** The copy refreshed from the store for these counters (for `status`). */
  const refresh = (keys: ReadonlyArray<string>) =>
    counters.read(keys, options.now()).pipe(
      Effect.flatMap((values) => sync(keys.map((key) => ({ key })), values)),
      Effect.catchTag("RedisUnavailable", storeDown)
    )

  /** Alerts only one replica raises: the others find the key claimed. A store that cannot say lets it through. */
  const claimed = (alerts: ReadonlyArray<Alert>): Effect.Effect<ReadonlyArray<Alert>> =>
    alerts.length === 0
      ? Effect.succeed(alerts)
      : Effect.filter(alerts, (alert) =>
        alert.kind === "ledger"
          ? Effect.succeed(true)
          : counters.claim(alert.dedupeKey, 32 * 86_400_000).pipe(Effect.orElseSucceed(() => true)))

  /** A `tollgate budget reset`, applied to the shared counters by one replica. */
  const reset = (match: { readonly at: number; readonly scope: string | null; readonly key: string | null; readonly window: string | null }) =>
    counters.claimReset(`${match.at}|${match.scope}|${match.window}|${match.key}`).pipe(
      Effect.flatMap((mine) =>
        mine
          ? counters.zeroMatching(`${match.scope ?? "*"}|${match.window ?? "*"}|${match.key ?? "*"}|*`)
          : Effect.succeed(0)
      ),
      Effect.catchTag("RedisUnavailable", storeDown)
    )

  return { commit, finish, maintain, refresh, claimed, reset, start: reseed(undefined), held: () => held.size }
}

export type SharedAdmission = ReturnType<typeof make>

/** A counter rebuilt from its key (`scope|window|value|start`; the value may hold `|`). */
export const counterOfKey = (key: string, zone: Zone, now: number): Reservations.Counter | undefined => {
  const parts = key.split("|")
  if (parts.length < 4) return undefined
  const scope = parts[0] as Reservations.Counter["scope"]
  const window = parts[1] as Reservations.Counter["window"]
  const start = Number(parts[parts.length - 1])
  const value = parts.slice(2, -1).join("|")
  const end = isCalendar(window) ? zone.bounds(window, start).end : Infinity
  return { scope, window, value, start, end, spent: 0, reserved: 0, touched: now }
}
