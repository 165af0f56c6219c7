/**
 * A running tollgate for tests: the real HTTP listener on 127.0.0.1 (port 0), a fresh SQLite
 * ledger in a temporary directory, and the config given. Built once per suite via `layer(...)`.
 */
import { SqlClient } from "@effect/sql"
import { HttpServer } from "@effect/platform"
import { Context, Effect, Layer, Option, Stream, SubscriptionRef } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Coalesce from "../../src/Coalesce.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import * as Telemetry from "../../src/Telemetry.js"

export class TestInfo extends Context.Tag("test/TestInfo")<TestInfo, {
  readonly baseUrl: string
  readonly dbPath: string
}>() {}

export const tempDbPath = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-test-")), "ledger.db")

/**
 * tollgate serving `config`: its ledger on the Postgres database of `database.url` when the config
 * gives one, else in a fresh temporary SQLite file (`dbPath`).
 */
export const layer = (config: Config.FileConfigInput) => {
  const dbPath = tempDbPath()
  const database = { ...config.database, path: dbPath }
  const ConfigLive = Config.layerFrom({ ...config, server: { ...config.server, port: 0 }, database })
  const Info = Layer.effect(
    TestInfo,
    Effect.map(HttpServer.HttpServer, (server) => {
      const address = server.address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      return { baseUrl: `http://127.0.0.1:${address.port}/v1`, dbPath }
    })
  )
  // The listener gives the services it serves with too: the test reads the same ledger and writer.
  return Info.pipe(Layer.provideMerge(Http.layer), Layer.provide(ConfigLive))
}

/** Waits (on the writer's own signal, not on time) until the ledger holds `n` rows. */
export const awaitRows = (n: number) =>
  Effect.gen(function*() {
    const telemetry = yield* Telemetry.Telemetry
    yield* telemetry.written.changes.pipe(Stream.takeUntil((count) => count >= n), Stream.runDrain)
    const sql = yield* SqlClient.SqlClient
    return yield* sql<Record<string, unknown>>`SELECT * FROM requests ORDER BY id`
  }).pipe(Effect.timeout("20 seconds"))

export const writtenCount = Effect.flatMap(Telemetry.Telemetry, (t) => SubscriptionRef.get(t.written))

/** Waits (on the coalescer's own count) until the requests waiting on or reading flights satisfy `ok`. */
export const awaitSubscribersWhere = (ok: (count: number) => boolean) =>
  Effect.flatMap(Coalesce.Coalesce, (c) => c.subscribers.changes.pipe(Stream.takeUntil(ok), Stream.runDrain)).pipe(
    Effect.timeout("20 seconds")
  )

/** Waits until at least `n` requests are waiting on or reading flights. */
export const awaitSubscribers = (n: number) => awaitSubscribersWhere((count) => count >= n)

/** Waits (on the writer's signal) until the rows of these request ids are in the ledger; returns them. */
export const awaitRequests = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const telemetry = yield* Telemetry.Telemetry
    const sql = yield* SqlClient.SqlClient
    const find = sql<Record<string, unknown>>`SELECT * FROM requests WHERE request_id IN ${sql.in(ids)} ORDER BY id`
    const rows = yield* telemetry.written.changes.pipe(
      Stream.mapEffect(() => find),
      Stream.filter((found) => found.length >= ids.length),
      Stream.runHead
    )
    return Option.getOrThrow(rows)
  }).pipe(Effect.timeout("20 seconds"))

/** Waits (on the writer's signal) until some row satisfies `found`; returns every row then. */
export const awaitRowsWhere = (found: (row: Record<string, unknown>) => boolean) =>
  Effect.gen(function*() {
    const telemetry = yield* Telemetry.Telemetry
    const sql = yield* SqlClient.SqlClient
    const all = sql<Record<string, unknown>>`SELECT * FROM requests ORDER BY id`
    const rows = yield* telemetry.written.changes.pipe(
      Stream.mapEffect(() => all),
      Stream.filter((rows) => rows.some(found)),
      Stream.runHead
    )
    return Option.getOrThrow(rows)
  }).pipe(Effect.timeout("20 seconds"))
