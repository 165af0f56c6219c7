/**
 * The `Cache` service: exact-match answers, in up to three tiers, the fastest first.
 *
 * - Memory: an LRU bounded by bytes (`cache.maxBytes`), entries expire after `cache.ttl` on `Clock`.
 * - The ledger's database (`cache.persist`): entries surviving restarts. Expired rows are pruned
 *   by a background fiber in the layer's scope.
 * - Redis (`cache.redis`): entries shared by every replica, and the lease that makes identical
 *   requests on several replicas one upstream call (`Cache/Redis.ts`).
 *
 * A lookup tries each tier in turn and fills the faster ones from a hit; an answer is stored in
 * every tier. Outside memory an entry is sealed (`Cache/Seal.ts`: gzip; with `cache.encrypt`,
 * AES-256-GCM with the key from TOLLGATE_CACHE_KEY). Only complete 200 answers are ever stored
 * (the proxy decides); a lookup that fails to read or decrypt is a miss, and a tier that cannot
 * be reached is skipped, never an error.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { type AnsweredElsewhere, type CachedAnswer, sizeOf } from "./Cache/Answer.js"
import * as SharedTier from "./Cache/Redis.js"
import * as Seal from "./Cache/Seal.js"
import type { CacheSettings } from "./Config/Schema.js"
import { TollgateConfig } from "./Config.js"
import * as Logging from "./Logging.js"
import * as Redis from "./Redis.js"
import * as Store from "./Store.js"

export * from "./Cache/Answer.js"
export * from "./Cache/Key.js"

export class Cache extends Context.Tag("tollgate/Cache")<Cache, {
  readonly settings: CacheSettings
  readonly get: (key: string) => Effect.Effect<Option.Option<CachedAnswer>>
  readonly set: (key: string, answer: CachedAnswer) => Effect.Effect<void>
  /** With a shared tier (`cache.redis`): how a flight coordinates with the other replicas' flights. */
  readonly leases: Option.Option<Leases>
}>() {}

export interface Leases {
  /**
   * Run by a flight before it calls upstream: waits while another replica makes the identical
   * call, and fails with its answer once stored; else returns, the lease held until `release`, so
   * that the others wait for this one.
   */
  readonly lead: (key: string) => Effect.Effect<void, AnsweredElsewhere>
  /** The flight that led `key` ended (however it ended). */
  readonly release: (key: string) => Effect.Effect<void>
}

interface Slot {
  readonly answer: CachedAnswer
  readonly bytes: number
  readonly expiresAt: number
}

/** The memory tier: insertion order of a Map is the recency order. */
const makeMemory = (settings: CacheSettings) => {
  const slots = new Map<string, Slot>()
  let total = 0
  const remove = (key: string) => {
    const slot = slots.get(key)
    if (slot !== undefined) {
      slots.delete(key)
      total -= slot.bytes
    }
  }
  return {
    get: (key: string, now: number): CachedAnswer | undefined => {
      const slot = slots.get(key)
      if (slot === undefined) return undefined
      remove(key)
      if (slot.expiresAt <= now) return undefined
      slots.set(key, slot)
      total += slot.bytes
      return slot.answer
    },
    set: (key: string, answer: CachedAnswer, expiresAt: number, bytes = sizeOf(answer)) => {
      remove(key)
      if (bytes > settings.maxBytes) return
      slots.set(key, { answer, bytes, expiresAt })
      total += bytes
      for (const oldest of slots.keys()) {
        if (total <= settings.maxBytes) break
        remove(oldest)
      }
    },
    get size() {
      return total
    }
  }
}

/** An answer larger than the whole memory tier is not stored: said once per answer, as it is refused. */
const tooLarge = (answer: CachedAnswer, bytes: number) =>
  Logging.event("warning", "cache_store_refused", `cache: an answer of ${bytes} bytes is larger than cache.maxBytes; not stored`, {
    reason: "too_large",
    model: answer.model,
    bytes
  })

/** A tier behind memory: what it finds fills the memory tier until `expiresAt`. */
interface Tier {
  readonly get: (key: string) => Effect.Effect<Option.Option<SharedTier.Found>>
  readonly set: (key: string, answer: CachedAnswer, expiresAt: number) => Effect.Effect<void>
}

