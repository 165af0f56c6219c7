/**
 * Issue #29, items 12 and 13 (the ledger): the ledger fails closed when configured.
 *
 * A write failure is made with SQLite itself, so it works as root too (chmod does not stop root):
 * `PRAGMA max_page_count` at the ledger's current size gives SQLITE_FULL (a full disk),
 * `PRAGMA query_only` gives SQLITE_READONLY, a file renamed away is a deleted ledger, and a
 * header whose write version is above 2 is a ledger SQLite opens read-only.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Logger, Metric, Option, Ref, Stream, SubscriptionRef, TestClock } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Alerts } from "../../src/Budget/Alerts.js"
import type { Alert } from "../../src/Budget/Alert.js"
import * as Config from "../../src/Config.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import * as Metrics from "../../src/Telemetry/Metrics.js"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import * as Tollgate from "../support/Tollgate.js"
import * as Events from "../support/Events.js"

/** The shared sample row, never streamed here. */
const sampleEvent = (i: number): LedgerEvent => ({ ...Events.sampleEvent(i), stream: false })

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** Runs the built CLI with `env` added; resolves with its exit code and output (killed after 20 s). */
const tollgate = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = { TOLLGATE_CONFIG: "" }, cwd?: string) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const merged = Object.fromEntries(Object.entries({ ...process.env, NO_COLOR: "1", ...env }).filter(([, value]) => value !== undefined))
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: merged, timeout: 20_000, cwd },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    )
  })

const awaitHealth = (ok: (health: Telemetry.Health) => boolean) =>
  Effect.flatMap(Telemetry.Telemetry, (telemetry) =>
    telemetry.health.changes.pipe(Stream.takeUntil(ok), Stream.runLast, Effect.map(Option.getOrThrow))).pipe(
      Effect.timeout("20 seconds")
    )

const lostSoFar = Effect.map(Metric.value(Metrics.rowsLost), (state) => state.count)

/** An `Alerts` that keeps what it is given. */
const collectedAlerts = (into: Ref.Ref<ReadonlyArray<Alert>>) =>
  Layer.effect(Alerts, Effect.map(SubscriptionRef.make(0), (delivered) => ({
    emit: (alerts: ReadonlyArray<Alert>) => Ref.update(into, (all) => [...all, ...alerts]),
    flush: Effect.void,
    delivered
  })))

/**
 * A writer (with its alerts) on a fresh ledger file, its log lines collected; rows are written
 * as soon as they come (`linger`, `hold` 0), held batches retried every 1 s of the test clock.
 */
