/**
 * `tollgate cache stats|clear`: the persisted cache tier (`cache.persist`), which lives in the
 * ledger file's `cache_entries` table, and the shared tier on Redis (`cache.redis`) when the
 * configuration names one. A running server also keeps answers in its own memory, which no other
 * process can see or clear.
 */
import * as Command from "@effect/cli/Command"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SharedTier from "../Cache/Redis.js"
import * as Config from "../Config.js"
import * as Redis from "../Redis.js"
import { ledgerLayer } from "./Open.js"
import { configOption, dbOption, jsonOption } from "./Shared.js"

const MEMORY_NOTE = "a running server's memory tier is not reachable from here: restart it to empty that too"

export interface CacheUsage {
  readonly entries: number
  readonly bytes: number
  /** Past their TTL: never served, deleted by a running server within the hour. */
  readonly expired: number
}

const usage = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const now = yield* Clock.currentTimeMillis
  const [row] = yield* sql<{ entries: number; bytes: number | null; expired: number | null }>`
    SELECT count(*) AS entries, sum(length(data)) AS bytes, sum(CASE WHEN expires_at <= ${now} THEN 1 ELSE 0 END) AS expired FROM cache_entries`
  return { entries: row?.entries ?? 0, bytes: row?.bytes ?? 0, expired: row?.expired ?? 0 } satisfies CacheUsage
})

const entriesOf = (n: number): string => `${n.toLocaleString("en-US")} entr${n === 1 ? "y" : "ies"}`

export const formatBytes = (bytes: number): string =>
  bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/**
 * Runs `use` on the shared tier the configuration names (`cache.redis`), connected for this
 * command: None when it names none; the reason, as a line, when the server cannot be reached.
 */
const onShared = <A>(configPath: Option.Option<string>, use: (store: Redis.SharedStore) => Effect.Effect<A, Redis.RedisUnavailable>) =>
  Effect.scoped(Effect.gen(function*() {
    const config = yield* Effect.option(Config.load({ configPath: Option.getOrUndefined(configPath) }))
    if (Option.isNone(config) || config.value.redis === undefined || config.value.cache.redis === undefined || config.value.cache.redis === false) {
      return Option.none()
    }
    const connected = yield* Effect.either(Layer.build(Redis.layer.pipe(Layer.provide(Layer.succeed(Config.TollgateConfig, config.value)))))
    if (connected._tag === "Left") return Option.some({ _tag: "Unreachable" as const, message: connected.left.message })
    const store = Option.getOrThrow(Context.get(connected.right, Redis.Redis))
    return Option.some(yield* use(store).pipe(
      Effect.map((value) => ({ _tag: "Done" as const, value, server: store.describe, prefix: store.prefix })),
      Effect.catchAll((error) => Effect.succeed({ _tag: "Unreachable" as const, message: error.message }))
    ))
  }))

const stats = Command.make(
  "stats",
  { config: configOption, db: dbOption, json: jsonOption },
  (flags) =>
    Effect.gen(function*() {
      const found = yield* usage.pipe(Effect.catchTag("SqlError", Effect.die), Effect.provide(ledgerLayer(flags)))
      const shared = yield* onShared(flags.config, SharedTier.usage)
      if (flags.json) {
        const sharedJson = Option.match(shared, {
          onNone: () => ({}),
          onSome: (s) => ({ shared: s._tag === "Done" ? { ...s.value, server: s.server, prefix: s.prefix } : { error: s.message } })
        })
        return yield* Console.log(JSON.stringify({ persisted: found, ...sharedJson, memoryTier: "not reachable from the CLI" }, null, 2))
      }
      yield* Console.log(
        `persisted cache: ${found.entries.toLocaleString("en-US")} entr${found.entries === 1 ? "y" : "ies"}, ${formatBytes(found.bytes)} ` +
          `(${found.expired.toLocaleString("en-US")} expired, deleted by the server within the hour)`
      )
      if (Option.isSome(shared)) {
        const s = shared.value
        yield* Console.log(
          s._tag === "Done"
            ? `shared cache (Redis at ${s.server}, prefix ${s.prefix}): ${entriesOf(s.value.entries)}, ${formatBytes(s.value.bytes)}`
            : `shared cache: not counted: ${s.message}`
        )
      }
      yield* Console.log(`note: ${MEMORY_NOTE}`)
    })
).pipe(Command.withDescription(
  "Count the entries and bytes of the persisted cache tier (cache.persist) in the ledger file, and of the shared tier on Redis " +
    "(cache.redis) when the configuration names one; the memory tier of a running server is not counted"
))

const clear = Command.make(
  "clear",
  { config: configOption, db: dbOption },
  (flags) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const before = yield* usage
      yield* sql`DELETE FROM cache_entries`
      yield* Console.log(`cleared ${before.entries.toLocaleString("en-US")} entr${before.entries === 1 ? "y" : "ies"} (${formatBytes(before.bytes)}) from the persisted cache`)
      const shared = yield* onShared(flags.config, SharedTier.clear)
      if (Option.isSome(shared)) {
        const s = shared.value
        yield* Console.log(
          s._tag === "Done"
            ? `cleared ${entriesOf(s.value.entries)} (${formatBytes(s.value.bytes)}) from the shared cache (Redis at ${s.server}, prefix ${s.prefix}), for every replica`
            : `shared cache: not cleared: ${s.message}`
        )
      }
      yield* Console.log(`note: ${MEMORY_NOTE}`)
    }).pipe(Effect.catchTag("SqlError", Effect.die), Effect.provide(ledgerLayer(flags)))
).pipe(Command.withDescription(
  "Delete every entry of the persisted cache tier in the ledger file (the ledger's requests are kept), and of the shared tier " +
    "on Redis (cache.redis) when the configuration names one; a running server still answers from its memory tier until it restarts"
))

export const cache = Command.make("cache").pipe(
  Command.withDescription("The persisted cache tier in the ledger file, and the shared one on Redis (cache.redis)"),
  Command.withSubcommands([stats, clear])
)
