/**
 * What the built `tollgate` (dist/bin.js, `npm run build` first) prints when its output is not a
 * terminal, as a script or a pipe sees it (#25): help without ANSI escapes, wrapped to 80 columns,
 * usage lines that name the program, no type boilerplate under every option; tables within 100
 * columns on a ledger with long values; `--json` on every command that reads; a failure in one
 * line, its stack only with `--verbose`.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../../src/Store.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** A home and a working directory of its own, so no user's config or ledger is read. */
const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-output-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Runs the built CLI with stdout and stderr as pipes; resolves with its exit code and output. */
const tollgate = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const base = { ...process.env }
    for (const name of ["NO_COLOR", "FORCE_COLOR", "TOLLGATE_VERBOSE", "TOLLGATE_DB", "TOLLGATE_CONFIG", "TOLLGATE_HOME"]) delete base[name]
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: home, env: { ...base, HOME: home, ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    )
    return Effect.sync(() => void child.kill())
  })

const ESC = "\u001b["
const widest = (text: string) => Math.max(...text.split("\n").map((line) => line.length))

const LONG_MODEL = "acme-research/an-extremely-long-fine-tuned-model-name-with-a-dated-snapshot-2025-09-29-preview"
const LONG_PROJECT = "a-project-whose-name-is-much-longer-than-any-table-column-should-ever-be-allowed-to-grow"
const LONG_MESSAGE = "monthly budget for project " + LONG_PROJECT + " passed 90% of $10.00 after a request to " + LONG_MODEL

/** A ledger with long model, project and alert texts, large counts, and a config with budget limits. */
const fixture = Effect.gen(function*() {
  const dir = fs.mkdtempSync(path.join(home, "fixture-"))
  const dbPath = path.join(dir, "ledger.db")
  const configPath = path.join(dir, "tollgate.yaml")
  fs.writeFileSync(
    configPath,
    "providers:\n  sim: { kind: mock }\n" +
      "pricing:\n  gpt-4o-mini: { input: 0.15, output: 0.6 }\n" +
      "budget:\n  enabled: true\n  limits:\n    - { window: daily, usd: 1000 }\n    - { scope: project, window: monthly, usd: 10 }\n"
  )
  const now = Date.now()
  yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = [
      ["r-1", "gpt-4o-mini", 12_345_678, 2_345_678, 1234.56, "short"],
      ["r-2", "gpt-4o-mini", 9_876_543, 1_234_567, 987.6, LONG_PROJECT],
      ["r-3", LONG_MODEL, 7_654_321, 765_432, 4321.9, LONG_PROJECT]
    ] as const
    for (const [id, model, input, output, latency, project] of rows) {
      const priced = model === "gpt-4o-mini"
      const cost = priced ? (input * 0.15 + output * 0.6) / 1e6 : null
      yield* sql`INSERT INTO requests (ts, request_id, endpoint, provider, requested_model, served_model, stream, status, attempts,
        failover, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, priced, usage_source,
        latency_ms, ttfb_ms, aborted, project)
        VALUES (${now - 60_000}, ${id}, '/v1/chat/completions', 'openai', ${model}, ${model}, 0, 200, 1, 0, ${input}, ${output}, 0, 0, 0,
        ${cost}, ${priced ? 1 : 0}, 'reported', ${latency}, 10, 0, ${project})`
    }
    yield* sql`INSERT INTO budget_alerts (ts, kind, scope, message, dedupe_key) VALUES (${now}, 'threshold', 'project', ${LONG_MESSAGE}, 'k1')`
  }).pipe(Effect.provide(Store.layerAt(dbPath)))
  return { dbPath, configPath }
})

