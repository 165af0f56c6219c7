/**
 * The shared tier (`cache.redis`): answers kept in Redis for every replica, behind each one's
 * memory tier, and the lease that lets identical requests on several replicas make one upstream call.
 *
 * Entries: `<prefix>cache:<key>`, the key the memory tier uses (it holds the tenant and the target),
 * the value sealed as every tier outside memory seals it (`Seal.ts`: gzip, AES-256-GCM with
 * `cache.encrypt`), expiring with `PX cache.ttl` on the server's clock.
 *
 * Leases: `<prefix>cache-lease:<key>`. A flight about to call upstream claims the key in one
 * script: the entry is there (served as a hit), or the lease is free (taken, renewed by a fiber in
 * the layer's scope while the flight runs, released when it ends), or another replica holds it
 * (then the flight waits, polling, bounded, until the entry lands or the lease goes). A released
 * lease is left as a short marker so that its waiters, when the answer was not stored (a failure,
 * an answer that may not be cached), each call on their own at once rather than taking the lease
 * in turn; an owner that died lets its lease lapse, and one waiter takes it over. Streams do not
 * wait (the proxy decides): a streaming client follows its own call live.
 *
 * Nothing here fails a request: while the server is away the tier is skipped (a miss, a flight
 * that calls on its own), said once when it is lost and once when it is back.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import type { Redis as IoRedis } from "ioredis"
import * as Logging from "../Logging.js"
import type { RedisUnavailable, SharedStore } from "../Redis.js"
import { AnsweredElsewhere, type CachedAnswer } from "./Answer.js"
import type { Sealer } from "./Seal.js"

/** A lease lapses this long after its owner last renewed it (an owner that died frees it so); renewed three times as often. */
export const LEASE_MS = 10_000
/** How long a released lease tells late waiters to call on their own. */
const RELEASED_MS = 2_000
/** A waiter polls the entry at this pace, doubling from the first to the last. */
const FIRST_POLL_MS = 10
const MAX_POLL_MS = 200
/** The longest a flight waits for another replica's call before making its own (a bound, not a guess: the lease is renewed while that call runs). */
export const MAX_WAIT_MS = 300_000

/** The value of a released lease (tokens are hex). */
const RELEASED = "-"

/** The entry is there; else the lease is taken if free; else who holds it. */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'hit' end
local holder = redis.call('GET', KEYS[2])
if not holder then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 'lead'
end
if holder == ARGV[3] then return 'released' end
return 'wait'`

/** 1 while the lease is still this owner's (then renewed), else 0. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0`

export interface Found {
  readonly answer: CachedAnswer
  readonly expiresAt: number
}

export interface SharedTier {
  readonly get: (key: string) => Effect.Effect<Option.Option<Found>>
  readonly set: (key: string, answer: CachedAnswer) => Effect.Effect<void>
  /**
   * For a flight about to call upstream: returns when it should call (holding the lease until
   * `release`, or when nobody can answer sooner); fails with the answer when another replica's
   * call stored it meanwhile.
   */
  readonly lead: (key: string) => Effect.Effect<void, AnsweredElsewhere>
  /** The flight that led `key` has ended: its lease is let go (nothing, if this replica holds none). */
  readonly release: (key: string) => Effect.Effect<void>
}

