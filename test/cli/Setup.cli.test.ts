/**
 * Issue #25 through the real executable (dist/bin.js): a local server with no key behind
 * UPSTREAM_BASE_URL, a key variable named but unset, a PORT left over from another tool, and the
 * read commands' ledger. Each `tollgate` runs with a temporary HOME and cwd and a clean environment.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as MockUpstream from "../support/MockUpstream.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** The test runner's environment without anything tollgate reads, plus `env`. */
const cleanEnv = (home: string, env: Record<string, string>) => {
  const base: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || /^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|PORT$|HOST$)/.test(name)) continue
    base[name] = value
  }
  return { ...base, HOME: home, NO_COLOR: "1", ...env }
}

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-setup-cli-"))

/**
 * Runs the CLI to its end; resolves with its exit code and output (never rejects). A `start`
 * that should have refused but serves instead is killed at the timeout, not left running.
 */
const tollgate = (dir: string, env: Record<string, string>, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const options = { cwd: dir, env: cleanEnv(dir, env), timeout: 15_000, killSignal: "SIGKILL" as const }
    execFile(process.execPath, [BIN, ...args], options, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

/**
 * `tollgate start --port 0` as a process, stopped (and waited for) with the scope. Succeeds with
 * its base URL and what it printed once it says it listens.
 */
const startTollgate = (dir: string, env: Record<string, string>) =>
  Effect.gen(function*() {
    const listening = yield* Deferred.make<{ baseUrl: string; stdout: string }, string>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [BIN, "start", "--port", "0"], { cwd: dir, env: cleanEnv(dir, env) })),
      (child: ChildProcess) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGTERM")
        })
    )
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
      const match = /listening on (http:\/\/\S+\/v1)/.exec(stdout)
      if (match !== null) Deferred.unsafeDone(listening, Effect.succeed({ baseUrl: match[1]!, stdout }))
    })
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.once("exit", (code) => Deferred.unsafeDone(listening, Effect.fail(`exited ${code} before listening: ${stderr}`)))
    return yield* Deferred.await(listening).pipe(Effect.timeout("20 seconds"), Effect.orDie)
  })

const chat = (baseUrl: string, model: string) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] })
    }).then(async (r) => ({ status: r.status, body: await r.json() as { error?: { message: string; code: string; type: string } } }))
  )

describe("start: provider keys over real sockets", () => {
  it.scoped("UPSTREAM_BASE_URL without a key: a local server is served, and sent no key", () =>
    Effect.gen(function*() {
      const upstream = yield* MockUpstream.make
      const dir = tempDir()
      const { baseUrl, stdout } = yield* startTollgate(dir, { UPSTREAM_BASE_URL: upstream.url })
      assert.include(stdout, `tollgate: proxying to upstream (${upstream.url})`)
      assert.include(stdout, `  note: provider "upstream" sends no key (UPSTREAM_API_KEY is not set)\n`)
      const answer = yield* chat(baseUrl, "llama3")
      assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
      assert.strictEqual(upstream.received.length, 1)
      assert.isUndefined(upstream.received[0]!.headers.authorization)
    }), { timeout: 30_000 })

  it.scoped("a key variable named but unset: start names it, a request gets 503 naming it, nothing is sent", () =>
    Effect.gen(function*() {
      const upstream = yield* MockUpstream.make
      const dir = tempDir()
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `providers:\n  local: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: LOCAL_LLM_KEY }\n`
      )
      const { baseUrl, stdout } = yield* startTollgate(dir, {})
      assert.include(
        stdout,
        `  note: provider "local": its key variable LOCAL_LLM_KEY is not set; requests only it can serve are refused (503) until it is\n`
      )
      const answer = yield* chat(baseUrl, "llama3")
      assert.strictEqual(answer.status, 503)
      assert.deepStrictEqual(answer.body.error, {
        message: `tollgate has no key for provider "local" (LOCAL_LLM_KEY is not set): set it where tollgate runs and restart tollgate`,
        type: "server_error",
        code: "provider_key_missing"
      })
      assert.strictEqual(upstream.received.length, 0)
    }), { timeout: 30_000 })
})

