/**
 * `tollgate start --workers N`, as real processes: the built executable (`npm run build` first) on
 * a PostgreSQL database of the test's own (and Redis, where budgets are shared). Every wait is on an
 * event (a line printed, a response, an exit); every process started is stopped by the test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import * as Pg from "../support/Postgres.js"
import * as Redis from "../support/Redis.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

/** The environment without the variables that would change tollgate's config. */
const cleanEnv = (home: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|DATABASE_URL$|PORT$|HOST$)/.test(name)) env[name] = value
  }
  return { ...env, HOME: home, TOLLGATE_HOME: path.join(home, ".tollgate") }
}

interface Running {
  readonly child: ChildProcess
  /** Everything printed so far (stdout and stderr). */
  readonly output: () => string
  /** Resolves with the first match of `pattern` in the output, once it is printed. */
  readonly line: (pattern: RegExp) => Effect.Effect<RegExpMatchArray>
  /** The exit code (or signal), once it exits. */
  readonly exited: Effect.Effect<number | string>
}

/** `tollgate start ...args` in `dir`, killed (the primary and any worker left) when the scope closes. */
const start = (dir: string, args: ReadonlyArray<string>): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exit = yield* Deferred.make<number | string>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, [BIN, "start", ...args], { cwd: dir, env: cleanEnv(dir) })
        // `close`, not `exit`: everything it printed has been read by then.
        child.on("close", (code, signal) => Deferred.unsafeDone(exit, Effect.succeed(code ?? signal ?? "unknown")))
        return child
      }),
      (child) =>
        Effect.gen(function*() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGTERM")
            yield* Deferred.await(exit).pipe(Effect.timeout("30 seconds"), Effect.ignore)
          }
          // Any worker the test saw that is still there (it should not be).
          for (const pid of [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]))) {
            try {
              process.kill(pid, "SIGKILL")
            } catch {
              // gone, as it should be
            }
          }
        })
    )
    let text = ""
    const waiting: Array<{ pattern: RegExp; done: Deferred.Deferred<RegExpMatchArray> }> = []
    const check = () => {
      for (const w of waiting) {
        const match = text.match(w.pattern)
        if (match !== null) Deferred.unsafeDone(w.done, Effect.succeed(match))
      }
    }
    const read = (chunk: Buffer) => {
      text += chunk.toString("utf8")
      check()
    }
    child.stdout!.on("data", read)
    child.stderr!.on("data", read)
    return {
      child,
      output: () => text,
      line: (pattern) =>
        Effect.gen(function*() {
          const done = yield* Deferred.make<RegExpMatchArray>()
          waiting.push({ pattern, done })
          check()
          // A process that ends without printing it fails the wait at once, with what it printed.
          const ended = Effect.flatMap(Deferred.await(exit), (code) =>
            Effect.suspend(() => {
              const match = text.match(pattern)
              return match !== null ? Effect.succeed(match) : Effect.fail(new Error(`exited (${code}) without a line matching ${pattern}:\n${text}`))
            }))
          return yield* Effect.raceFirst(Deferred.await(done), ended).pipe(
            Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`no line matching ${pattern} in:\n${text}`) }),
            Effect.orDie
          )
        }),
      exited: Deferred.await(exit).pipe(
        Effect.timeoutFail({ duration: "40 seconds", onTimeout: () => new Error(`tollgate did not exit:\n${text}`) }),
        Effect.orDie
      )
    }
  })

/** A config file in a fresh directory. */
const configIn = (yaml: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-workers-"))
  fs.writeFileSync(path.join(dir, "tollgate.yaml"), yaml)
  return dir
}

const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] })

/** One request on a connection of its own (the primary hands each new connection to the next worker). */
const post = (url: string, body: string = CHAT) =>
  Effect.async<{ status: number; body: string }, Error>((resume) => {
    const request = http.request(`${url}/v1/chat/completions`, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", connection: "close" }
    }, (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => void (text += chunk.toString("utf8")))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: text })))
      response.on("error", (error) => resume(Effect.fail(error)))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
    request.end(body)
  })

const getJson = (url: string) =>
  Effect.tryPromise({
    try: async () => (await (await fetch(url)).json()) as Record<string, unknown>,
    catch: (error) => new Error(`GET ${url}: ${String(error)}`)
  })

