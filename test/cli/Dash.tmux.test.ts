/**
 * `tollgate dash` in a real terminal: tollgate (dist/bin.js) on a mock OpenAI upstream, traffic
 * sent through it, then the dashboard run in a detached tmux session (a private tmux server on a
 * socket in the test's directory) whose screen is read with `capture-pane` until it shows the
 * ledger's request count and spend; a resize redraws it to fit; `q` ends it and the terminal is
 * back on its main screen. Also: its one-line errors (no listener, a key needed or refused),
 * `--once`, and `start --dash`. The screen is polled (it gives no other signal), bounded by a
 * deadline; the tmux server and tollgate are stopped whatever happens.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Schedule } from "effect"
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Money from "../../src/Domain/Money.js"
import * as MockUpstream from "../support/MockUpstream.js"

/** better-sqlite3 (tollgate's own SQLite driver), as much of it as this test reads. */
type Sqlite = new(file: string, options: { readonly: boolean; fileMustExist: boolean }) => {
  prepare: (sql: string) => { get: () => unknown }
  close: () => void
}
const Database = createRequire(import.meta.url)("better-sqlite3") as Sqlite

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")
const REQUESTS = 7

/** The tmux tests need tmux: without it they are skipped, and their names say so. */
const tmuxMissing = spawnSync("tmux", ["-V"]).status !== 0
const needingTmux = (name: string) => (tmuxMissing ? `${name} (skipped: tmux is not installed)` : name)

const cleanEnv = (home: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|PORT$|HOST$|TMUX)/.test(name)) env[name] = value
  }
  return { ...env, HOME: home, TERM: "xterm-256color", NO_COLOR: "1" }
}