export const make = (
  store: SharedStore,
  sealer: Sealer,
  ttlMs: number,
  leaseMs: number = LEASE_MS
): Effect.Effect<SharedTier, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    /** The leases this replica holds: their tokens, and (by key) the fibers renewing them. */
    const held = new Map<string, string>()
    const renewals = yield* FiberMap.make<string>()
    const entryOf = (key: string) => `${store.prefix}cache:${key}`
    const leaseOf = (key: string) => `${store.prefix}cache-lease:${key}`
    const claim = store.script(CLAIM)
    const renew = store.script(RENEW)
    const letGo = store.script(RELEASE)

    // Transitions only: one line when the server is lost, one when a command works again.
    const { back, lost } = Logging.transitions(
      (reason: string) =>
        Logging.event(
          "warning",
          "cache_shared_down",
          `cache: the shared tier at ${store.describe} cannot be used (${reason}); answers come from memory and upstream until it is back`,
          { server: store.describe }
        ),
      Logging.event("info", "cache_shared_up", `cache: the shared tier at ${store.describe} is back`, { server: store.describe })
    )

    /** One command, or None (logged as a transition) while the server is away. */
    const attempt = <A>(command: Effect.Effect<A, RedisUnavailable>): Effect.Effect<Option.Option<A>> =>
      store.ready()
        ? Effect.matchEffect(command, {
          onFailure: (error) => Effect.as(lost(error.message), Option.none()),
          onSuccess: (value) => Effect.as(back, Option.some(value))
        })
        : Effect.as(lost("not connected"), Option.none())

    const get = (key: string): Effect.Effect<Option.Option<Found>> =>
      Effect.flatMap(
        attempt(store.use(async (client) => {
          const entry = entryOf(key)
          const replies = await client.multi().getBuffer(entry).pttl(entry).exec()
          const [data, ttl] = replies ?? []
          if (data?.[0] != null) throw data[0]
          if (ttl?.[0] != null) throw ttl[0]
          return { data: data?.[1] as Buffer | null, ttl: ttl?.[1] as number }
        })),
        (reply) => {
          if (Option.isNone(reply) || reply.value.data === null || reply.value.ttl <= 0) return Effect.succeed(Option.none())
          const { data, ttl } = reply.value
          return Effect.try({
            try: () => Option.some({ answer: sealer.open(data), expiresAt: clock.unsafeCurrentTimeMillis() + ttl }),
            catch: (error) => (error instanceof Error ? error.message : String(error))
          }).pipe(
            // An unreadable entry (corrupt, or sealed under another key) is a miss.
            Effect.catchAll((reason) => Effect.as(Effect.logWarning(`cache: unreadable shared entry ignored (${reason})`), Option.none()))
          )
        }
      )

    const set = (key: string, answer: CachedAnswer): Effect.Effect<void> =>
      Effect.suspend(() => {
        const sealed = Buffer.from(sealer.seal(answer))
        return attempt(store.use((client) => client.set(entryOf(key), sealed, "PX", ttlMs)))
      })

    /** Renews the lease while it is this owner's; the server away for a moment is tried again. */
    const renewing = (lease: string, token: string) =>
      Effect.sleep(Math.floor(leaseMs / 3)).pipe(
        Effect.zipRight(renew([lease], [token, leaseMs])),
        Effect.map((held) => held === 1),
        Effect.orElseSucceed(() => true),
        Effect.repeat({ while: (held) => held })
      )

    /** Taken: remembered and renewed (one step, not interrupted between the server's answer and the record of it). */
    const take = (key: string, lease: string, token: string) =>
      Effect.zipRight(Effect.sync(() => held.set(key, token)), FiberMap.run(renewals, key, renewing(lease, token)))

    const lead: (key: string) => Effect.Effect<void, AnsweredElsewhere> = Effect.fnUntraced(function*(key: string) {
      const entry = entryOf(key)
      const lease = leaseOf(key)
      const token = randomBytes(12).toString("hex")
      const started = yield* Clock.currentTimeMillis
      let delay = FIRST_POLL_MS
      while (true) {
        const claimed = yield* Effect.uninterruptible(Effect.tap(
          attempt(claim([entry, lease], [token, leaseMs, RELEASED])),
          (claimed) => Option.isSome(claimed) && claimed.value === "lead" ? take(key, lease, token) : Effect.void
        ))
        if (Option.isNone(claimed) || claimed.value === "released" || claimed.value === "lead") return
        if (claimed.value === "hit") {
          const found = yield* get(key)
          // Gone between the two commands (expired, evicted): this flight calls.
          if (Option.isNone(found)) return
          return yield* new AnsweredElsewhere(found.value)
        }
        if ((yield* Clock.currentTimeMillis) - started >= MAX_WAIT_MS) return
        yield* Effect.sleep(delay)
        delay = Math.min(delay * 2, MAX_POLL_MS)
      }
    })

    const release = (key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const token = held.get(key)
        if (token === undefined) return Effect.void
        held.delete(key)
        return Effect.zipRight(FiberMap.remove(renewals, key), Effect.asVoid(attempt(letGo([leaseOf(key)], [token, RELEASED, RELEASED_MS]))))
      })

    return { get, set, lead, release }
  })

/** Visits the shared tier's entries under the store's prefix, a batch at a time (`SCAN`, never `KEYS`). */
const eachBatch = async (client: IoRedis, prefix: string, visit: (keys: Array<string>) => Promise<void>) => {
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}cache:*`, "COUNT", 500)
    cursor = next
    if (keys.length > 0) await visit(keys)
  } while (cursor !== "0")
}

const sizesOf = async (client: IoRedis, keys: Array<string>): Promise<number> => {
  const replies = (await client.pipeline(keys.map((key) => ["strlen", key])).exec()) ?? []
  return replies.reduce((sum, [error, bytes]) => sum + (error === null && typeof bytes === "number" ? bytes : 0), 0)
}

export interface Usage {
  readonly entries: number
  /** Sealed bytes stored (what Redis holds of the values). */
  readonly bytes: number
}

/** What the shared tier holds (`tollgate cache stats`). */
export const usage = (store: SharedStore): Effect.Effect<Usage, RedisUnavailable> =>
  store.use(async (client) => {
    let entries = 0
    let bytes = 0
    await eachBatch(client, store.prefix, async (keys) => {
      entries += keys.length
      bytes += await sizesOf(client, keys)
    })
    return { entries, bytes }
  })

/** Deletes every entry of the shared tier, for every replica (`tollgate cache clear`); leases are left to lapse. */
export const clear = (store: SharedStore): Effect.Effect<Usage, RedisUnavailable> =>
  store.use(async (client) => {
    let entries = 0
    let bytes = 0
    await eachBatch(client, store.prefix, async (keys) => {
      bytes += await sizesOf(client, keys)
      entries += await client.unlink(...keys)
    })
    return { entries, bytes }
  })