describe("tollgate output when not on a terminal", () => {
  it.live("help: no ANSI escapes, no line over 80 columns, usage names the program, no type boilerplate", () =>
    Effect.gen(function*() {
      const pages = [[], ["--help"], ["start", "--help"], ["stats", "--help"], ["budget"], ["budget", "set", "--help"], ["prices", "show", "--help"], ["simulate", "-h"]]
      for (const args of pages) {
        const help = yield* tollgate(args)
        const what = `tollgate ${args.join(" ")}`
        assert.strictEqual(help.code, 0, `${what}: ${help.stderr}`)
        assert.notInclude(help.stdout, ESC, what)
        assert.isAtMost(widest(help.stdout), 80, what)
        assert.notInclude(help.stdout, "A true or false value", what)
        assert.notInclude(help.stdout, "This setting is optional", what)
        assert.notInclude(help.stdout, "A user-defined piece of text", what)
        assert.match(help.stdout, /^ {2}\$ tollgate( |$)/m, what)
      }
      // Golden lines: where the exact text is the point.
      const stats = (yield* tollgate(["stats", "--help"])).stdout.split("\n")
      assert.deepStrictEqual(stats.slice(0, 5), [
        "tollgate 0.1.0",
        "",
        "USAGE",
        "  $ tollgate stats [--since text]",
        "      [--by model | provider | route | project | session | day] [--json]"
      ])
      assert.include(stats, "  --json                Print JSON instead of a table")
      assert.include(stats, "  --since text          Window to report: 30m, 24h, 7d, a date (2025-06-01) or")
      const set = (yield* tollgate(["budget", "set", "--help"])).stdout
      assert.include(set, "  $ tollgate budget set [--scope global | client | project | session]\n")
      const root = (yield* tollgate(["--help"])).stdout.split("\n")
      assert.include(root, "  stats      Show requests, errors, tokens, cost and latency from the ledger")
      assert.include(root, "  start      Start the proxy on 127.0.0.1:4100 (OpenAI-compatible API under /v1)")
      // NO_COLOR is honoured as well (a terminal is not needed to check it: no output here is one).
      assert.notInclude((yield* tollgate(["--help"], { NO_COLOR: "1" })).stdout, ESC)
    }), 120_000)

  it.live("tables fit in 100 columns: text left-aligned and cut with an ellipsis, numbers right-aligned", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* fixture
      const common = ["--config", configPath, "--db", dbPath]
      const tables: Array<ReadonlyArray<string>> = [
        ["stats", "--since", "all", ...common],
        ["stats", "--by", "model", "--since", "all", ...common],
        ["stats", "--by", "provider", "--since", "all", ...common],
        ["alerts", "list", ...common],
        ["budget", "status", ...common],
        ["prices", "show", "claude-sonnet-4-5", "--config", configPath],
        ["reprice", "--dry-run", "--since", "all", ...common],
        ["simulate", "--since", "all", "--map", `gpt-4o-mini=${LONG_MODEL}`, ...common]
      ]
      for (const args of tables) {
        const run = yield* tollgate(args)
        const what = `tollgate ${args.slice(0, 2).join(" ")}`
        assert.strictEqual(run.code, 0, `${what}: ${run.stderr}`)
        assert.isAtMost(widest(run.stdout), 100, `${what}\n${run.stdout}`)
        assert.notInclude(run.stdout, ESC, what)
      }
      const byModel = (yield* tollgate(["stats", "--by", "model", "--since", "all", ...common])).stdout.split("\n")
      const header = byModel.find((line) => line.startsWith("MODEL"))!
      // The model's name is cut, the counts are whole and end where their header ends.
      const long = byModel.find((line) => line.startsWith("acme-research/"))!
      assert.match(long, /^acme-research\/\S*… +1 +0 +7.65M +765k /)
      assert.strictEqual(long.indexOf("7.65M") + "7.65M".length, header.indexOf("IN TOK") + "IN TOK".length)
      assert.match(byModel.find((line) => line.startsWith("gpt-4o-mini "))!, /^gpt-4o-mini +2 +0 +22.2M +3.58M +0 +\$5.48 /)

      // Alerts: MESSAGE is text, left-aligned under its header and cut.
      const alerts = (yield* tollgate(["alerts", "list", ...common])).stdout.split("\n")
      const at = alerts[0]!.indexOf("MESSAGE")
      assert.isAbove(at, 0)
      assert.strictEqual(alerts[2]!.slice(at, at + 27), "monthly budget for project ")
      assert.isTrue(alerts[2]!.endsWith("…"), alerts[2])
    }), 120_000)

  it.live("--json on every command that reads", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* fixture
      const common = ["--config", configPath, "--db", dbPath]
      for (
        const args of [
          ["stats", "--since", "all", ...common],
          ["alerts", "list", ...common],
          ["budget", "status", ...common],
          ["cost", "explain", "r-1", ...common],
          ["prices", "show", "gpt-4o-mini", "--config", configPath],
          ["reprice", "--dry-run", "--since", "all", ...common],
          ["simulate", "--since", "all", ...common]
        ]
      ) {
        const run = yield* tollgate([...args, "--json"])
        assert.strictEqual(run.code, 0, `${args[0]}: ${run.stderr}`)
        assert.doesNotThrow(() => JSON.parse(run.stdout), undefined, undefined, args.join(" "))
      }
      const lines = (yield* tollgate(["export", "--format", "jsonl", ...common])).stdout.trim().split("\n")
      assert.strictEqual(lines.map((line) => JSON.parse(line).request_id).join(","), "r-1,r-2,r-3")
    }), 120_000)

  it.live("a failure is one line with what to do; its stack only with --verbose or TOLLGATE_VERBOSE=1", () =>
    Effect.gen(function*() {
      // A directory where the ledger file should be: SQLite cannot open it (whoever runs the test).
      const dbPath = path.join(fs.mkdtempSync(path.join(home, "unwritable-")), "ledger.db")
      fs.mkdirSync(dbPath)
      const expected = `tollgate: cannot open the ledger ${dbPath}: unable to open database file; check that it is a file that ` +
        "this user can read and write, or point --db (TOLLGATE_DB, database.path) at another file"
      for (const args of [["stats"], ["alerts", "list"], ["export", "--format", "csv"]]) {
        const run = yield* tollgate(args, { TOLLGATE_DB: dbPath })
        assert.strictEqual(run.code, 1)
        // Before the error, the one line that says which ledger was read (test/cli/Setup.cli.test.ts).
        assert.strictEqual(run.stderr, `ledger: ${dbPath}\n${expected}\n`, args.join(" "))
        assert.strictEqual(run.stdout, "")
      }
      for (const [args, env] of [[["stats", "--verbose"], {}], [["stats"], { TOLLGATE_VERBOSE: "1" }]] as const) {
        const verbose = yield* tollgate(args, { TOLLGATE_DB: dbPath, ...env })
        assert.strictEqual(verbose.code, 1)
        assert.isTrue(verbose.stderr.startsWith(`ledger: ${dbPath}\n${expected}\n`), verbose.stderr)
        assert.match(verbose.stderr, /\n\s+at /)
      }
      const unknown = yield* tollgate(["stats", "--bogus"])
      assert.strictEqual(unknown.code, 1)
      assert.strictEqual(unknown.stderr, "tollgate: Received unknown argument: '--bogus' (see tollgate stats --help)\n")
      const typo = yield* tollgate(["statz"])
      assert.strictEqual(typo.code, 1)
      assert.strictEqual(typo.stderr.split("\n").length, 2, typo.stderr)
      assert.match(typo.stderr, /^tollgate: .*'stats'.*\(see tollgate --help\)\n$/)
    }), 120_000)
})