const getText = (url: string) =>
  Effect.tryPromise({ try: async () => (await fetch(url)).text(), catch: (error) => new Error(`GET ${url}: ${String(error)}`) })

/** The requests a worker's /metrics has counted. */
const servedBy = (admin: string) =>
  Effect.map(getText(`${admin}/metrics`), (text) =>
    text.split("\n").filter((l) => l.startsWith("tollgate_requests_total{")).reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0))

const rowsIn = (url: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return Number((await client.query("SELECT COUNT(*) AS n FROM requests")).rows[0].n)
    } finally {
      await client.end()
    }
  })

/** The addresses the banner gives: the public URL, the workers' pids and their admin URLs. */
const banner = (running: Running) =>
  Effect.gen(function*() {
    const listening = yield* running.line(/listening on (http:\/\/127\.0\.0\.1:\d+)\/v1 .*: (\d+) workers, pids ([\d, ]+)\n/)
    const admins = yield* running.line(/admin of each worker on (.*) \(the dashboard at \//)
    return {
      url: listening[1]!,
      pids: listening[3]!.split(", ").map(Number),
      admins: [...admins[1]!.matchAll(/(http:\/\/127\.0\.0\.1:\d+) \(worker \d+\)/g)].map((m) => m[1]!)
    }
  })

/** Process `pid` has ended: gone, or a zombie its dead parent left for init to reap. */
const exited = (pid: number): boolean => {
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return true
  }
}

const MOCK = "providers:\n  sim: { kind: mock }\n"

/**
 * `count` paced streams on connections of their own; `started` resolves once each has sent its
 * first bytes (all in flight), `bodies` with every stream's text once all have ended.
 */
const streamsInFlight = (url: string, count: number) =>
  Effect.gen(function*() {
    const firstBytes = yield* Deferred.make<void>()
    let started = 0
    const stream = Effect.async<string, Error>((resume) => {
      const request = http.request(`${url}/v1/chat/completions`, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", connection: "close" }
      }, (response) => {
        let text = ""
        let first = true
        response.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8")
          if (first && (first = false, ++started === count)) Deferred.unsafeDone(firstBytes, Effect.void)
        })
        response.on("end", () => resume(Effect.succeed(text)))
        response.on("error", (error) => resume(Effect.fail(error)))
      })
      request.on("error", (error) => resume(Effect.fail(error)))
      request.end(JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "a longer answer" }] }))
    })
    const all = yield* Effect.fork(Effect.forEach(Array.from({ length: count }, () => stream), (s) => s, { concurrency: "unbounded" }))
    yield* Deferred.await(firstBytes).pipe(Effect.timeout("20 seconds"), Effect.orDie)
    return { bodies: Fiber.join(all) }
  })

/** 8 chunks 150 ms apart: each stream is in flight for over a second. */
const PACED = "providers:\n  sim: { kind: mock, chunks: 8, chunkDelayMs: 150 }\ncache:\n  enabled: false\n"


