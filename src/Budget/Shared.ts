/**
 * Budget counters shared by every replica, on Redis (`redis:` in the config): the protocol.
 *
 * Each counter (scope, window, value, window start: `Reservations.counterKey`) is a hash with its
 * settled `spent` and the sum of its open reservations, `reserved`, plus a sorted set of those
 * reservations scored by when their lease lapses. One Lua script checks a request against every
 * counter it touches and reserves on all of them, or on none, so no number of replicas can
 * reserve past a limit between a check and a reservation. A replica renews the leases of what it
 * holds; a replica that dies stops renewing, and the next script to touch the counter frees what
 * lapsed. Redis was chosen over Postgres row locks by measurement (docs/scale-out.md).
 *
 * Spend lives in Redis only as a copy of the ledger's: the counters are seeded from the ledger,
 * under an `epoch` key. A Redis that lost its data (restarted; it keeps nothing on disk) has no
 * epoch, every script then answers "reseed", and the first replica to ask rebuilds the spend
 * from the ledger and seeds it again. A settle that reaches a newer epoch than its reservation is
 * dropped: the ledger's row already counts it in the new seed.
 */
import * as Effect from "effect/Effect"
import type { RedisUnavailable, SharedStore } from "../Redis.js"
import type { Applied, Counter } from "./Reservations.js"

/** A counter's numbers, as the shared store holds them. */
export interface Values {
  readonly spent: number
  readonly reserved: number
}

export type Reserve =
  | { readonly _tag: "Reserved"; readonly values: ReadonlyArray<Values> }
  /** The counter at `index` (of the ones passed) has no room: the request may not be reserved as decided. */
  | { readonly _tag: "Conflict"; readonly index: number; readonly values: ReadonlyArray<Values> }
  /** The store's epoch is not this replica's: it lost its data, or another replica seeded it anew. */
  | { readonly _tag: "Reseed" }

export type Settle =
  | { readonly _tag: "Settled"; readonly values: ReadonlyArray<Values> }
  | { readonly _tag: "Stale" }

/** A counter to reserve on: its key, the limit it is checked against (`undefined`: only counted), its lifetime. */
export interface Slot {
  readonly key: string
  readonly limitUsd: number | undefined
  readonly ttlMs: number
}

// Lua numbers are returned to clients as integers: every amount goes back as a string, written
// with 17 significant digits so a sum of cents survives the round trip exactly.
const PURGE = `
local function fmt(x) return string.format('%.17g', x) end
local function purge(k, now)
  local z = k .. ':r'
  local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
  local lapsed = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #lapsed > 0 then
    for _, m in ipairs(lapsed) do reserved = reserved - tonumber(string.match(m, '|([^|]+)$')) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    if reserved < 1e-9 or redis.call('ZCARD', z) == 0 then reserved = 0 end
    redis.call('HSET', k, 'reserved', fmt(reserved))
  end
  return reserved
end
`

