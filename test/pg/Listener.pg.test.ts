/**
 * tollgate with its ledger on a real PostgreSQL (`database.url`), end to end: requests through the
 * real listener, then the real executable (dist/bin.js, built by `npm test` before the suites)
 * reading the rows back with `stats` and `export`, by `--db URL` and by `DATABASE_URL`. Skipped,
 * saying why, where PostgreSQL is not reachable.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Pg from "../support/Postgres.js"
import * as Tollgate from "../support/Tollgate.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** Runs the CLI in an empty folder with an empty HOME: no tollgate.yaml anywhere, no ledger but the one named. */
const tollgate = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-pg-home-"))
    const clean: NodeJS.ProcessEnv = { ...process.env, HOME: home, NO_COLOR: "1", ...env }
    for (const name of ["TOLLGATE_CONFIG", "TOLLGATE_DB", "DATABASE_URL"]) if (env[name] === undefined) delete clean[name]
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: clean, cwd: home },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    )
  })

const send = (baseUrl: string, model: string, stream = false) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-pg-test" },
      body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "Keep this prompt out of the ledger" }] })
    }).then((r) => r.text())
  )

class Database extends Context.Tag("test/PgDatabase")<Database, { readonly name: string; readonly url: string }>() {}

/** A fresh database, and tollgate serving with its ledger there. */
const served = Layer.unwrapScoped(Effect.map(Pg.freshDatabase, (db) =>
  Tollgate.layer({
    providers: { sim: { kind: "mock" } },
    pricing: { "gpt-4o-mini": { input: 0.15, output: 0.6 } },
    database: { url: db.url }
  }).pipe(Layer.merge(Layer.succeed(Database, db)))))

describe.skipIf(Pg.unreachable !== undefined)(`tollgate on a PostgreSQL ledger${Pg.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable})`}`, () => {
  layer(served, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.effect("rows written through the listener read back with stats and export, by --db and by DATABASE_URL", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const db = yield* Database
        yield* send(baseUrl, "gpt-4o-mini")
        yield* send(baseUrl, "gpt-4o-mini", true)
        yield* send(baseUrl, "local-llama")
        const written = yield* Tollgate.awaitRows(3)
        const expectedCost = written.reduce((sum, r) => sum + ((r.cost_usd as number | null) ?? 0), 0)
        assert.isAbove(expectedCost, 0)
        assert.deepStrictEqual(written.map((r) => r.stream), [0, 1, 0])

        const stats = yield* tollgate(["stats", "--json", "--since", "all", "--db", db.url])
        assert.strictEqual(stats.code, 0, stats.stderr)
        assert.include(stats.stderr, `ledger: postgres://`)
        const json = JSON.parse(stats.stdout)
        assert.deepInclude(json.rows[0], { group: "all", requests: 3, errors: 0 })
        assert.closeTo(json.rows[0].costUsd, expectedCost, 1e-12)
        assert.isNumber(json.rows[0].p50LatencyMs)

        const byModel = yield* tollgate(["stats", "--by", "model", "--since", "24h"], { DATABASE_URL: db.url })
        assert.strictEqual(byModel.code, 0, byModel.stderr)
        assert.match(byModel.stdout, /gpt-4o-mini\s+2\s/)
        assert.match(byModel.stdout, /local-llama\s+1\s/)

        const jsonl = yield* tollgate(["export", "--format", "jsonl", "--db", db.url])
        assert.strictEqual(jsonl.code, 0, jsonl.stderr)
        const lines = jsonl.stdout.trim().split("\n").map((l) => JSON.parse(l))
        assert.deepStrictEqual(lines.map((l) => l.requested_model), ["gpt-4o-mini", "gpt-4o-mini", "local-llama"])
        assert.deepStrictEqual(lines.map((l) => l.status), [200, 200, 200])
        assert.notInclude(jsonl.stdout, "Keep this prompt")
        assert.notInclude(jsonl.stdout, "sk-pg-test")

        const explained = yield* tollgate(["cost", "explain", lines[0].request_id, "--db", db.url])
        assert.strictEqual(explained.code, 0, explained.stderr)
        assert.include(explained.stdout, "gpt-4o-mini")
      }))
  })
})
