/**
 * `tollgate budget ...` and `tollgate alerts list`, run in-process through `Cli.main` against a
 * ledger file, as a second process would run them next to a server.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cli from "../../src/Cli.js"
import * as Store from "../../src/Store.js"
import { tempDbPath } from "../support/Tollgate.js"

const tollgate = (...args: Array<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const console: Console.Console = {
      ...(yield* Effect.console),
      log: (...parts) => Effect.sync(() => void out.push(parts.join(" "))),
      error: (...parts) => Effect.sync(() => void err.push(parts.join(" ")))
    }
    const exit = yield* Cli.main(["node", "tollgate", ...args]).pipe(Effect.withConsole(console), Effect.provide(NodeContext.layer), Effect.exit)
    return { ok: Exit.isSuccess(exit), stdout: out.join("\n"), stderr: err.join("\n") }
  })

const seed = Effect.gen(function*() {
  const dbPath = tempDbPath()
  const configPath = path.join(path.dirname(dbPath), "tollgate.yaml")
  fs.writeFileSync(configPath, "budget:\n  enabled: true\n  limits:\n    - { window: daily, usd: 1 }\n    - { scope: project, window: monthly, usd: 10 }\n")
  const now = Date.now()
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const [cost, project] of [[0.25, "a"], [0.5, "b"]] as const) {
      yield* sql`INSERT INTO requests (ts, request_id, endpoint, stream, status, attempts, failover, priced, aborted, cost_usd, project)
        VALUES (${now}, ${`r-${project}`}, '/v1/chat/completions', 0, 200, 1, 0, 1, 0, ${cost}, ${project})`
    }
    yield* sql`INSERT INTO budget_blocks (session, until, anomaly, ts) VALUES ('loop', ${now + 3_600_000}, 'repetition', ${now})`
    yield* sql`INSERT INTO budget_alerts (ts, kind, scope, message, dedupe_key) VALUES (${now}, 'threshold', 'global', 'daily budget for global at 75%', 'k1')`
  }).pipe(Effect.provide(Store.layerAt(dbPath)))
  return { dbPath, configPath }
})

describe("tollgate budget", () => {
  it.live("status shows spend from the ledger per scope and window, limits, resets and blocked sessions", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* seed
      const json = yield* tollgate("budget", "status", "--json", "--config", configPath, "--db", dbPath)
      assert.isTrue(json.ok, json.stderr)
      const parsed = JSON.parse(json.stdout)
      const line = (scope: string, key: string | null) => parsed.limits.find((l: { scope: string; key: string | null }) => l.scope === scope && l.key === key)
      assert.closeTo(line("global", null).spentUsd, 0.75, 1e-9)
      assert.strictEqual(line("global", null).limitUsd, 1)
      assert.isNull(line("global", null).reservedUsd)
      assert.closeTo(line("project", "b").spentUsd, 0.5, 1e-9)
      assert.deepStrictEqual(parsed.blockedSessions.map((b: { session: string }) => b.session), ["loop"])
      const table = yield* tollgate("budget", "status", "--config", configPath, "--db", dbPath)
      assert.match(table.stdout, /global\s+-\s+daily\s+\$0\.75\s+\$1\.00\s+75%\s+block/)
      assert.include(table.stdout, `blocked: session "loop" (repetition)`)
    }))

  it.live("set, reset and unblock write to the ledger file; status reflects them", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* seed
      const common = ["--config", configPath, "--db", dbPath]
      assert.isTrue((yield* tollgate("budget", "set", "--window", "daily", "--usd", "5", ...common)).ok)
      assert.isTrue((yield* tollgate("budget", "reset", "--scope", "project", "--key", "b", ...common)).ok)
      const unblocked = yield* tollgate("budget", "unblock", "--session", "loop", ...common)
      assert.include(unblocked.stdout, `session "loop" unblocked`)
      const parsed = JSON.parse((yield* tollgate("budget", "status", "--json", ...common)).stdout)
      const global = parsed.limits.find((l: { scope: string }) => l.scope === "global")
      assert.strictEqual(global.limitUsd, 5)
      // Reset, not forgotten: project "b" still has its line, with nothing spent since the reset.
      const b = parsed.limits.find((l: { scope: string; key: string | null }) => l.scope === "project" && l.key === "b")
      assert.isDefined(b, "project b's line is still there")
      assert.strictEqual(b.spentUsd, 0)
      assert.strictEqual(b.limitUsd, 10)
      // The other project is untouched by b's reset.
      const a = parsed.limits.find((l: { scope: string; key: string | null }) => l.scope === "project" && l.key === "a")
      assert.closeTo(a.spentUsd, 0.25, 1e-9)
      assert.deepStrictEqual(parsed.blockedSessions, [])
      const refused = yield* tollgate("budget", "set", "--window", "daily", ...common)
      assert.isFalse(refused.ok)
      assert.include(refused.stderr, "--usd")
    }))

  it.live("alerts list prints stored alerts; every command has help text", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* seed
      const listed = yield* tollgate("alerts", "list", "--json", "--since", "1h", "--config", configPath, "--db", dbPath)
      assert.deepStrictEqual(JSON.parse(listed.stdout).map((a: { message: string }) => a.message), ["daily budget for global at 75%"])
      for (const command of [["budget"], ["budget", "status"], ["budget", "set"], ["budget", "reset"], ["budget", "unblock"], ["alerts", "list"]]) {
        const help = yield* tollgate(...command, "--help")
        assert.isTrue(help.ok)
        assert.isAbove(help.stdout.length, 50, command.join(" "))
      }
      const setHelp = yield* tollgate("budget", "set", "--help")
      for (const option of ["--scope", "--key", "--window", "--usd", "--on-breach", "--unset"]) assert.include(setHelp.stdout, option)
    }))
})
