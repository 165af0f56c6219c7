/**
 * Which Redis server the replicas share state through: `redis:` in the file, else the URL of
 * `cache.redis`, else `TOLLGATE_REDIS_URL`. One server for all of tollgate's shared state, so a
 * `cache.redis` URL that differs from `redis:` is refused rather than guessed between.
 */
import * as Effect from "effect/Effect"
import * as EnvConfig from "effect/Config"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { FileConfig } from "./Schema.js"

export interface RedisTarget {
  readonly url: Redacted.Redacted<string>
  /** Every key tollgate writes starts with this (`tollgate:` by default). */
  readonly keyPrefix: string
}

const DEFAULT_PREFIX = "tollgate:"

/** The shared store, or a message naming what is wrong (the caller makes it a `ConfigError`). */
export const resolve = (file: FileConfig): Effect.Effect<RedisTarget | undefined | { readonly problem: string }, unknown> =>
  Effect.gen(function*() {
    const declared = file.redis === undefined
      ? undefined
      : typeof file.redis === "string"
      ? { url: file.redis, keyPrefix: DEFAULT_PREFIX }
      : file.redis
    const cacheUrl = typeof file.cache.redis === "string" ? file.cache.redis : undefined
    if (declared !== undefined && cacheUrl !== undefined && cacheUrl !== declared.url) {
      return {
        problem: "cache.redis names another Redis server than redis.url: tollgate keeps all its shared state on one server; " +
          "write cache.redis: true to use the one redis: names"
      }
    }
    const env = yield* EnvConfig.option(EnvConfig.string("TOLLGATE_REDIS_URL"))
    const url = declared?.url ?? cacheUrl ?? Option.getOrUndefined(env)
    if (url === undefined) {
      return file.cache.redis === true
        ? { problem: "cache.redis is true but no Redis server is named: set redis: redis://host:6379 (or TOLLGATE_REDIS_URL)" }
        : undefined
    }
    if (!/^rediss?:\/\//.test(url)) return { problem: `TOLLGATE_REDIS_URL: expected a redis:// or rediss:// URL` }
    return { url: Redacted.make(url), keyPrefix: declared?.keyPrefix ?? DEFAULT_PREFIX }
  })
