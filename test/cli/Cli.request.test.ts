/**
 * `tollgate request --file`: one request through the configured routes by the real executable
 * (temporary HOME and ledger): the headers tollgate added, the answer, and the cost read back from
 * the ledger row it wrote.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

const setup = () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-request-"))
  // The simulated provider is free unless the config prices its model: $1 / $2 per 1M tokens here.
  fs.writeFileSync(path.join(home, "tollgate.yaml"), "providers:\n  sim: { kind: mock, reply: \"Paris.\" }\npricing:\n  gpt-4o-mini: { input: 1, output: 2 }\n")
  fs.writeFileSync(path.join(home, "req.json"), JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Capital of France?" }] }))
  return home
}

const tollgate = (home: string, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const env: Record<string, string> = {}
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|PORT$|HOST$)/.test(name)) env[name] = value
    }
    const options = { cwd: home, env: { ...env, HOME: home, NO_COLOR: "1", TOLLGATE_DB: path.join(home, "ledger.db") }, timeout: 30_000 }
    execFile(process.execPath, [BIN, ...args], options, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

describe("tollgate request", () => {
  it.effect("prints the headers tollgate added, the answer and the cost of the row it wrote", () =>
    Effect.gen(function*() {
      const home = setup()
      const run = yield* tollgate(home, "request", "--file", "req.json")
      assert.strictEqual(run.code, 0, run.stderr)
      const lines = run.stdout.split("\n")
      assert.strictEqual(lines[0], "HTTP 200")
      assert.include(lines, "x-tollgate-provider: sim")
      assert.include(lines, "x-tollgate-model: gpt-4o-mini")
      assert.include(run.stdout, "\"content\":\"Paris.\"")
      const id = /x-tollgate-request-id: (req_\w+)/.exec(run.stdout)![1]!
      // 10 input tokens at $1 and 2 output tokens at $2 per 1M.
      assert.include(lines, `cost: $0.000014 (10 input, 2 output tokens; row ${id} in ${path.join(home, "ledger.db")})`)
      const stats = yield* tollgate(home, "stats", "--json")
      assert.strictEqual((JSON.parse(stats.stdout) as { rows: Array<{ requests: number }> }).rows[0]!.requests, 1)
    }), 60_000)

  it.effect("--json, and a stream's cost from its row", () =>
    Effect.gen(function*() {
      const home = setup()
      fs.writeFileSync(path.join(home, "stream.json"), JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Capital of France?" }] }))
      const run = yield* tollgate(home, "request", "--file", "stream.json", "--json")
      assert.strictEqual(run.code, 0, run.stderr)
      const out = JSON.parse(run.stdout) as { status: number; body: string; cost: { usd: number; priced: boolean } }
      assert.strictEqual(out.status, 200)
      assert.include(out.body, "data: [DONE]")
      assert.deepInclude(out.cost, { usd: 0.000014, priced: true })
    }), 60_000)

  it.effect("a file that cannot be read: one line, exit 1", () =>
    Effect.gen(function*() {
      const home = setup()
      const run = yield* tollgate(home, "request", "--file", "missing.json")
      assert.strictEqual(run.code, 1)
      assert.strictEqual(run.stderr, "tollgate: cannot read missing.json: ENOENT: no such file or directory, open 'missing.json'\n")
    }), 60_000)
})
