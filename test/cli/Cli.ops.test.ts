/**
 * Issue #25's operations commands through the real executable (dist/bin.js): `config validate`,
 * `ledger path`, `doctor`, `providers check`, `cache stats|clear`, `prune`. Each `tollgate` runs with
 * a temporary HOME and cwd and a clean environment; ledgers are fixtures written here.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../../src/Store.js"
import * as MockUpstream from "../support/MockUpstream.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")
const DAY_MS = 86_400_000

/** The test runner's environment without anything tollgate reads, plus `env`. */
const cleanEnv = (home: string, env: Record<string, string>) => {
  const base: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || /^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|PORT$|HOST$)/.test(name)) continue
    base[name] = value
  }
  return { ...base, HOME: home, NO_COLOR: "1", ...env }
}

const tempDir = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-ops-cli-")))

/** Runs the CLI to its end; resolves with its exit code and output (never rejects). */
const tollgate = (dir: string, env: Record<string, string>, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const options = { cwd: dir, env: cleanEnv(dir, env), timeout: 30_000, killSignal: "SIGKILL" as const }
    execFile(process.execPath, [BIN, ...args], options, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

/** A TCP server on 127.0.0.1 holding a port, closed with the scope. */
const holdPort = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const server = net.createServer((socket) => socket.destroy())
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)
const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port

/** A port nothing listens on: bound, then closed again. */
const closedPort = Effect.scoped(Effect.map(holdPort, portOf))

/**
 * A migrated ledger at `file` with one request row per age (in days), and `cacheEntries`
 * persisted cache entries of 100 bytes each (the second one already expired), and `bulk.rows` rows
 * `bulk.days` old.
 */
const writeLedger = (file: string, ages: ReadonlyArray<number>, cacheEntries = 0, bulk?: { rows: number; days: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const now = Date.now()
    if (bulk !== undefined) {
      yield* sql`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${bulk.rows})
        INSERT INTO requests (ts, request_id, endpoint, stream, status, attempts, failover, priced, aborted)
        SELECT ${now - bulk.days * DAY_MS}, 'bulk-' || i, 'chat', 0, 200, 1, 0, 1, 0 FROM n`
    }
    for (const [i, days] of ages.entries()) {
      yield* sql`INSERT INTO requests (ts, request_id, endpoint, stream, status, attempts, failover, priced, aborted)
        VALUES (${now - days * DAY_MS}, ${`req-${i}`}, 'chat', 0, 200, 1, 0, 1, 0)`
    }
    for (let i = 0; i < cacheEntries; i++) {
      const expiresAt = i === 1 ? now - 1_000 : now + DAY_MS
      yield* sql`INSERT INTO cache_entries (key, expires_at, data) VALUES (${`key-${i}`}, ${expiresAt}, ${new Uint8Array(100)})`
    }
  }).pipe(Effect.provide(Store.layerAt(file)), Effect.orDie)

const countRows = (file: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM requests`
    return row!.n
  }).pipe(Effect.provide(Store.layerAt(file)), Effect.orDie)

describe("config validate", () => {
  it.live("a valid file: ok, its path, providers and routes counted; exit 0", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        "providers:\n  sim: { kind: mock }\n  local: { kind: openai, baseUrl: \"http://127.0.0.1:9/v1\" }\n" +
          "routes:\n  - { name: small, match: { model: \"llama-*\" }, targets: [ { provider: local } ] }\n"
      )
      const result = yield* tollgate(dir, {}, "config", "validate")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(lines(result.stdout), [
        `ok: ${dir}/tollgate.yaml (2 providers, 1 route)`,
        `  note: provider "local" sends no key (no apiKeyEnv)`
      ])
    }))

  it.live("an invalid file: one line per problem, as start prints them; exit 1", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = path.join(dir, "bad.yaml")
      fs.writeFileSync(file, "server: { prot: 4100 }\nproviders:\n  a: { kind: mock }\nroutes:\n  - { name: r, targets: [ { provider: b } ] }\n")
      const result = yield* tollgate(dir, {}, "config", "validate", "--config", file)
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      assert.deepStrictEqual(lines(result.stderr), [
        `tollgate: invalid configuration in ${file}:`,
        "  server.prot: unknown key (did you mean port?)"
      ])
    }))
})

describe("ledger path", () => {
  it.live("TOLLGATE_DB, then database.path, then ~/.tollgate/tollgate.db", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const byDefault = yield* tollgate(dir, {}, "ledger", "path")
      assert.strictEqual(byDefault.code, 0, byDefault.stderr)
      assert.strictEqual(byDefault.stdout, `${dir}/.tollgate/tollgate.db\n`)
      assert.strictEqual(byDefault.stderr, "(no ledger there yet: start creates it)\n")

      fs.writeFileSync(path.join(dir, "tollgate.yaml"), "database: { path: data/ledger.db }\n")
      const fromFile = yield* tollgate(dir, {}, "ledger", "path")
      assert.strictEqual(fromFile.stdout, `${dir}/data/ledger.db\n`)

      const fromEnv = yield* tollgate(dir, { TOLLGATE_DB: path.join(dir, "env.db") }, "ledger", "path")
      assert.strictEqual(fromEnv.stdout, `${dir}/env.db\n`)
    }))
})

describe("doctor", () => {
  it.scopedLive("a port in use and an unset key variable fail with hints; the rest is ok; exit 1", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const taken = portOf(yield* holdPort)
      const upstream = yield* MockUpstream.make
      const db = path.join(dir, "ledger.db")
      yield* writeLedger(db, [1])
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `server: { port: ${taken} }\ndatabase: { path: ${db} }\n` +
          `providers:\n  up: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: OPS_TEST_KEY }\n  sim: { kind: mock }\n`
      )
      const upstreamPort = new URL(upstream.url).port
      const result = yield* tollgate(dir, {}, "doctor")
      assert.strictEqual(result.code, 1, result.stderr)
      const out = lines(result.stdout).map((line) => line.replace(/\(\d+ ms\)/, "(N ms)"))
      assert.deepStrictEqual(out, [
        `ok    config: ${dir}/tollgate.yaml (2 providers, 0 routes)`,
        `ok    ledger: ${db}`,
        `fail  port: 127.0.0.1:${taken} is in use (hint: stop what listens there (another tollgate?), or set TOLLGATE_PORT or server.port)`,
        "fail  key up: OPS_TEST_KEY is not set (hint: export OPS_TEST_KEY=... before start; until then, requests only this provider can serve get 503)",
        "ok    key sim: simulated provider, needs no key",
        `ok    reach up: 127.0.0.1:${upstreamPort} connects (N ms)`,
        "ok    reach sim: simulated, nothing to reach",
        `ok    node: v${process.versions.node}`,
        "2 checks failed"
      ])
      // A TCP connect only: nothing was sent to the provider.
      assert.strictEqual(upstream.received.length, 0)
    }))

  it.scopedLive("--json: all ok with the key set and a free port; a file that is no ledger fails; an unreachable host fails", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const upstream = yield* MockUpstream.make
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `server: { port: 0 }\nproviders:\n  up: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: OPS_TEST_KEY }\n`
      )
      const good = yield* tollgate(dir, { OPS_TEST_KEY: "sk-test" }, "doctor", "--json")
      assert.strictEqual(good.code, 0, good.stdout + good.stderr)
      const report = JSON.parse(good.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> }
      assert.isTrue(report.ok)
      assert.deepStrictEqual(report.checks.map((c) => [c.name, c.status]), [
        ["config", "ok"], ["ledger", "ok"], ["port", "ok"], ["key up", "ok"], ["reach up", "ok"], ["node", "ok"]
      ])
      assert.strictEqual(report.checks[3]!.detail, "OPS_TEST_KEY is set")

      const notLedger = path.join(dir, "notes.db")
      fs.writeFileSync(notLedger, "these are notes, not a database\n")
      const down = yield* closedPort
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `server: { port: 0 }\ndatabase: { path: ${notLedger} }\nproviders:\n  gone: { kind: openai, baseUrl: "http://127.0.0.1:${down}/v1" }\n`
      )
      const bad = yield* tollgate(dir, {}, "doctor", "--json")
      assert.strictEqual(bad.code, 1)
      const failed = (JSON.parse(bad.stdout) as typeof report).checks.filter((c) => c.status === "fail")
      assert.deepStrictEqual(failed.map((c) => c.name), ["ledger", "reach gone"])
      assert.include(failed[0]!.detail, `${notLedger} cannot be read as a ledger`)
      assert.strictEqual(failed[1]!.detail, `127.0.0.1:${down}: ECONNREFUSED`)
      // The file doctor looked at is left as it was.
      assert.strictEqual(fs.readFileSync(notLedger, "utf8"), "these are notes, not a database\n")
    }))

  it.live("an invalid configuration: config fails, node is still checked", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.writeFileSync(path.join(dir, "tollgate.yaml"), "server: { prot: 1 }\n")
      const result = yield* tollgate(dir, {}, "doctor")
      assert.strictEqual(result.code, 1)
      assert.deepStrictEqual(lines(result.stdout), [
        `fail  config: invalid configuration in ${dir}/tollgate.yaml: server.prot: unknown key (did you mean port?) (hint: run tollgate config validate, fix the file, run doctor again)`,
        `ok    node: v${process.versions.node}`,
        "1 check failed"
      ])
    }))
})

describe("providers check", () => {
  it.scopedLive("a mock server answers its model list with the key sent; a refused key, a closed port and the simulated provider", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const upstream = yield* MockUpstream.make
      const down = yield* closedPort
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `providers:\n  good: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: GOOD_KEY, headers: { x-team: ops } }\n` +
          `  refused: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: BAD_KEY }\n` +
          `  gone: { kind: openai, baseUrl: "http://127.0.0.1:${down}/v1" }\n  sim: { kind: mock }\n`
      )
      const env = { GOOD_KEY: "sk-good", BAD_KEY: "sk-refused" }
      const result = yield* tollgate(dir, env, "providers", "check")
      assert.strictEqual(result.code, 1, result.stderr)
      assert.deepStrictEqual(lines(result.stdout).map((line) => line.replace(/ in \d+ ms/, " in N ms")), [
        "good     ok 200 in N ms",
        "refused  fail 401 in N ms: the key was refused",
        "gone     fail: no answer: ECONNREFUSED",
        "sim      ok (simulated)"
      ])
      const calls = upstream.listed.map((r) => [r.method, r.url, r.headers.authorization, r.headers["x-team"]])
      assert.sameDeepMembers(calls, [
        ["GET", "/v1/models", "Bearer sk-good", "ops"],
        ["GET", "/v1/models", "Bearer sk-refused", undefined]
      ])

      const json = yield* tollgate(dir, env, "providers", "check", "--json")
      assert.strictEqual(json.code, 1)
      const report = JSON.parse(json.stdout) as { ok: boolean; providers: Array<{ provider: string; ok: boolean; status: number | null; latencyMs: number | null }> }
      assert.isFalse(report.ok)
      assert.deepStrictEqual(report.providers.map((p) => [p.provider, p.ok, p.status]), [
        ["good", true, 200], ["refused", false, 401], ["gone", false, null], ["sim", true, null]
      ])
      assert.isNumber(report.providers[0]!.latencyMs)
    }))

  it.live("only the simulated provider: exit 0", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const result = yield* tollgate(dir, {}, "providers", "check")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, "mock  ok (simulated)\n")
    }))
})

describe("cache", () => {
  it.live("stats counts the persisted entries and bytes; clear deletes them and keeps the requests", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const db = path.join(dir, "ledger.db")
      yield* writeLedger(db, [1, 2], 3)
      const env = { TOLLGATE_DB: db }
      const stats = yield* tollgate(dir, env, "cache", "stats")
      assert.strictEqual(stats.code, 0, stats.stderr)
      assert.strictEqual(stats.stderr, `ledger: ${db}\n`)
      assert.deepStrictEqual(lines(stats.stdout), [
        "persisted cache: 3 entries, 300 B (1 expired, deleted by the server within the hour)",
        "note: a running server's memory tier is not reachable from here: restart it to empty that too"
      ])
      const json = yield* tollgate(dir, {}, "cache", "stats", "--json", "--db", db)
      assert.deepStrictEqual(JSON.parse(json.stdout).persisted, { entries: 3, bytes: 300, expired: 1 })

      const clear = yield* tollgate(dir, env, "cache", "clear")
      assert.strictEqual(clear.code, 0, clear.stderr)
      assert.deepStrictEqual(lines(clear.stdout), [
        "cleared 3 entries (300 B) from the persisted cache",
        "note: a running server's memory tier is not reachable from here: restart it to empty that too"
      ])
      const after = yield* tollgate(dir, env, "cache", "stats")
      assert.strictEqual(lines(after.stdout)[0], "persisted cache: 0 entries, 0 B (0 expired, deleted by the server within the hour)")
      assert.strictEqual(yield* countRows(db), 2)
    }))

  it.live("no ledger at the path: refused, nothing created", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const result = yield* tollgate(dir, {}, "cache", "clear", "--db", path.join(dir, "missing.db"))
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stderr, `tollgate: no ledger at ${dir}/missing.db (start tollgate first, or pass --db)\n`)
      assert.isFalse(fs.existsSync(path.join(dir, "missing.db")))
    }))
})

describe("prune", () => {
  it.live("a dry run counts; --execute deletes in batches, reports progress on stderr, vacuums", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const db = path.join(dir, "ledger.db")
      // 12,003 rows older than 90 days (three batches of at most 5,000), 2 within.
      yield* writeLedger(db, [400, 120, 91, 89, 1], 0, { rows: 12_000, days: 200 })
      const env = { TOLLGATE_DB: db }
      const dry = yield* tollgate(dir, env, "prune", "--older-than", "90d")
      assert.strictEqual(dry.code, 0, dry.stderr)
      assert.match(dry.stdout, /^would delete 12,003 ledger row\(s\) before \d{4}-\d\d-\d\dT[\d:.]+Z \(run again with --execute to delete them\)\n$/)
      assert.strictEqual(yield* countRows(db), 12_005)
      const sizeBefore = fs.statSync(db).size

      const run = yield* tollgate(dir, env, "prune", "--older-than", "90d", "--execute")
      assert.strictEqual(run.code, 0, run.stderr)
      assert.match(run.stdout, /^deleted 12,003 ledger row\(s\) before \d{4}-\d\d-\d\dT[\d:.]+Z\n$/)
      assert.deepStrictEqual(lines(run.stderr), [
        `ledger: ${db}`,
        "deleted 5,000 of 12,003",
        "deleted 10,000 of 12,003",
        "deleted 12,003 of 12,003",
        "vacuuming the ledger file"
      ])
      assert.isBelow(fs.statSync(db).size, sizeBefore / 4, "VACUUM gave the deleted rows' pages back")
      assert.strictEqual(yield* countRows(db), 2)

      const again = yield* tollgate(dir, env, "prune", "--older-than", "90d", "--execute")
      assert.match(again.stdout, /^no ledger rows before .*: nothing to prune\n$/)
    }))

  it.live("a bound under 32 days is refused without --force, and accepted with it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const db = path.join(dir, "ledger.db")
      yield* writeLedger(db, [20, 5])
      const refused = yield* tollgate(dir, { TOLLGATE_DB: db }, "prune", "--older-than", "10d", "--execute")
      assert.strictEqual(refused.code, 1)
      assert.strictEqual(
        refused.stderr,
        "tollgate: --older-than 10d is shorter than 32 days: budgets rebuild their open monthly window from the ledger at start, " +
          "so rows that recent must stay (--force to prune anyway)\n"
      )
      assert.strictEqual(yield* countRows(db), 2)
      const forced = yield* tollgate(dir, { TOLLGATE_DB: db }, "prune", "--older-than", "10d", "--execute", "--force")
      assert.strictEqual(forced.code, 0, forced.stderr)
      assert.strictEqual(yield* countRows(db), 1)

      const typo = yield* tollgate(dir, { TOLLGATE_DB: db }, "prune", "--older-than", "3 months")
      assert.strictEqual(typo.stderr, "tollgate: --older-than: expected an age such as 90d, 12w or 36h; got \"3 months\"\n")
    }))
})
