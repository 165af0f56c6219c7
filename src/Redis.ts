/**
 * The `Redis` service: the one connection replicas share state through (`redis:` in the config,
 * `Config/Redis.ts`): budgets' counters and reservations (`Budget/Shared.ts`), alert
 * deduplication, the shared cache tier (`cache.redis`). `Option.none()` when no server is
 * configured; then `ioredis` is never loaded (an optional peer, like `@effect/sql-pg`).
 *
 * Commands fail at once while the server is unreachable (no offline queue, one try, a command
 * timeout) so that a caller can decide (`budget.onStoreDown`) instead of waiting; the client
 * reconnects in the background, and the log says when the server is lost and when it is back.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import { createHash } from "node:crypto"
import type { Redis as IoRedis } from "ioredis"
import { TollgateConfig } from "./Config.js"
import type { RedisTarget } from "./Config/Redis.js"
import * as Logging from "./Logging.js"
import { StoreError } from "./Store.js"
import { redactUrl } from "./Store/Url.js"

/** The shared store could not answer (down, unreachable, too slow). */
export class RedisUnavailable extends Data.TaggedError("RedisUnavailable")<{ readonly message: string }> {}

/** A Lua script, run atomically by the server: `EVALSHA`, falling back to `EVAL` after a server restart forgot it. */
export type Script = (keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) => Effect.Effect<unknown, RedisUnavailable>

export interface SharedStore {
  /** Every key tollgate writes starts with this. */
  readonly prefix: string
  /** The server, password hidden, for messages. */
  readonly describe: string
  /** One command on the client; any failure is `RedisUnavailable`. */
  readonly use: <A>(run: (client: IoRedis) => Promise<A>) => Effect.Effect<A, RedisUnavailable>
  readonly script: (lua: string) => Script
  /** The connection is up (commands may still fail). */
  readonly ready: () => boolean
}

export class Redis extends Context.Tag("tollgate/Redis")<Redis, Option.Option<SharedStore>>() {}

const CONNECT_TIMEOUT_MS = 5_000
const COMMAND_TIMEOUT_MS = 2_000

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** A store on a connected client (tests use it on their own client). */
export const storeOf = (client: IoRedis, target: { readonly prefix: string; readonly describe: string }): SharedStore => {
  const use = <A>(run: (client: IoRedis) => Promise<A>): Effect.Effect<A, RedisUnavailable> =>
    Effect.tryPromise({
      try: () => run(client),
      catch: (error) => new RedisUnavailable({ message: `Redis at ${target.describe}: ${messageOf(error)}` })
    })
  const script = (lua: string): Script => {
    const sha = createHash("sha1").update(lua).digest("hex")
    return (keys, args) =>
      use(async (redis) => {
        try {
          return await redis.evalsha(sha, keys.length, ...keys, ...args)
        } catch (error) {
          if (!messageOf(error).startsWith("NOSCRIPT")) throw error
          return await redis.eval(lua, keys.length, ...keys, ...args)
        }
      })
  }
  return { prefix: target.prefix, describe: target.describe, use, script, ready: () => client.status === "ready" }
}

const connect = (target: RedisTarget) =>
  Effect.gen(function*() {
    const describe = redactUrl(Redacted.value(target.url))
    const loaded = yield* Effect.promise(() => import("ioredis"))
    // Bundled (dist/), the CommonJS module arrives as `default`, its named exports not lifted.
    const Client = loaded.Redis ?? (loaded.default as unknown as typeof loaded).Redis
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Client(Redacted.value(target.url), {
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: CONNECT_TIMEOUT_MS,
          commandTimeout: COMMAND_TIMEOUT_MS,
          connectionName: "tollgate",
          retryStrategy: (times) => Math.min(times * 200, 2_000)
        })
      ),
      (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
    )
    // Transitions only: while down, ioredis reports each failed reconnection as an error. Listened
    // to before the first connection (else ioredis prints an unhandled error event), which the
    // `connect` below reports itself.
    let up = false
    let connected = false
    let firstError: unknown
    client.on("error", (error: unknown) => {
      firstError ??= error
      if (!up) return
      up = false
      log(Logging.event("error", "redis_down", `redis: lost ${describe}: ${messageOf(error)}; reconnecting`, { server: describe }))
    })
    client.on("ready", () => {
      if (up) return
      up = true
      if (connected) log(Logging.event("info", "redis_up", `redis: ${describe} is back`, { server: describe }))
      connected = true
    })
    yield* Effect.tryPromise({
      try: () => client.connect(),
      catch: (error) =>
        new StoreError({
          message: `cannot reach Redis at ${describe}: ${messageOf(firstError ?? error)}; check that the server runs and the URL ` +
            "(redis: in tollgate.yaml, or TOLLGATE_REDIS_URL) is right"
        })
    })
    return storeOf(client, { prefix: target.keyPrefix, describe })
  })

export const layer: Layer.Layer<Redis, StoreError, TollgateConfig> = Layer.scoped(
  Redis,
  Effect.flatMap(TollgateConfig, (config) =>
    config.redis === undefined ? Effect.succeed(Option.none()) : Effect.map(connect(config.redis), Option.some))
)