/** KEYS: epoch, counters. ARGV: epoch, now, member, expires, amount, then per counter: limit (-1: none), ttl. */
const RESERVE = PURGE + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[5])
local values = {}
local breach = 0
for i = 2, #KEYS do
  local reserved = purge(KEYS[i], now)
  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
  local limit = tonumber(ARGV[6 + (i - 2) * 2])
  if breach == 0 and limit >= 0 and spent + reserved + amount > limit + 1e-9 then breach = i - 1 end
  values[#values + 1] = fmt(spent)
  values[#values + 1] = fmt(reserved)
end
if breach > 0 then
  local out = {0, breach}
  for _, v in ipairs(values) do out[#out + 1] = v end
  return out
end
local out = {1, 0}
for i = 2, #KEYS do
  local ttl = ARGV[7 + (i - 2) * 2]
  local reserved = redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', ARGV[5])
  redis.call('ZADD', KEYS[i] .. ':r', ARGV[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ttl)
  redis.call('PEXPIRE', KEYS[i] .. ':r', ttl)
  out[#out + 1] = values[(i - 2) * 2 + 1]
  out[#out + 1] = reserved
end
return out
`

/** KEYS: epoch, counters. ARGV: epoch, member, amount, cost (0: a release). */
const SETTLE = `
local function fmt(x) return string.format('%.17g', x) end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local out = {1}
for i = 2, #KEYS do
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
  if redis.call('ZREM', KEYS[i] .. ':r', ARGV[2]) == 1 then
    reserved = reserved - tonumber(ARGV[3])
    if reserved < 1e-9 or redis.call('ZCARD', KEYS[i] .. ':r') == 0 then reserved = 0 end
    redis.call('HSET', KEYS[i], 'reserved', fmt(reserved))
  end
  local spent = redis.call('HINCRBYFLOAT', KEYS[i], 'spent', ARGV[4])
  out[#out + 1] = spent
  out[#out + 1] = fmt(reserved)
end
return out
`

/** KEYS: counters' reservation sets. ARGV: expires, then the member held in each. */
const RENEW = `
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', ARGV[1], ARGV[i + 1]) end
return #KEYS
`

/** KEYS: epoch, counters. ARGV: the new epoch, then per counter: spent, ttl. Seeds only a store with no epoch. */
const SEED = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i], KEYS[i] .. ':r')
  redis.call('HSET', KEYS[i], 'spent', ARGV[2 + (i - 2) * 2], 'reserved', '0')
  redis.call('PEXPIRE', KEYS[i], ARGV[3 + (i - 2) * 2])
end
return ARGV[1]
`

/** KEYS: counters. ARGV: now. Frees what lapsed and answers the numbers. */
const READ = PURGE + `
local out = {}
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local reserved = purge(KEYS[i], now)
  out[#out + 1] = redis.call('HGET', KEYS[i], 'spent') or '0'
  out[#out + 1] = fmt(reserved)
end
return out
`

const valuesOf = (flat: ReadonlyArray<unknown>, from: number): Array<Values> => {
  const out: Array<Values> = []
  for (let i = from; i + 1 < flat.length; i += 2) out.push({ spent: Number(flat[i]), reserved: Number(flat[i + 1]) })
  return out
}

/** Renewals per script call: a replica with thousands of requests in flight renews in a few calls. */
const RENEW_BATCH = 256

export interface Held {
  readonly keys: ReadonlyArray<string>
  readonly member: string
}

export const make = (store: SharedStore) => {
  const counterKeyOf = (key: string) => `${store.prefix}budget:c:${key}`
  const epochKey = `${store.prefix}budget:epoch`
  const reserveScript = store.script(RESERVE)
  const settleScript = store.script(SETTLE)
  const renewScript = store.script(RENEW)
  const seedScript = store.script(SEED)
  const readScript = store.script(READ)

  return {
    describe: store.describe,
    counterKeyOf,

    reserve: (input: {
      readonly epoch: string
      readonly now: number
      readonly member: string
      readonly expires: number
      readonly amount: number
      readonly slots: ReadonlyArray<Slot>
    }): Effect.Effect<Reserve, RedisUnavailable> => {
      const args: Array<string | number> = [input.epoch, input.now, input.member, input.expires, String(input.amount)]
      for (const slot of input.slots) args.push(slot.limitUsd === undefined ? -1 : String(slot.limitUsd), Math.max(1, Math.ceil(slot.ttlMs)))
      return Effect.map(reserveScript([epochKey, ...input.slots.map((s) => counterKeyOf(s.key))], args), (raw): Reserve => {
        const flat = raw as ReadonlyArray<unknown>
        const code = Number(flat[0])
        if (code === -1) return { _tag: "Reseed" }
        return code === 1
          ? { _tag: "Reserved", values: valuesOf(flat, 2) }
          : { _tag: "Conflict", index: Number(flat[1]) - 1, values: valuesOf(flat, 2) }
      })
    },

    /** Turns the reservation `member` into `cost` of spend on each counter (`cost` 0: a release). */
    settle: (input: {
      readonly epoch: string
      readonly keys: ReadonlyArray<string>
      readonly member: string
      readonly amount: number
      readonly cost: number
    }): Effect.Effect<Settle, RedisUnavailable> =>
      Effect.map(
        settleScript([epochKey, ...input.keys.map(counterKeyOf)], [input.epoch, input.member, String(input.amount), String(input.cost)]),
        (raw): Settle => {
          const flat = raw as ReadonlyArray<unknown>
          return Number(flat[0]) === -1 ? { _tag: "Stale" } : { _tag: "Settled", values: valuesOf(flat, 1) }
        }
      ),

    /** Extends the leases of the reservations still held. */
    renew: (held: ReadonlyArray<Held>, expires: number): Effect.Effect<void, RedisUnavailable> => {
      const keys: Array<string> = []
      const members: Array<string> = []
      for (const h of held) {
        for (const key of h.keys) {
          keys.push(`${counterKeyOf(key)}:r`)
          members.push(h.member)
        }
      }
      const batches: Array<Effect.Effect<unknown, RedisUnavailable>> = []
      for (let i = 0; i < keys.length; i += RENEW_BATCH) {
        batches.push(renewScript(keys.slice(i, i + RENEW_BATCH), [expires, ...members.slice(i, i + RENEW_BATCH)]))
      }
      return Effect.asVoid(Effect.all(batches, { discard: true }))
    },

    /** Seeds an empty store with spend rebuilt from the ledger; answers the epoch in force (another replica's if it seeded first). */
    seed: (epoch: string, counters: ReadonlyArray<readonly [string, Counter]>, ttlOf: (counter: Counter) => number) => {
      const args: Array<string | number> = [epoch]
      for (const [, counter] of counters) args.push(String(counter.spent), Math.max(1, Math.ceil(ttlOf(counter))))
      return Effect.map(seedScript([epochKey, ...counters.map(([key]) => counterKeyOf(key))], args), String)
    },

    /** The numbers of these counters now (lapsed reservations freed). */
    read: (keys: ReadonlyArray<string>, now: number): Effect.Effect<ReadonlyArray<Values>, RedisUnavailable> =>
      keys.length === 0 ? Effect.succeed([]) : Effect.map(readScript(keys.map(counterKeyOf), [now]), (raw) => valuesOf(raw as ReadonlyArray<unknown>, 0)),

    /** Claims an alert's dedupe key for `ttlMs` across replicas: `true` for the one replica that should raise it. */
    claim: (dedupeKey: string, ttlMs: number): Effect.Effect<boolean, RedisUnavailable> =>
      store.use((redis) => redis.set(`${store.prefix}alert:${dedupeKey}`, "1", "PX", Math.max(1, Math.ceil(ttlMs)), "NX")).pipe(
        Effect.map((answer) => answer === "OK")
      ),

    /** A `tollgate budget reset` (its time and match): `true` for the one replica that applies it to the shared counters. */
    claimReset: (id: string): Effect.Effect<boolean, RedisUnavailable> =>
      store.use((redis) => redis.set(`${store.prefix}budget:reset:${id}`, "1", "PX", 32 * 86_400_000, "NX")).pipe(
        Effect.map((answer) => answer === "OK")
      ),

    /** Sets `spent` to 0 on every shared counter whose key matches (`scope|window|value|start`, `*` for any). */
    zeroMatching: (pattern: string): Effect.Effect<number, RedisUnavailable> =>
      store.use(async (redis) => {
        let cursor = "0"
        let zeroed = 0
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", counterKeyOf(pattern), "COUNT", 500)
          cursor = next
          for (const key of keys) {
            if (key.endsWith(":r")) continue
            await redis.hset(key, "spent", "0")
            zeroed++
          }
        } while (cursor !== "0")
        return zeroed
      })
  }
}

export type SharedCounters = ReturnType<typeof make>

/** The counters a decision reserved on: the slots to send, in the order of `applied`. */
export const slotsOf = (applied: ReadonlyArray<Applied>, now: number, sessionTtl: number, lease: number): Array<Slot> => {
  const out: Array<Slot> = []
  for (const a of applied) {
    if (a.counterKey === undefined) continue
    const blocking = a.limit.onBreach === "block" || a.limit.onBreach === "downgrade"
    // A counter outlives its window by a day (a late settle still lands), a session its idle time.
    const ttlMs = (a.bounds === undefined ? sessionTtl : a.bounds.end - now + 86_400_000) + lease
    out.push({ key: a.counterKey, limitUsd: blocking ? a.limit.usd : undefined, ttlMs })
  }
  return out
}