describe("start: configuration from the environment", () => {
  it.scoped("a PORT left over from another tool is named in the bind error", () =>
    Effect.gen(function*() {
      const upstream = yield* MockUpstream.make // something already listening on a port
      const port = new URL(upstream.url).port
      const dir = tempDir()
      const run = yield* tollgate(dir, { PORT: port }, "start")
      assert.notStrictEqual(run.code, 0)
      assert.strictEqual(run.stderr, `tollgate: port ${port} from the environment variable PORT is in use (set TOLLGATE_PORT or --port)\n`)
    }), { timeout: 30_000 })

  it.effect("an invalid TOLLGATE_* value is one line naming the variable", () =>
    Effect.gen(function*() {
      const run = yield* tollgate(tempDir(), { TOLLGATE_CACHE_ENABLED: "yes" }, "start", "--port", "0")
      assert.notStrictEqual(run.code, 0)
      assert.strictEqual(run.stderr, `tollgate: TOLLGATE_CACHE_ENABLED: expected true or false, got "yes"\n`)
    }), { timeout: 30_000 })

  it.effect("start --help lists the environment overrides", () =>
    Effect.gen(function*() {
      const help = yield* tollgate(tempDir(), {}, "start", "--help")
      assert.strictEqual(help.code, 0)
      const text = help.stdout.replace(/\s+/g, " ")
      for (const name of ["TOLLGATE_BUDGET_DAILY_LIMIT_USD", "TOLLGATE_BUDGET_MONTHLY_LIMIT_USD", "TOLLGATE_CACHE_ENABLED", "TOLLGATE_LOG_LEVEL", "TOLLGATE_ADMIN_PORT"]) {
        assert.include(text, name)
      }
    }), { timeout: 30_000 })

  it.effect("a config error is one line per problem, with a suggestion", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.writeFileSync(path.join(dir, "tollgate.yaml"), `providers:\n  openai: { kind: openai, baseURL: "https://api.openai.com/v1" }\n`)
      const run = yield* tollgate(dir, {}, "start", "--port", "0")
      assert.notStrictEqual(run.code, 0)
      assert.strictEqual(
        run.stderr,
        `tollgate: invalid configuration in ${path.join(fs.realpathSync(dir), "tollgate.yaml")}:\n  providers.openai.baseURL: unknown key (did you mean baseUrl?)\n`
      )
    }), { timeout: 30_000 })
})

describe("read commands: which ledger", () => {
  it.effect("a --db path with no ledger is refused, and not created", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const typo = path.join(dir, "typo.db")
      const run = yield* tollgate(dir, {}, "stats", "--db", typo)
      assert.notStrictEqual(run.code, 0)
      assert.strictEqual(run.stderr, `tollgate: no ledger at ${typo} (start tollgate first, or pass --db)\n`)
      assert.isFalse(fs.existsSync(typo))
    }), { timeout: 30_000 })

  it.scoped("a bare stats reads the ledger start wrote (database.path from tollgate.yaml) and says which", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const ledger = path.join(dir, "ledgers", "mine.db")
      fs.writeFileSync(path.join(dir, "tollgate.yaml"), `database: { path: ${ledger} }\nproviders:\n  sim: { kind: mock }\n`)
      const { baseUrl } = yield* startTollgate(dir, {})
      assert.strictEqual((yield* chat(baseUrl, "m")).status, 200)
      const stats = yield* tollgate(dir, {}, "stats", "--since", "all", "--json")
      assert.strictEqual(stats.code, 0, stats.stderr)
      assert.strictEqual(stats.stderr, `ledger: ${ledger}\n`)
      const other = yield* tollgate(dir, {}, "stats", "--db", path.join(dir, "elsewhere.db"))
      assert.include(other.stderr, "no ledger at")
    }), { timeout: 30_000 })
})
