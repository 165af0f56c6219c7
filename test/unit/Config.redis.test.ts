/** Which Redis server the replicas share state through: `redis:`, `cache.redis`'s URL, `TOLLGATE_REDIS_URL`. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import * as Config from "../../src/Config.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const resolved = (input: Config.FileConfigInput, env: Record<string, string> = {}) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined)).pipe(withEnv(env))

const urlOf = (config: Config.TollgateSettings) => config.redis === undefined ? undefined : Redacted.value(config.redis.url)

describe("the shared store a configuration names", () => {
  it.effect("none by default; redis: as a URL or with a key prefix; the environment when the file is silent", () =>
    Effect.gen(function*() {
      assert.isUndefined((yield* resolved({})).redis)
      const plain = yield* resolved({ redis: "redis://127.0.0.1:6379" }, { TOLLGATE_REDIS_URL: "redis://elsewhere:6379" })
      assert.strictEqual(urlOf(plain), "redis://127.0.0.1:6379")
      assert.strictEqual(plain.redis?.keyPrefix, "tollgate:")
      const prefixed = yield* resolved({ redis: { url: "rediss://h:6380", keyPrefix: "team-a:" } })
      assert.deepStrictEqual([urlOf(prefixed), prefixed.redis?.keyPrefix], ["rediss://h:6380", "team-a:"])
      assert.strictEqual(urlOf(yield* resolved({}, { TOLLGATE_REDIS_URL: "redis://env:6379" })), "redis://env:6379")
    }))

  it.effect("cache.redis's URL is the shared store when redis: is not set; true needs a server named", () =>
    Effect.gen(function*() {
      assert.strictEqual(urlOf(yield* resolved({ cache: { redis: "redis://c:6379" } })), "redis://c:6379")
      assert.strictEqual(urlOf(yield* resolved({ redis: "redis://c:6379", cache: { redis: true } })), "redis://c:6379")
      const unnamed = yield* Effect.exit(resolved({ cache: { redis: true } }))
      assert.isTrue(Exit.isFailure(unnamed))
      assert.include(JSON.stringify(unnamed), "no Redis server is named")
    }))

  it.effect("two different servers, or a URL that is not redis://, are refused with the reason", () =>
    Effect.gen(function*() {
      const two = yield* Effect.exit(resolved({ redis: "redis://a:6379", cache: { redis: "redis://b:6379" } }))
      assert.include(JSON.stringify(two), "cache.redis names another Redis server")
      const notRedis = yield* Effect.exit(Config.decode({ redis: "http://a:6379" }, "test"))
      assert.include(JSON.stringify(notRedis), "expected a redis:// or rediss:// URL")
      const env = yield* Effect.exit(resolved({}, { TOLLGATE_REDIS_URL: "localhost:6379" }))
      assert.include(JSON.stringify(env), "TOLLGATE_REDIS_URL")
    }))

  it.effect("budget.onStoreDown defaults to block", () =>
    Effect.gen(function*() {
      const config = yield* resolved({})
      assert.strictEqual(config.budget.onStoreDown, "block")
      assert.strictEqual(config.budget.reservationLease, 30_000)
    }))
})
