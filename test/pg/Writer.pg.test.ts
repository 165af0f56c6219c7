/**
 * The ledger writer on a real PostgreSQL that goes away: connections cut mid-run, the database
 * refusing connections for a while (rows spilled to a local file, then replayed in order), and a
 * spill file left by a dead process replayed at start. No row may be lost or written twice.
 * Skipped, saying why, where PostgreSQL is not reachable.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, Redacted, Stream } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import * as Spill from "../../src/Telemetry/Spill.js"
import { sampleEvent } from "../support/Events.js"
import * as Pg from "../support/Postgres.js"

const logs: Array<string> = []
const collectLogs = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${String(message)}`)))

const writer = (url: string, options: Partial<Telemetry.Options> = {}) =>
  Effect.gen(function*() {
    logs.length = 0
    const spillRoot = options.spillRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-spill-"))
    const context = yield* Layer.build(
      Telemetry.layerWith({ retryInterval: 200, spillAfter: 600, ...options, spillRoot }).pipe(
        Layer.provideMerge(Store.layerPostgres(Redacted.make(url)))
      )
    )
    const telemetry = Context.get(context, Telemetry.Telemetry)
    const sql = Context.get(context, SqlClient.SqlClient)
    const writtenReaches = (n: number) =>
      telemetry.written.changes.pipe(Stream.takeUntil((count) => count >= n), Stream.runDrain, Effect.timeout("30 seconds"))
    const healthWhere = (ok: (health: Telemetry.Health) => boolean) =>
      telemetry.health.changes.pipe(Stream.filter(ok), Stream.runHead, Effect.map((h) => h._tag === "Some" ? h.value : undefined), Effect.timeout("30 seconds"))
    const requestIds = Effect.map(sql<{ request_id: string }>`SELECT request_id FROM requests ORDER BY id`, (rows) => rows.map((r) => r.request_id))
    const spillFiles = () => {
      const found: Array<string> = []
      const walk = (dir: string) => {
        if (!fs.existsSync(dir)) return
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
          const full = path.join(dir, entry.name)
          if (entry.isDirectory()) walk(full)
          else found.push(full)
        }
      }
      walk(spillRoot)
      return found
    }
    return { telemetry, sql, writtenReaches, healthWhere, requestIds, spillFiles, spillRoot }
  })

const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `req_${from + i}`)

describe.skipIf(Pg.unreachable !== undefined)(`the ledger writer when PostgreSQL goes away${Pg.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable})`}`, () => {
  it.live("connections cut mid-run (pg_terminate_backend, repeatedly): every row written once, in order", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const { requestIds, telemetry, writtenReaches } = yield* writer(db.url, { linger: 5, hold: 0 })
      const N = 3_000
      const producer = yield* Effect.fork(Effect.forEach(Array.from({ length: N }, (_, i) => i), (i) =>
        Effect.zipRight(telemetry.record(sampleEvent(i)), i % 100 === 0 ? Effect.sleep("5 millis") : Effect.void), { discard: true }))
      for (let k = 0; k < 5; k++) {
        yield* Effect.sleep("40 millis")
        yield* Pg.terminateConnections(db.name)
      }
      yield* Fiber.join(producer)
      yield* telemetry.flush
      yield* writtenReaches(N)
      assert.deepStrictEqual(yield* requestIds, ids(0, N))
    }).pipe(Effect.provide(collectLogs), Effect.scoped))

  it.live("the database refuses connections: rows spill to a file (said once), requests are not refused; back, the file is replayed in order (said once) and removed", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const { healthWhere, requestIds, spillFiles, telemetry, writtenReaches } = yield* writer(db.url, { linger: 0, hold: 0 })
      for (let i = 0; i < 100; i++) yield* telemetry.record(sampleEvent(i))
      yield* writtenReaches(100)

      yield* Pg.acceptConnections(db.name, false)
      for (let i = 100; i < 300; i++) yield* telemetry.record(sampleEvent(i))
      // Flushed means in the spill file: the writer retried for `spillAfter`, then spilled.
      yield* telemetry.flush
      const spilled = yield* healthWhere((h) => h.spilled === 200)
      assert.deepInclude(spilled, { status: "ok", lost: 0, held: 0 })
      assert.isFalse(telemetry.refusing())
      const files = spillFiles()
      assert.strictEqual(files.length, 1)
      assert.strictEqual(fs.readFileSync(files[0]!, "utf8").trim().split("\n").length, 200)
      const away = logs.filter((line) => line.startsWith("WARN ledger: cannot reach"))
      assert.strictEqual(away.length, 1, logs.join("\n"))
      assert.include(away[0]!, files[0]!)
      assert.notInclude(away[0]!, "password")
      // Rows that come while it is away go to the file behind the others.
      for (let i = 300; i < 350; i++) yield* telemetry.record(sampleEvent(i))
      yield* telemetry.flush
      assert.strictEqual(fs.readFileSync(files[0]!, "utf8").trim().split("\n").length, 250)

      yield* Pg.acceptConnections(db.name, true)
      yield* writtenReaches(350)
      yield* healthWhere((h) => h.spilled === 0)
      // Written after the replay (the writer is one fiber): by then the replay is said and its file gone.
      for (let i = 350; i < 360; i++) yield* telemetry.record(sampleEvent(i))
      yield* telemetry.flush
      const back = logs.filter((line) => line.startsWith("INFO ledger:") && line.includes("is back"))
      assert.strictEqual(back.length, 1, logs.join("\n"))
      assert.include(back[0]!, "replayed 250 rows from 1 spill file(s)")
      assert.deepStrictEqual(spillFiles(), [])
      assert.deepStrictEqual(yield* requestIds, ids(0, 360))
      const progress = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT key FROM meta WHERE key LIKE 'spill:%'`).pipe(
        Effect.provide(Store.layerPostgres(Redacted.make(db.url)))
      )
      assert.deepStrictEqual(progress, [])
    }).pipe(Effect.provide(collectLogs), Effect.scoped))

  it.live("a spill file left by a process that died is claimed and replayed at start, from where its replay stopped", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const spillRoot = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-spill-"))
      const id = randomUUID()
      // Before: rows 0-14 of the file were replayed, with their progress, when its process died.
      yield* Effect.scoped(Effect.gen(function*() {
        const { sql, telemetry } = yield* writer(db.url, { spillRoot })
        for (let i = 0; i < 15; i++) yield* telemetry.record(sampleEvent(i))
        yield* telemetry.flush
        yield* sql`INSERT INTO meta (key, value) VALUES (${`spill:${id}`}, '15')`
      }))
      const url = new URL(db.url)
      const dir = Spill.folder(spillRoot, `postgres://${url.hostname}:${url.port || 5432}/${db.name}`)
      fs.mkdirSync(dir, { recursive: true })
      // pid 2^22 + 1 is above Linux's pid_max: no such process. Its last line was cut short by the crash.
      const orphan = path.join(dir, `ledger-${id}-${2 ** 22 + 1}.jsonl`)
      fs.writeFileSync(orphan, Array.from({ length: 40 }, (_, i) => JSON.stringify(sampleEvent(i))).join("\n") + "\n" + '{"ts":17')

      const { requestIds, spillFiles } = yield* writer(db.url, { spillRoot })
      assert.deepStrictEqual(yield* requestIds, ids(0, 40))
      assert.deepStrictEqual(spillFiles(), [])
      assert.isTrue(logs.some((line) => line.startsWith("INFO ledger:") && line.includes("replayed 25 rows from 1 spill file(s)")), logs.join("\n"))
    }).pipe(Effect.provide(collectLogs), Effect.scoped))
})
