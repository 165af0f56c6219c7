/**
 * `tollgate cache stats|clear`: the persisted cache tier (`cache.persist`), which lives in the
 * ledger file's `cache_entries` table. A running server also keeps answers in its own memory,
 * which no other process can see or clear.
 */
import * as Command from "@effect/cli/Command"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
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

export const formatBytes = (bytes: number): string =>
  bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const stats = Command.make(
  "stats",
  { config: configOption, db: dbOption, json: jsonOption },
  (flags) =>
    Effect.gen(function*() {
      const found = yield* usage.pipe(Effect.catchTag("SqlError", Effect.die), Effect.provide(ledgerLayer(flags)))
      if (flags.json) return yield* Console.log(JSON.stringify({ persisted: found, memoryTier: "not reachable from the CLI" }, null, 2))
      yield* Console.log(
        `persisted cache: ${found.entries.toLocaleString("en-US")} entr${found.entries === 1 ? "y" : "ies"}, ${formatBytes(found.bytes)} ` +
          `(${found.expired.toLocaleString("en-US")} expired, deleted by the server within the hour)`
      )
      yield* Console.log(`note: ${MEMORY_NOTE}`)
    })
).pipe(Command.withDescription(
  "Count the entries and bytes of the persisted cache tier (cache.persist) in the ledger file; the memory tier of a running server is not counted"
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
      yield* Console.log(`note: ${MEMORY_NOTE}`)
    }).pipe(Effect.catchTag("SqlError", Effect.die), Effect.provide(ledgerLayer(flags)))
).pipe(Command.withDescription(
  "Delete every entry of the persisted cache tier in the ledger file (the ledger's requests are kept); a running server " +
    "still answers from its memory tier until it restarts"
))

export const cache = Command.make("cache").pipe(
  Command.withDescription("The persisted cache tier in the ledger file"),
  Command.withSubcommands([stats, clear])
)