const logs: Array<string> = []
const collectLogs = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${String(message)}`)))

const writer = (onWriteFailure: Telemetry.OnWriteFailure, dbPath = Tollgate.tempDbPath()) =>
  Effect.gen(function*() {
    logs.length = 0
    const alerts = yield* Ref.make<ReadonlyArray<Alert>>([])
    const context = yield* Layer.build(
      Telemetry.alerting.pipe(
        Layer.provideMerge(Telemetry.layerWith({ onWriteFailure, linger: 0, hold: 0, retryInterval: 1_000 })),
        Layer.provideMerge(Store.layerAt(dbPath)),
        Layer.provide(collectedAlerts(alerts))
      )
    )
    const telemetry = Context.get(context, Telemetry.Telemetry)
    const sql = Context.get(context, SqlClient.SqlClient)
    const writtenReaches = (n: number) =>
      telemetry.written.changes.pipe(Stream.takeUntil((count) => count >= n), Stream.runDrain, Effect.timeout("20 seconds"))
    const healthWhere = (ok: (health: Telemetry.Health) => boolean) =>
      awaitHealth(ok).pipe(Effect.provideService(Telemetry.Telemetry, telemetry))
    const rows = Effect.map(sql<{ request_id: string }>`SELECT request_id FROM requests ORDER BY id`, (rows) => rows.map((r) => r.request_id))
    return { telemetry, sql, logs, alerts, dbPath, writtenReaches, healthWhere, rows }
  })

describe("the ledger writer when writes fail", () => {
  it.scoped("block: a batch is held and retried every retryInterval on the Clock, requests are refused meanwhile, one alert each way", () =>
    Effect.gen(function*() {
      const { alerts, healthWhere, logs, rows, sql, telemetry, writtenReaches } = yield* writer("block")
      yield* sql`PRAGMA query_only = ON` // every write fails with SQLITE_READONLY
      for (let i = 0; i < 3; i++) yield* telemetry.record(sampleEvent(i))
      const failing = yield* healthWhere((h) => h.status === "failing" && h.held > 0)
      assert.match(failing.reason ?? "", /SQLITE_READONLY/)
      assert.isTrue(telemetry.refusing())
      // More rows wait behind the held batch; none is dropped.
      for (let i = 3; i < 6; i++) yield* telemetry.record(sampleEvent(i))

      yield* sql`PRAGMA query_only = OFF`
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 0)
      yield* TestClock.adjust("1 millis")
      yield* writtenReaches(6)
      assert.deepStrictEqual(yield* rows, ["req_0", "req_1", "req_2", "req_3", "req_4", "req_5"])
      const ok = yield* healthWhere((h) => h.status === "ok")
      assert.deepInclude(ok, { held: 0, lost: 0 })
      assert.isFalse(telemetry.refusing())

      const raised = yield* Ref.get(alerts)
      assert.deepStrictEqual(raised.map((a) => [a.kind, a.dedupeKey.endsWith(":recovered")]), [["ledger", false], ["ledger", true]])
      assert.include(raised[0]!.message, "requests are refused")
      assert.strictEqual(logs.filter((line) => line.startsWith("ERROR ledger: cannot write")).length, 1, logs.join("\n"))
      assert.strictEqual(logs.filter((line) => line.startsWith("INFO ledger:") && line.includes("can be written again")).length, 1)
    }).pipe(Effect.provide(collectLogs)))

  it.scoped("continue: rows are dropped and counted (health, metric, a rate-limited log line, meta once writable again)", () =>
    Effect.gen(function*() {
      const { alerts, dbPath, healthWhere, logs, rows, sql, telemetry } = yield* writer("continue")
      const before = yield* lostSoFar
      yield* sql`PRAGMA query_only = ON`
      for (let i = 0; i < 10; i++) {
        yield* telemetry.record(sampleEvent(i))
        yield* telemetry.flush // one batch each: ten losses
      }
      const failing = yield* healthWhere((h) => h.lost === 10)
      assert.strictEqual(failing.status, "failing")
      assert.isFalse(telemetry.refusing(), "continue serves on")
      assert.strictEqual((yield* lostSoFar) - before, 10)
      // One line for the episode, one for the losses within LOSS_LOG_INTERVAL: not one per row.
      assert.strictEqual(logs.filter((line) => line.startsWith("ERROR ledger: could not write")).length, 1, logs.join("\n"))
      yield* TestClock.adjust("10 seconds")
      yield* telemetry.record(sampleEvent(10))
      yield* telemetry.flush
      const lossLines = logs.filter((line) => line.startsWith("ERROR ledger: could not write"))
      assert.strictEqual(lossLines.length, 2)
      assert.match(lossLines[1]!, /could not write 10 rows .*; 11 lost since start/)

      yield* sql`PRAGMA query_only = OFF`
      yield* telemetry.record(sampleEvent(11))
      yield* telemetry.flush
      assert.deepStrictEqual(yield* rows, ["req_11"])
      yield* healthWhere((h) => h.status === "ok" && h.lost === 11)
      const meta = yield* sql<{ key: string; value: string }>`SELECT key, value FROM meta WHERE key = 'ledger_rows_lost'`
      assert.deepStrictEqual(meta, [{ key: "ledger_rows_lost", value: "11" }])
      assert.strictEqual((yield* Ref.get(alerts)).length, 2)

      // `tollgate stats` says so, whatever the window.
      const stats = yield* tollgate(["stats", "--since", "1h", "--db", dbPath])
      assert.strictEqual(stats.code, 0, stats.stderr)
      assert.match(stats.stdout, /^rows lost: 11 since \d{4}-/m)
      const json = JSON.parse((yield* tollgate(["stats", "--json", "--db", dbPath])).stdout) as { lost: { rows: number } }
      assert.strictEqual(json.lost.rows, 11)
    }).pipe(Effect.provide(collectLogs)))

  it.scoped("a deleted ledger file is detected before a row goes into it; put back, the held rows are written", () =>
    Effect.gen(function*() {
      const { dbPath, healthWhere, rows, telemetry, writtenReaches } = yield* writer("block")
      yield* telemetry.record(sampleEvent(0))
      yield* writtenReaches(1)
      fs.renameSync(dbPath, `${dbPath}.away`)
      yield* telemetry.record(sampleEvent(1))
      const failing = yield* healthWhere((h) => h.status === "failing" && h.held === 1)
      assert.include(failing.reason ?? "", `the ledger file ${dbPath} was deleted`)
      assert.isTrue(telemetry.refusing())
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 1, "nothing is written into a file no one will read")

      fs.renameSync(`${dbPath}.away`, dbPath)
      yield* TestClock.adjust("1 second")
      yield* writtenReaches(2)
      assert.deepStrictEqual(yield* rows, ["req_0", "req_1"])
      yield* healthWhere((h) => h.status === "ok")
    }))

  it.scoped("a replaced ledger file is detected; under continue its rows are counted lost, not written into the old file", () =>
    Effect.gen(function*() {
      const { dbPath, healthWhere, telemetry, writtenReaches } = yield* writer("continue")
      yield* telemetry.record(sampleEvent(0))
      yield* writtenReaches(1)
      fs.renameSync(dbPath, `${dbPath}.old`)
      fs.writeFileSync(dbPath, "")
      yield* telemetry.record(sampleEvent(1))
      yield* telemetry.flush
      const failing = yield* healthWhere((h) => h.lost === 1)
      assert.include(failing.reason ?? "", "was replaced by another file")
      assert.strictEqual(yield* SubscriptionRef.get(telemetry.written), 1)
    }))
})

describe("the ledger at start", () => {
  it.live("a new ledger where tollgate kept one is refused under block (spend would read $0), and adopted with a warning under continue", () =>
    Effect.gen(function*() {
      const dbPath = Tollgate.tempDbPath()
      const open = (onWriteFailure: Telemetry.OnWriteFailure) =>
        Layer.build(Telemetry.layerWith({ onWriteFailure }).pipe(Layer.provide(Store.layerAt(dbPath)))).pipe(Effect.scoped)
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(open("block"))))
      assert.isTrue(fs.existsSync(`${dbPath}.id`))
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${dbPath}${suffix}`, { force: true })

      const error = yield* Effect.flip(open("block"))
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, `the ledger ${dbPath} is not the one tollgate kept there before`)
      assert.include(error.message, `delete ${dbPath}.id`)

      assert.isTrue(Exit.isSuccess(yield* Effect.exit(open("continue"))))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(open("block"))), "adopted: the marker names this ledger now")
    }))

  it.live("a read-only ledger: `tollgate start` exits non-zero with one line naming the path and what to do", () =>
    Effect.gen(function*() {
      const dbPath = Tollgate.tempDbPath()
      yield* Layer.build(Telemetry.layerWith({}).pipe(Layer.provide(Store.layerAt(dbPath)))).pipe(Effect.scoped)
      // A write version above 2 in the header: SQLite opens the file read-only (even for root).
      const fd = fs.openSync(dbPath, "r+")
      fs.writeSync(fd, Buffer.from([3]), 0, 1, 18)
      fs.closeSync(fd)

      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-home-"))
      // No config file anywhere (not in HOME, not in the working directory): the defaults, on this ledger.
      const run = yield* tollgate(["start", "--port", "0"], { TOLLGATE_CONFIG: undefined, TOLLGATE_DB: dbPath, HOME: home }, home)
      assert.notStrictEqual(run.code, 0)
      const lines = run.stderr.trim().split("\n")
      assert.strictEqual(lines.length, 1, run.stderr)
      assert.match(lines[0]!, new RegExp(`^tollgate: cannot write the ledger ${dbPath.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(SQLITE_READONLY`))
      assert.include(lines[0]!, "writable by this user")
    }))

  it.effect("database.onWriteFailure defaults to block when budgets are on, else continue", () =>
    Effect.gen(function*() {
      const modeOf = (input: Config.FileConfigInput) => Effect.map(Config.TollgateConfig, (c) => c.onWriteFailure).pipe(Effect.provide(Config.layerFrom(input)))
      assert.strictEqual(yield* modeOf({}), "continue")
      assert.strictEqual(yield* modeOf({ budget: { enabled: true } }), "block")
      assert.strictEqual(yield* modeOf({ budget: { enabled: true }, database: { onWriteFailure: "continue" } }), "continue")
      assert.strictEqual(yield* modeOf({ database: { onWriteFailure: "block" } }), "block")
    }))
})