describe.skipIf(Pg.unreachable !== undefined)(
  `tollgate start --workers${Pg.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable})`}`,
  () => {
    it.scoped("two workers (server.workers) serve one port: each answers requests, one banner, each with its own admin listener", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const dir = configIn(`${MOCK}database:\n  url: ${db.url}\nserver:\n  workers: 2\n`)
        const running = yield* start(dir, ["--port", "0"])
        const { url, pids, admins } = yield* banner(running)
        assert.strictEqual(pids.length, 2)
        assert.notStrictEqual(pids[0], pids[1])
        assert.strictEqual(admins.length, 2)
        // One banner for the whole start, not one per worker.
        assert.strictEqual(running.output().split("listening on").length - 1, 1)
        const statuses = yield* Effect.forEach(admins, (admin) => getJson(`${admin}/debug/status`))
        assert.deepStrictEqual(statuses.map((s) => s.pid), pids)

        const answers = yield* Effect.forEach(Array.from({ length: 12 }, () => post(url)), (p) => p, { concurrency: 4 })
        assert.deepStrictEqual(answers.map((a) => a.status), Array(12).fill(200))
        const perWorker = yield* Effect.forEach(admins, servedBy)
        assert.strictEqual(perWorker[0]! + perWorker[1]!, 12)
        assert.isAbove(perWorker[0]!, 0, "worker 1 served requests")
        assert.isAbove(perWorker[1]!, 0, "worker 2 served requests")

        running.child.kill("SIGTERM")
        assert.strictEqual(yield* running.exited, 0)
        // Every worker wrote its rows before it exited.
        assert.strictEqual(yield* rowsIn(db.url), 12)
      }), { timeout: 90_000 })

    it.scoped("a worker killed with SIGKILL is replaced (a log line) and the port keeps answering", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const dir = configIn(`${MOCK}database:\n  url: ${db.url}\n`)
        const running = yield* start(dir, ["--port", "0", "--workers", "2"])
        const { url, pids } = yield* banner(running)
        process.kill(pids[1]!, "SIGKILL")
        yield* running.line(new RegExp(`worker 2 of 2 \\(pid ${pids[1]}\\) exited unexpectedly \\(killed by SIGKILL\\); starting another in`))
        const back = yield* running.line(/worker 2 of 2 is back \(pid (\d+), admin (http:\/\/127\.0\.0\.1:\d+)\)/)
        const pid = Number(back[1])
        assert.notStrictEqual(pid, pids[1])
        assert.strictEqual((yield* getJson(`${back[2]}/debug/status`)).pid, pid)
        const answers = yield* Effect.forEach(Array.from({ length: 6 }, () => post(url)), (p) => p, { concurrency: 2 })
        assert.deepStrictEqual(answers.map((a) => a.status), Array(6).fill(200))
        assert.isAbove(yield* servedBy(back[2]!), 0, "the new worker serves")
        running.child.kill("SIGTERM")
        assert.strictEqual(yield* running.exited, 0)
      }), { timeout: 90_000 })

    it.scoped("a replacement that cannot start (the database refusing connections) is tried again with a backoff until it can", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const dir = configIn(`${MOCK}database:\n  url: ${db.url}\n`)
        const running = yield* start(dir, ["--port", "0", "--workers", "2"])
        const { url, pids } = yield* banner(running)
        yield* Pg.acceptConnections(db.name, false)
        process.kill(pids[1]!, "SIGKILL")
        // The replacement says why it cannot start, and another is started after a longer wait.
        yield* running.line(/worker 2 of 2 could not start: [^\n]*ledger[^\n]*\n/)
        yield* running.line(/worker 2 of 2 could not start; starting another in 1s \(restart 2\)/)
        yield* Pg.acceptConnections(db.name, true)
        const back = yield* running.line(/worker 2 of 2 is back \(pid (\d+)/)
        assert.notStrictEqual(Number(back[1]), pids[1])
        const answers = yield* Effect.forEach(Array.from({ length: 4 }, () => post(url)), (p) => p, { concurrency: 2 })
        assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200])
        running.child.kill("SIGTERM")
        assert.strictEqual(yield* running.exited, 0)
      }), { timeout: 90_000 })

    it.scoped("SIGTERM: streams in flight on every worker finish, every worker exits, no ledger row is lost", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const dir = configIn(`${PACED}database:\n  url: ${db.url}\n`)
        const running = yield* start(dir, ["--port", "0", "--workers", "2"])
        const { url, pids } = yield* banner(running)
        const streams = 6
        // Every stream has its first bytes: all are in flight, on both workers.
        const inFlight = yield* streamsInFlight(url, streams)
        running.child.kill("SIGTERM")
        const bodies = yield* inFlight.bodies
        for (const body of bodies) assert.include(body, "data: [DONE]", "each stream ran to its end")
        assert.strictEqual(yield* running.exited, 0)
        yield* running.line(/all workers stopped/)
        for (const pid of pids) assert.isTrue(exited(pid), `worker ${pid} has exited`)
        assert.strictEqual(yield* rowsIn(db.url), streams)
      }), { timeout: 90_000 })

    it.scoped("the primary killed with SIGKILL: each worker finishes its streams, writes its rows and exits", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const dir = configIn(`${PACED}database:\n  url: ${db.url}\n`)
        const running = yield* start(dir, ["--port", "0", "--workers", "2"])
        const { url, pids } = yield* banner(running)
        const inFlight = yield* streamsInFlight(url, 4)
        running.child.kill("SIGKILL")
        const bodies = yield* inFlight.bodies
        for (const body of bodies) assert.include(body, "data: [DONE]", "each stream ran to its end")
        // Closed once the primary and every worker (they hold its output) have exited.
        assert.strictEqual(yield* running.exited, "SIGKILL")
        for (const pid of pids) assert.isTrue(exited(pid), `worker ${pid} has exited`)
        assert.strictEqual(yield* rowsIn(db.url), 4)
      }), { timeout: 90_000 })

    it.scoped("a worker that cannot start fails the whole start once, with its reason", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const taken = http.createServer()
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void taken.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.async<void>((resume) => void taken.close(() => resume(Effect.void)))
        )
        const port = (taken.address() as { port: number }).port
        const dir = configIn(`${MOCK}database:\n  url: ${db.url}\n`)
        const running = yield* start(dir, ["--port", String(port), "--workers", "2"])
        assert.strictEqual(yield* running.exited, 1)
        const output = running.output()
        assert.strictEqual(output.split("is in use").length - 1, 1, output)
        assert.include(output, `tollgate: port ${port} (--port) is in use`)
        assert.notInclude(output, "listening on")
        assert.notInclude(output, "starting another")
      }), { timeout: 60_000 })
  }
)

describe("tollgate start --workers: refusals before anything is forked", () => {
  it.scoped("a SQLite ledger is refused with the reason", () =>
    Effect.gen(function*() {
      const dir = configIn(MOCK)
      const running = yield* start(dir, ["--port", "0", "--workers", "2"])
      assert.strictEqual(yield* running.exited, 1)
      assert.include(running.output(), "tollgate: --workers 2 needs a shared ledger: SQLite is one process's file; set database.url to a postgres:// URL")
      assert.notInclude(running.output(), "listening on")
    }), { timeout: 60_000 })

  it.scoped("budgets without redis: are refused (each worker would enforce its own spend)", () =>
    Effect.gen(function*() {
      const dir = configIn(`${MOCK}database:\n  url: postgres://nobody@127.0.0.1:1/none\nbudget:\n  enabled: true\n  limits: [ { window: daily, usd: 1 } ]\n`)
      const running = yield* start(dir, ["--port", "0", "--workers", "3"])
      assert.strictEqual(yield* running.exited, 1)
      assert.include(running.output(), "--workers 3 with budgets needs a shared budget store")
      assert.include(running.output(), "set redis: redis://host:6379")
    }), { timeout: 60_000 })

  it.scoped("--workers takes 1 to 64 or auto, and says so", () =>
    Effect.gen(function*() {
      for (const bad of ["0", "65", "two", "1.5"]) {
        const running = yield* start(configIn(MOCK), ["--port", "0", "--workers", bad])
        assert.strictEqual(yield* running.exited, 1)
        assert.include(running.output(), `--workers: expected an integer from 1 to 64, or auto (one per core); got "${bad}"`)
      }
    }), { timeout: 60_000 })

  it.scoped("--dash with several workers is refused, naming what to run instead", () =>
    Effect.gen(function*() {
      const running = yield* start(configIn(MOCK), ["--port", "0", "--workers", "2", "--dash"])
      assert.strictEqual(yield* running.exited, 1)
      assert.include(running.output(), "--dash shows one process; with several workers run `tollgate dash --admin URL`")
    }), { timeout: 60_000 })
})

describe.skipIf(Pg.unreachable !== undefined || Redis.unreachable !== undefined)(
  `tollgate start --workers with shared budgets${
    Pg.unreachable === undefined && Redis.unreachable === undefined ? "" : ` (skipped: ${Pg.unreachable ?? Redis.unreachable})`
  }`,
  () => {
    it.scoped("budgets with redis: start and serve on two workers", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const prefix = yield* Redis.freshPrefix
        const dir = configIn(
          `${MOCK}database:\n  url: ${db.url}\nredis: { url: "${Redis.URL}", keyPrefix: "${prefix}" }\n` +
            "budget:\n  enabled: true\n  limits: [ { window: daily, usd: 100 } ]\npricing:\n  gpt-4o-mini: { input: 1, output: 1 }\n"
        )
        const running = yield* start(dir, ["--port", "0", "--workers", "2"])
        const { url } = yield* banner(running)
        const answers = yield* Effect.forEach(Array.from({ length: 4 }, () => post(url)), (p) => p, { concurrency: 2 })
        assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200])
        running.child.kill("SIGTERM")
        assert.strictEqual(yield* running.exited, 0)
      }), { timeout: 90_000 })
  }
)
