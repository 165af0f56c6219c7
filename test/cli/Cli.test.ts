/**
 * The real `tollgate` executable (dist/bin.js, built by `npm test` before the suite runs)
 * reading back the ledger written by real requests.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parse as parseCsv } from "csv-parse/sync"
import * as Tollgate from "../support/Tollgate.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** Runs the CLI; resolves with its exit code and output (never rejects). */
const tollgate = (...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, TOLLGATE_CONFIG: "", NO_COLOR: "1" } }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

const PROMPT = "Please keep this prompt out of every export"

const send = (baseUrl: string, model: string) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-cli-test" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: PROMPT }] })
    }).then((r) => r.json())
  )

describe("tollgate CLI", () => {
  // The simulated provider is free unless tollgate.yaml prices the model: priced here, so the
  // cost column has something to read back.
  layer(Tollgate.layer({ providers: { sim: { kind: "mock" } }, pricing: { "gpt-4o-mini": { input: 0.15, output: 0.6 } } }), {
    excludeTestServices: true,
    timeout: "30 seconds"
  })((it) => {
    it.effect("stats --json and export read back the rows a run wrote", () =>
      Effect.gen(function*() {
        const { baseUrl, dbPath } = yield* Tollgate.TestInfo
        yield* send(baseUrl, "gpt-4o-mini")
        yield* send(baseUrl, "gpt-4o-mini")
        yield* send(baseUrl, "local-llama")
        const written = yield* Tollgate.awaitRows(3)
        const expectedCost = written.reduce((sum, r) => sum + ((r.cost_usd as number | null) ?? 0), 0)
        assert.isAbove(expectedCost, 0)

        const stats = yield* tollgate("stats", "--json", "--since", "all", "--db", dbPath)
        assert.strictEqual(stats.code, 0, stats.stderr)
        const json = JSON.parse(stats.stdout)
        assert.strictEqual(json.rows.length, 1)
        // local-llama has no price anywhere, but the simulated provider served it: booked at $0, not
        // unpriced (unpriced rows through the CLI: Cli.cost.test.ts).
        assert.deepInclude(json.rows[0], { group: "all", requests: 3, errors: 0, unpriced: 0 })
        assert.closeTo(json.rows[0].costUsd, expectedCost, 1e-12)
        assert.isNumber(json.rows[0].p50LatencyMs)

        const byModel = yield* tollgate("stats", "--by", "model", "--since", "24h", "--db", dbPath)
        assert.strictEqual(byModel.code, 0, byModel.stderr)
        assert.match(byModel.stdout, /gpt-4o-mini\s+2\s/)
        assert.match(byModel.stdout, /local-llama\s+1\s/)
        assert.notInclude(byModel.stdout, "no known price")

        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-export-")), "ledger.csv")
        const csv = yield* tollgate("export", "--format", "csv", "--out", out, "--db", dbPath)
        assert.strictEqual(csv.code, 0, csv.stderr)
        const text = fs.readFileSync(out, "utf8")
        const records = parseCsv(text, { columns: true }) as Array<Record<string, string>>
        assert.strictEqual(records.length, 3)
        assert.deepStrictEqual(records.map((r) => r.requested_model), ["gpt-4o-mini", "gpt-4o-mini", "local-llama"])
        assert.strictEqual(records[2]!.priced, "1")
        assert.strictEqual(records[2]!.cost_usd, "0")
        assert.match(records[0]!.time!, /^\d{4}-\d{2}-\d{2}T/)
        assert.notInclude(text, PROMPT)
        assert.notInclude(text, "sk-cli-test")

        const jsonl = yield* tollgate("export", "--format", "jsonl", "--db", dbPath)
        assert.strictEqual(jsonl.code, 0, jsonl.stderr)
        const lines = jsonl.stdout.trim().split("\n").map((l) => JSON.parse(l))
        assert.deepStrictEqual(lines.map((l) => l.status), [200, 200, 200])
      }))

    it.effect("bad input to a command is a message and a non-zero exit, never a stack trace", () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-cli-"))
        const bad = path.join(dir, "tollgate.yaml")
        fs.writeFileSync(bad, "providers:\n  openai: { kind: openai, baseUrl: nope }\n")
        const start = yield* tollgate("start", "--config", bad)
        assert.notStrictEqual(start.code, 0)
        assert.include(start.stderr, "providers.openai.baseUrl: expected a URL")
        assert.notMatch(start.stderr, /\n\s+at /)

        const since = yield* tollgate("stats", "--since", "last tuesday-ish", "--db", path.join(dir, "x.db"))
        assert.notStrictEqual(since.code, 0)
        assert.include(since.stderr, "--since")

        const format = yield* tollgate("export", "--format", "xml", "--db", path.join(dir, "x.db"))
        assert.notStrictEqual(format.code, 0)
      }))

    it.effect("--help and --version work on every command", () =>
      Effect.gen(function*() {
        const version = yield* tollgate("--version")
        assert.strictEqual(version.code, 0)
        assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/)
        for (const command of ["start", "stats", "export", "dash"]) {
          const help = yield* tollgate(command, "--help")
          assert.strictEqual(help.code, 0, command)
          assert.include(help.stdout, "USAGE", command)
        }
      }))
  })

  it.effect("runs as a command through a first line that every env reads", () =>
    Effect.gen(function*() {
      // Not `env -S node FLAGS`: BusyBox's env (Alpine) has no -S and would refuse to start it.
      assert.strictEqual(fs.readFileSync(BIN, "utf8").split("\n", 1)[0], "#!/usr/bin/env node")
      const pkg = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../package.json"), "utf8"))
      // Executed itself, as npx and an installed `tollgate` do.
      const run = yield* Effect.async<{ error: Error | null; stdout: string }>((resume) => {
        execFile(BIN, ["--version"], { env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } }, (error, stdout) =>
          resume(Effect.succeed({ error, stdout })))
      })
      assert.isNull(run.error)
      assert.strictEqual(run.stdout.trim(), pkg.version)
    }))
})