// Last in the file: registered before them, this suite (a `layer` without test services) left the
// `it.scoped` tests above with the live clock where they expect the TestClock.
describe("the ledger fails closed (block) over real sockets", () => {
  // A budget is on, so `database.onWriteFailure` defaults to `block`.
  layer(Tollgate.layer({
    providers: { sim: { kind: "mock", reply: "ok" } },
    cache: { enabled: false, coalesce: false },
    budget: { enabled: true, limits: [{ window: "daily", usd: 100 }] }
  }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("disk full: requests are refused with 503 in the client's dialect, /readyz is 503, no answered request is without a row, and it recovers by itself", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const root = baseUrl.replace(/\/v1$/, "")
        const sql = yield* SqlClient.SqlClient
        const chat = (i: number) =>
          Effect.promise(async () => {
            const response = await fetch(`${baseUrl}/chat/completions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `request ${i}` }] })
            })
            const body = (await response.json()) as { error?: { code?: string } }
            return { status: response.status, id: response.headers.get("x-tollgate-request-id")!, code: body.error?.code, retryAfter: response.headers.get("retry-after") }
          })

        // The ledger cannot grow past its current size: the next page it needs is SQLITE_FULL.
        const [size] = yield* sql<{ page_count: number }>`PRAGMA page_count`
        yield* sql.unsafe(`PRAGMA max_page_count = ${size!.page_count}`)

        // Requests are answered until the writer finds the ledger full; then they are refused.
        const answered: Array<string> = []
        let refusal: { status: number; id: string; code: string | undefined; retryAfter: string | null } | undefined
        for (let i = 0; i < 2_000 && refusal === undefined; i++) {
          const result = yield* chat(i)
          if (result.status === 200) answered.push(result.id)
          else refusal = result
        }
        assert.deepInclude(refusal, { status: 503, code: "ledger_unavailable", retryAfter: "5" })
        const failing = yield* awaitHealth((h) => h.status === "failing")
        assert.strictEqual(failing.onWriteFailure, "block")
        assert.match(failing.reason ?? "", /SQLITE_FULL/)

        // Anthropic's dialect for Anthropic clients.
        const messages = yield* Effect.promise(() =>
          fetch(`${baseUrl}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as { type: string; error: { message: string } } }))
        )
        assert.strictEqual(messages.status, 503)
        assert.strictEqual(messages.body.type, "error")
        assert.include(messages.body.error.message, "ledger")

        const readyWhileFull = yield* Effect.promise(() =>
          fetch(`${root}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { ledger: Telemetry.Health } }))
        )
        assert.strictEqual(readyWhileFull.status, 503)
        assert.strictEqual(readyWhileFull.body.ledger.status, "failing")
        assert.isAbove(readyWhileFull.body.ledger.held, 0)

        // Room again: the held rows are written within a retry, the proxy serves again.
        yield* sql.unsafe("PRAGMA max_page_count = 1073741823")
        yield* awaitHealth((h) => h.status === "ok")
        const rows = yield* Tollgate.awaitRequests(answered)
        assert.strictEqual(rows.length, answered.length, "every answered request has its row")
        const total = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests`
        assert.strictEqual(total[0]!.n, answered.length, "refused requests leave no row and cost nothing")
        assert.strictEqual((yield* chat(-1)).status, 200)
        const ready = yield* Effect.promise(() => fetch(`${root}/readyz`))
        assert.strictEqual(ready.status, 200)
      }))
  })
})