const run = (command: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(command, args, { env, timeout: 10_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

/** A port free a moment ago (the server that held it is closed). */
const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Polls `read` every 100 ms until `done` holds, for at most `deadline`; dies with the last value read. */
const pollUntil = <A>(read: Effect.Effect<A>, done: (a: A) => boolean, deadline: Duration.DurationInput, what: string) =>
  read.pipe(
    Effect.filterOrFail(done, () => "not yet" as const),
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeout(deadline),
    Effect.catchAll(() => Effect.flatMap(read, (last) => Effect.dieMessage(`timed out waiting for ${what}; last seen:\n${String(last)}`)))
  )

describe("tollgate dash under tmux", () => {
  it.scopedLive.skipIf(tmuxMissing)(needingTmux("shows the request count and spend of the ledger after traffic, and quits on q"), () =>
    Effect.gen(function*() {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-dash-")))
      const env = cleanEnv(dir)
      const upstream = yield* MockUpstream.make
      const db = path.join(dir, "ledger.db")
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `server: { port: 0, admin: { port: 0 } }\ndatabase: { path: ${db} }\n` +
          `providers:\n  up: { kind: openai, baseUrl: "${upstream.url}", apiKeyEnv: DASH_TEST_KEY }\n` +
          `pricing: { "gpt-4o-mini": { input: 1.5, output: 6 } }\n` +
          `budget: { enabled: true, limits: [ { window: daily, usd: 50 } ] }\n`
      )
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn(process.execPath, [BIN, "start", "--config", path.join(dir, "tollgate.yaml")], { cwd: dir, env: { ...env, DASH_TEST_KEY: "sk-test" } })),
        (child: ChildProcess) =>
          Effect.async<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          })
      )
      const ready = yield* Deferred.make<{ base: string; admin: string }>()
      let out = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
        const base = /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out)
        const admin = /admin on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
        if (base !== null && admin !== null) Deferred.unsafeDone(ready, Effect.succeed({ base: base[1]!, admin: admin[1]! }))
      })
      const { admin, base } = yield* Deferred.await(ready).pipe(Effect.timeout("20 seconds"), Effect.orDie)

      for (let i = 0; i < REQUESTS; i++) {
        const status = yield* Effect.promise(() =>
          fetch(`${base}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hello ${i}` }] })
          }).then(async (r) => (await r.text(), r.status))
        )
        assert.strictEqual(status, 200)
      }
      // The ledger, read as it is on disk once every row is there.
      const ledger = Effect.sync(() => {
        const sqlite = new Database(db, { readonly: true, fileMustExist: true })
        try {
          return sqlite.prepare("SELECT COUNT(*) AS n, SUM(cost_usd) AS usd FROM requests").get() as { n: number; usd: number | null }
        } finally {
          sqlite.close()
        }
      })
      const booked = yield* pollUntil(ledger, (l) => l.n === REQUESTS, "20 seconds", `${REQUESTS} ledger rows`)
      assert.isAbove(booked.usd ?? 0, 0)

      // A private tmux server, so the session runs with this test's environment and nothing else's.
      const socket = path.join(dir, "tmux.sock")
      const tmux = (...args: Array<string>) => run("tmux", ["-S", socket, ...args], env)
      yield* Effect.addFinalizer(() => Effect.asVoid(tmux("kill-server")))
      const command = `${process.execPath} ${BIN} dash --admin ${admin} --interval 200ms; echo "dash exited $?"; sleep 60`
      const started = yield* tmux("new-session", "-d", "-s", "dash", "-x", "150", "-y", "45", command)
      assert.strictEqual(started.code, 0, started.stderr)
      const screen = Effect.map(tmux("capture-pane", "-p", "-t", "dash"), (r) => r.stdout)

      const requests = `today ${REQUESTS} requests`
      const spend = `spend ${Money.usd(booked.usd!)}`
      const shown = yield* pollUntil(screen, (s) => s.includes(requests) && s.includes(spend), "20 seconds", `"${requests}" and "${spend}" on screen`)
      assert.include(shown, "q quit")
      assert.match(shown, /gpt-4o-mini\S*\s+7\s+0\s+8,400\s+2,100/)
      assert.include(shown, "up/gpt-4o-mini closed")
      assert.match(shown, /global daily .* of \$50\.00/)
      assert.strictEqual(shown.split("\n").filter((l) => / gpt-4o-mini\S*\s+up\s+\S+\s+200\s+1200\/300 /.test(l)).length, REQUESTS)

      // A smaller window: the frame is drawn again to fit it (the title's right end is at its edge).
      yield* tmux("resize-window", "-t", "dash", "-x", "90", "-y", "30")
      const narrow = yield* pollUntil(screen, (s) => /^tollgate dash .{20,} q quit$/m.test(s) && s.split("\n")[0]!.length === 90, "10 seconds", "a frame 90 columns wide")
      assert.include(narrow, requests)

      yield* tmux("send-keys", "-t", "dash", "q")
      const after = yield* pollUntil(screen, (s) => s.includes("dash exited"), "10 seconds", "the dashboard to exit")
      assert.include(after, "dash exited 0")
      // Back on the main screen: the dashboard's frame was on the alternate one.
      assert.notInclude(after, "q quit")
    }), { timeout: 90_000 })

  it.scopedLive("says when the admin listener is not there, or wants a key; --once prints one frame", () =>
    Effect.gen(function*() {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-dash-")))
      const env = cleanEnv(dir)
      fs.writeFileSync(
        path.join(dir, "tollgate.yaml"),
        `server: { port: 0, admin: { port: 0 }, adminKeys: [ "s3cret" ] }\ndatabase: { path: ${path.join(dir, "ledger.db")} }\nproviders:\n  sim: { kind: mock }\n`
      )
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn(process.execPath, [BIN, "start", "--config", path.join(dir, "tollgate.yaml")], { cwd: dir, env })),
        (child: ChildProcess) =>
          Effect.async<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          })
      )
      const ready = yield* Deferred.make<string>()
      let out = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
        const admin = /admin on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
        if (admin !== null) Deferred.unsafeDone(ready, Effect.succeed(admin[1]!))
      })
      const admin = yield* Deferred.await(ready).pipe(Effect.timeout("20 seconds"), Effect.orDie)
      const dash = (...args: Array<string>) => run(process.execPath, [BIN, "dash", ...args], env)

      const noKey = yield* dash("--admin", admin, "--once")
      assert.strictEqual(noKey.code, 1)
      assert.strictEqual(noKey.stderr, `tollgate: the admin listener at ${admin} needs a key: pass --key (or set TOLLGATE_ADMIN_KEY) with one of its server.adminKeys\n`)
      const wrongKey = yield* dash("--admin", admin, "--once", "--key", "nope")
      assert.include(wrongKey.stderr, "refused the key given")

      const frame = yield* dash("--admin", admin, "--once", "--key", "s3cret")
      assert.strictEqual(frame.code, 0, frame.stderr)
      assert.include(frame.stdout, "today 0 requests   spend $0")
      assert.include(frame.stdout, "none since the server started")
      assert.notInclude(frame.stdout, "\u001b[")

      const port = new URL(admin).port
      child.kill("SIGTERM")
      yield* Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
      })
      const gone = yield* dash("--admin", `127.0.0.1:${port}`, "--once")
      assert.strictEqual(gone.code, 1)
      assert.include(gone.stderr, `tollgate: cannot reach tollgate's admin listener at http://127.0.0.1:${port} (ECONNREFUSED). Is tollgate running?`)
      const badInterval = yield* dash("--admin", admin, "--interval", "10ms")
      assert.include(badInterval.stderr, "--interval: expected a duration of at least 200ms")
      const noTerminal = yield* dash("--admin", admin)
      assert.include(noTerminal.stderr, "cannot reach", "the listener is read before the terminal is checked")
    }), { timeout: 60_000 })

  it.scopedLive.skipIf(tmuxMissing)(needingTmux("start --dash: the server and its dashboard in one terminal; q stops both, the ledger written"), () =>
    Effect.gen(function*() {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-dash-")))
      const env = cleanEnv(dir)
      const port = yield* freePort
      const db = path.join(dir, "ledger.db")
      fs.writeFileSync(path.join(dir, "tollgate.yaml"), `server: { port: ${port}, admin: { port: 0 } }\ndatabase: { path: ${db} }\nproviders:\n  sim: { kind: mock }\n`)
      const socket = path.join(dir, "tmux.sock")
      const tmux = (...args: Array<string>) => run("tmux", ["-S", socket, ...args], env)
      yield* Effect.addFinalizer(() => Effect.asVoid(tmux("kill-server")))
      const command = `${process.execPath} ${BIN} start --dash --config ${path.join(dir, "tollgate.yaml")}; echo "start exited $?"; sleep 60`
      const started = yield* tmux("new-session", "-d", "-s", "serve", "-x", "140", "-y", "40", command)
      assert.strictEqual(started.code, 0, started.stderr)
      const screen = Effect.map(tmux("capture-pane", "-p", "-t", "serve"), (r) => r.stdout)
      yield* pollUntil(screen, (s) => s.includes("q quit") && s.includes("today 0 requests"), "20 seconds", "the dashboard")

      for (let i = 0; i < 3; i++) {
        const status = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${i}` }] })
          }).then(async (r) => (await r.text(), r.status))
        )
        assert.strictEqual(status, 200)
      }
      yield* pollUntil(screen, (s) => s.includes("today 3 requests"), "20 seconds", "3 requests on screen")
      yield* tmux("send-keys", "-t", "serve", "q")
      const after = yield* pollUntil(screen, (s) => s.includes("start exited"), "20 seconds", "start to exit")
      assert.include(after, "start exited 0")
      assert.include(after, `listening on http://127.0.0.1:${port}/v1`)
      const sqlite = new Database(db, { readonly: true, fileMustExist: true })
      const rows = sqlite.prepare("SELECT COUNT(*) AS n FROM requests").get() as { n: number }
      sqlite.close()
      assert.strictEqual(rows.n, 3)
    }), { timeout: 90_000 })
})