/** The tier in the ledger's database (`cache_entries`), pruned in the background. */
const makePersisted = (sql: SqlClient.SqlClient, sealer: Seal.Sealer, settings: CacheSettings) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const prune = Effect.suspend(() => sql`DELETE FROM cache_entries WHERE expires_at <= ${clock.unsafeCurrentTimeMillis()}`)
    yield* prune.pipe(Effect.orDie)
    yield* prune.pipe(
      Effect.catchAll((error) => Effect.logWarning("cache: could not prune expired entries", error)),
      Effect.repeat(Schedule.spaced(Math.max(60_000, Math.min(settings.ttl, 3_600_000)))),
      Effect.delay(60_000),
      Effect.forkScoped
    )
    const get = Effect.fnUntraced(function*(k: string) {
      const rows = yield* sql<{ data: Uint8Array; expires_at: number }>`
        SELECT data, expires_at FROM cache_entries WHERE key = ${k} AND expires_at > ${clock.unsafeCurrentTimeMillis()}`
      const row = rows[0]
      if (row === undefined) return Option.none()
      return Option.some({ answer: sealer.open(row.data), expiresAt: row.expires_at })
    }, (effect) =>
      // An unreadable entry (corrupt, or sealed with another key) is a miss.
      Effect.catchAllCause(effect, (cause) => Effect.as(Effect.logWarning("cache: unreadable entry ignored", cause), Option.none())))
    const set = (k: string, answer: CachedAnswer, expiresAt: number) =>
      Effect.suspend(() =>
        sql`INSERT INTO cache_entries (key, expires_at, data) VALUES (${k}, ${expiresAt}, ${sealer.seal(answer)})
          ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data`
      ).pipe(Effect.catchAllCause((cause) =>
        Effect.annotateLogs(Effect.logWarning("cache: could not persist an entry", cause), { event: "cache_store_refused", reason: "persist_failed" })
      ))
    return { get, set } satisfies Tier
  })

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const settings = config.cache
  const clock = yield* Effect.clock
  const memory = makeMemory(settings)
  const sealer = Seal.make(Option.map(config.cacheKey, Redacted.value))
  const store = settings.redis === undefined || settings.redis === false ? Option.none() : yield* Redis.Redis
  const shared = Option.isSome(store) ? yield* SharedTier.make(store.value, sealer, settings.ttl) : undefined

  if (!settings.persist && shared === undefined) {
    return Cache.of({
      settings,
      get: (k) => Effect.sync(() => Option.fromNullable(memory.get(k, clock.unsafeCurrentTimeMillis()))),
      set: (k, answer) => {
        const bytes = sizeOf(answer)
        return bytes > settings.maxBytes
          ? tooLarge(answer, bytes)
          : Effect.sync(() => memory.set(k, answer, clock.unsafeCurrentTimeMillis() + settings.ttl, bytes))
      },
      leases: Option.none()
    })
  }

  // Slower tiers first to last: the ledger's database is local (or near), Redis is shared.
  const persisted = settings.persist ? yield* makePersisted(yield* SqlClient.SqlClient, sealer, settings) : undefined
  const tiers: Array<Tier> = []
  if (persisted !== undefined) tiers.push(persisted)
  if (shared !== undefined) tiers.push({ get: shared.get, set: (k, answer) => shared.set(k, answer) })

  // One generator function each (`fnUntraced`), not one made per call: V8 gives every new
  // generator function a prototype and hidden classes of its own (see `Http/Response.ts`).
  const get = Effect.fnUntraced(function*(k: string) {
    const hot = memory.get(k, clock.unsafeCurrentTimeMillis())
    if (hot !== undefined) return Option.some(hot)
    for (let i = 0; i < tiers.length; i++) {
      const found = yield* tiers[i]!.get(k)
      if (Option.isNone(found)) continue
      const { answer, expiresAt } = found.value
      memory.set(k, answer, expiresAt)
      // A faster tier behind memory that missed gets it too (the ledger's, from Redis).
      for (let j = 0; j < i; j++) yield* tiers[j]!.set(k, answer, expiresAt)
      return Option.some(answer)
    }
    return Option.none()
  })

  const set = Effect.fnUntraced(function*(k: string, answer: CachedAnswer) {
    const bytes = sizeOf(answer)
    const expiresAt = clock.unsafeCurrentTimeMillis() + settings.ttl
    memory.set(k, answer, expiresAt, bytes)
    if (persisted !== undefined) yield* persisted.set(k, answer, expiresAt)
    if (shared === undefined) return
    // An answer no replica could hold in memory is not handed to every replica either.
    if (bytes > settings.maxBytes) return yield* tooLarge(answer, bytes)
    yield* shared.set(k, answer)
  })

  const leases: Option.Option<Leases> = shared === undefined ? Option.none() : Option.some({
    lead: (k) =>
      // The answer another replica stored is in memory for the requests after this one.
      Effect.tapError(shared.lead(k), (elsewhere) => Effect.sync(() => memory.set(k, elsewhere.answer, elsewhere.expiresAt))),
    release: shared.release
  })

  return Cache.of({ settings, get, set, leases })
})

export const layerWithoutDependencies: Layer.Layer<Cache, never, TollgateConfig | SqlClient.SqlClient | Redis.Redis> = Layer.scoped(
  Cache,
  make
)

/** On the configured ledger (its database holds the persisted tier) and Redis (the shared one). */
export const layer: Layer.Layer<Cache, Store.StoreError, TollgateConfig> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.merge(Store.layer, Redis.layer))
)
