/**
 * The `Cache` service: exact-match answers, in two tiers.
 *
 * - Memory: an LRU bounded by bytes (`cache.maxBytes`), entries expire after `cache.ttl` on `Clock`.
 * - SQLite (`cache.persist`): gzip'd entries in the ledger file, surviving restarts; with
 *   `cache.encrypt`, AES-256-GCM with the key from TOLLGATE_CACHE_KEY. Expired rows are pruned by a
 *   background fiber in the layer's scope.
 *
 * Only complete 200 answers are ever stored (the proxy decides); a lookup that fails to read or
 * decrypt is a miss, never an error.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { gunzipSync, gzipSync } from "node:zlib"
import { type CachedAnswer, sizeOf } from "./Cache/Answer.js"
import type { CacheSettings } from "./Config/Schema.js"
import { TollgateConfig } from "./Config.js"
import * as Logging from "./Logging.js"
import * as Store from "./Store.js"

export * from "./Cache/Answer.js"
export * from "./Cache/Key.js"

export class Cache extends Context.Tag("tollgate/Cache")<Cache, {
  readonly settings: CacheSettings
  readonly get: (key: string) => Effect.Effect<Option.Option<CachedAnswer>>
  readonly set: (key: string, answer: CachedAnswer) => Effect.Effect<void>
}>() {}

interface Slot {
  readonly answer: CachedAnswer
  readonly bytes: number
  readonly expiresAt: number
}

/** iv (12) | tag (16) | ciphertext */
const encrypt = (key: Uint8Array, plain: Uint8Array): Uint8Array => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  const body = Buffer.concat([cipher.update(plain), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body])
}

const decrypt = (key: Uint8Array, data: Uint8Array): Uint8Array => {
  const buffer = Buffer.from(data)
  const decipher = createDecipheriv("aes-256-gcm", key, buffer.subarray(0, 12))
  decipher.setAuthTag(buffer.subarray(12, 28))
  return Buffer.concat([decipher.update(buffer.subarray(28)), decipher.final()])
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

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const settings = config.cache
  const clock = yield* Effect.clock
  const memory = makeMemory(settings)
  const key = Option.map(config.cacheKey, Redacted.value)

  if (!settings.persist) {
    return Cache.of({
      settings,
      get: (k) => Effect.sync(() => Option.fromNullable(memory.get(k, clock.unsafeCurrentTimeMillis()))),
      set: (k, answer) => {
        const bytes = sizeOf(answer)
        return bytes > settings.maxBytes
          ? tooLarge(answer, bytes)
          : Effect.sync(() => memory.set(k, answer, clock.unsafeCurrentTimeMillis() + settings.ttl, bytes))
      }
    })
  }

  const sql = yield* SqlClient.SqlClient
  const seal = (answer: CachedAnswer): Uint8Array => {
    const packed = gzipSync(JSON.stringify(answer))
    return Option.isSome(key) ? encrypt(key.value, packed) : packed
  }
  const open = (data: Uint8Array): CachedAnswer =>
    JSON.parse(gunzipSync(Option.isSome(key) ? decrypt(key.value, data) : data).toString("utf8")) as CachedAnswer

  const prune = Effect.suspend(() => sql`DELETE FROM cache_entries WHERE expires_at <= ${clock.unsafeCurrentTimeMillis()}`)
  yield* prune.pipe(Effect.orDie)
  yield* prune.pipe(
    Effect.catchAll((error) => Effect.logWarning("cache: could not prune expired entries", error)),
    Effect.repeat(Schedule.spaced(Math.max(60_000, Math.min(settings.ttl, 3_600_000)))),
    Effect.delay(60_000),
    Effect.forkScoped
  )

  // One generator function each (`fnUntraced`), not one made per call: V8 gives every new
  // generator function a prototype and hidden classes of its own (see `Http/Response.ts`).
  const get = Effect.fnUntraced(function*(k: string) {
    const now = clock.unsafeCurrentTimeMillis()
    const hot = memory.get(k, now)
    if (hot !== undefined) return Option.some(hot)
    const rows = yield* sql<{ data: Uint8Array; expires_at: number }>`
      SELECT data, expires_at FROM cache_entries WHERE key = ${k} AND expires_at > ${now}`
    const row = rows[0]
    if (row === undefined) return Option.none()
    const answer = open(row.data)
    memory.set(k, answer, row.expires_at)
    return Option.some(answer)
  }, (effect) =>
    // An unreadable entry (corrupt, or sealed with another key) is a miss.
    Effect.catchAllCause(effect, (cause) => Effect.as(Effect.logWarning("cache: unreadable entry ignored", cause), Option.none())))

  const set = Effect.fnUntraced(function*(k: string, answer: CachedAnswer) {
    const expiresAt = clock.unsafeCurrentTimeMillis() + settings.ttl
    memory.set(k, answer, expiresAt)
    yield* sql`INSERT INTO cache_entries (key, expires_at, data) VALUES (${k}, ${expiresAt}, ${seal(answer)})
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data`
  }, Effect.catchAllCause((cause) =>
    Effect.annotateLogs(Effect.logWarning("cache: could not persist an entry", cause), { event: "cache_store_refused", reason: "persist_failed" })))

  return Cache.of({ settings, get, set })
})

export const layerWithoutDependencies: Layer.Layer<Cache, never, TollgateConfig | SqlClient.SqlClient> = Layer.scoped(Cache, make)

/** On the configured ledger (its file holds the persisted tier). */
export const layer: Layer.Layer<Cache, Store.StoreError, TollgateConfig> = layerWithoutDependencies.pipe(Layer.provide(Store.layer))
