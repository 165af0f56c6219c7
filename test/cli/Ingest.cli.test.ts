/**
 * Cloud ingest as a user runs it: the built executable (`dist/bin.js start`) sending its ledger to
 * a receiver on 127.0.0.1 that answers 500 for a while and then 200, with tollgate restarted in
 * between. Every ledger row arrives exactly once (by its key), no payload carries a prompt, an
 * answer or a key, and `stats` shows the backlog. On SQLite, and on PostgreSQL where it runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Pg from "../support/Postgres.js"
import * as Signal from "../support/Signal.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

const INGEST_KEY = "wk-test-ingest-secret"
const CLIENT_KEY = "sk-client-secret-do-not-ship"
const PROMPT = "PROMPT-TEXT-that-must-stay-home"
const REPLY = "REPLY-TEXT-that-must-stay-home"

interface Post {
  readonly status: number
  readonly authorization: string | undefined
  readonly idempotencyKey: string | undefined
  readonly raw: string
  readonly body: {
    readonly workspaceId: string
    readonly ledgerId: string
    readonly batch: string
    readonly rows: ReadonlyArray<Record<string, unknown> & { readonly key: string; readonly id: number }>
  }
}

/** A receiver that answers 500 while `failing`, else 200, and keeps every POST; `changed` fires after each. */
const receiver = Effect.acquireRelease(
  Effect.async<{ server: http.Server; url: string; posts: Array<Post>; state: { failing: boolean }; listeners: Set<() => void> }>((resume) => {
    const posts: Array<Post> = []
    const state = { failing: true }
    const listeners = new Set<() => void>()
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8")
        const status = state.failing ? 500 : 200
        posts.push({
          status,
          authorization: req.headers.authorization,
          idempotencyKey: req.headers["idempotency-key"] as string | undefined,
          raw,
          body: JSON.parse(raw)
        })
        res.writeHead(status, { "content-type": "application/json" }).end(status === 200 ? "{\"ok\":true}" : "{\"error\":\"down\"}")
        for (const listener of listeners) listener()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port
      resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}/ingest`, posts, state, listeners }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => { server.closeAllConnections(); server.close(() => resume(Effect.void)) })
)

type Receiver = Effect.Effect.Success<typeof receiver>

/** Waits (on the receiver's own signal) until `ok` holds of its POSTs. */
const until = (r: Receiver, ok: (posts: ReadonlyArray<Post>) => boolean, what: string) => Signal.until(r, () => ok(r.posts), what)

const cleanEnv = (home: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|CLOUD_INGEST_|WORKSPACE_|DATABASE_URL$|PORT$|HOST$)/.test(name)) env[name] = value
  }
  return { ...env, HOME: home, NO_COLOR: "1" }
}

/** `tollgate start` on `config`, until the scope closes (SIGTERM, and its exit awaited); its base URL and its output so far. */
const started = (dir: string, config: string) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [BIN, "start", "--port", "0", "--config", config], { cwd: dir, env: cleanEnv(dir) })),
      (child: ChildProcess) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGTERM")
        })
    )
    const listening = yield* Deferred.make<{ baseUrl: string; adminUrl: string }, Error>()
    const output = { text: "" }
    const collect = (chunk: Buffer) => {
      output.text += chunk.toString("utf8")
      const match = /listening on (http:\/\/[^\s]+\/v1)[\s\S]*admin on (http:\/\/[^\s]+)/.exec(output.text)
      if (match !== null) Deferred.unsafeDone(listening, Effect.succeed({ baseUrl: match[1]!, adminUrl: match[2]! }))
    }
    child.stdout!.on("data", collect)
    child.stderr!.on("data", collect)
    child.once("exit", (code) => Deferred.unsafeDone(listening, Effect.fail(new Error(`tollgate exited (${code}): ${output.text}`))))
    const { adminUrl, baseUrl } = yield* Deferred.await(listening).pipe(Effect.timeout("20 seconds"), Effect.orDie)
    return { baseUrl, adminUrl, output, child }
  })

const stop = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGTERM")
  })

const cli = (dir: string, args: ReadonlyArray<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(process.execPath, [BIN, ...args], { env: cleanEnv(dir), cwd: dir }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

const ask = (baseUrl: string, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
    Effect.promise(() =>
      fetch(`${baseUrl}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", stream: i % 2 === 1, messages: [{ role: "user", content: `${PROMPT} ${i}` }] })
      }).then(async (r) => {
        await r.text()
        return r.status
      })
    ), { discard: true })

const engines = [
  { name: "SQLite", skip: undefined as string | undefined },
  { name: "PostgreSQL", skip: Pg.unreachable }
]

for (const engine of engines) {
  describe.skipIf(engine.skip !== undefined)(`cloud ingest through outages and a restart, ${engine.name}`, () => {
    it.scoped(
      `${engine.name}: every ledger row delivered exactly once, nothing but metadata sent${engine.skip === undefined ? "" : ` (skipped: ${engine.skip})`}`,
      () =>
        Effect.gen(function*() {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-ingest-"))
          const r = yield* receiver
          const database = engine.name === "SQLite"
            ? `  path: ${JSON.stringify(path.join(dir, "ledger.db"))}\n`
            : `  url: ${(yield* Pg.freshDatabase).url}\n`
          const config = path.join(dir, "tollgate.yaml")
          fs.writeFileSync(
            config,
            `providers:\n  sim: { kind: mock, reply: ${JSON.stringify(REPLY)} }\n` +
              `database:\n${database}` +
              `telemetry:\n  cloud:\n    url: ${r.url}\n    workspaceId: ws-test\n    key: ${INGEST_KEY}\n` +
              `    batchSize: 4\n    interval: 100ms\n    baseDelay: 100ms\n    maxDelay: 1s\n`
          )

          // The first tollgate: the receiver is down for all of its life.
          const first = yield* started(dir, config)
          yield* ask(first.baseUrl, 6)
          yield* until(r, (posts) => posts.length >= 2, "two refused POSTs")
          yield* stop(first.child)
          assert.match(first.output.text, /cloud ingest: cannot send to http:\/\/127\.0\.0\.1:\d+: the receiver answered 500/)
          assert.isTrue(r.posts.every((p) => p.status === 500))

          // Between the two: the backlog, from the ledger.
          const waiting = yield* cli(dir, ["stats", "--json", "--config", config])
          assert.strictEqual(waiting.code, 0, waiting.stderr)
          assert.strictEqual(JSON.parse(waiting.stdout).ingest.backlog, 6)
          const table = yield* cli(dir, ["stats", "--config", config])
          assert.include(table.stdout, "cloud ingest: 6 row(s) not yet sent")

          // The second tollgate on the same ledger: still refused for a while, then the receiver recovers.
          const refusedBefore = r.posts.length
          const second = yield* started(dir, config)
          yield* ask(second.baseUrl, 5)
          yield* until(r, (posts) => posts.length >= refusedBefore + 2, "two more refused POSTs after the restart")
          // The running server shows the backlog too (every row of the first run is still in it).
          const admin = yield* Effect.promise(() => fetch(`${second.adminUrl}/admin/stats`).then((res) => res.json() as Promise<{ ingest: { backlog: number } }>))
          assert.isAtLeast(admin.ingest.backlog, 6)
          assert.isAtMost(admin.ingest.backlog, 11)
          // And what the sender is doing, without the key.
          const status = yield* Effect.promise(() => fetch(`${second.adminUrl}/debug/status`).then((res) => res.text()))
          const ingest = JSON.parse(status).ingest
          assert.strictEqual(ingest.target, new URL(r.url).origin)
          assert.strictEqual(ingest.workspaceId, "ws-test")
          assert.strictEqual(ingest.lastError, "the receiver answered 500")
          assert.isString(ingest.failingSince)
          assert.notInclude(status, INGEST_KEY)
          const metrics = yield* Effect.promise(() => fetch(`${second.adminUrl}/metrics`).then((res) => res.text()))
          const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1])
          assert.strictEqual(value("tollgate_ingest_failing"), 1)
          assert.isAtLeast(value("tollgate_ingest_post_failures_total"), 2)
          assert.isAtLeast(value("tollgate_ingest_backlog_rows"), 6)
          assert.strictEqual(value("tollgate_ingest_rows_delivered_total"), 0)
          r.state.failing = false
          const accepted = () => r.posts.filter((p) => p.status === 200).flatMap((p) => p.body.rows)
          yield* until(r, () => new Set(accepted().map((row) => row.key)).size >= 11, "all 11 rows accepted")
          // A batch the receiver has taken is marked before tollgate exits (the mark is not cut off by a shutdown).
          yield* stop(second.child)
          assert.match(second.output.text, /cloud ingest: http:\/\/127\.0\.0\.1:\d+ accepts again after/)

          // Exactly once: each row key in exactly one accepted batch, and the keys are the ledger's rows.
          const keys = accepted().map((row) => row.key)
          assert.strictEqual(keys.length, 11, `accepted rows: ${keys.join(" ")}`)
          assert.strictEqual(new Set(keys).size, 11)
          const exported = yield* cli(dir, ["export", "--format", "jsonl", "--since", "all", "--config", config])
          assert.strictEqual(exported.code, 0, exported.stderr)
          const ledger = exported.stdout.trim().split("\n").map((line) => JSON.parse(line) as { id: number; request_id: string })
          assert.strictEqual(ledger.length, 11)
          const ledgerId = r.posts[0]!.body.ledgerId
          assert.deepStrictEqual([...keys].sort(), ledger.map((row) => `${ledgerId}:${row.id}`).sort())
          // Each accepted row is the ledger's row, field for field.
          for (const row of ledger) {
            const sent = accepted().find((s) => s.key === `${ledgerId}:${row.id}`)!
            assert.strictEqual(sent.request_id, row.request_id)
          }

          // Every POST: the workspace, the key only in the header, an idempotency key per batch, metadata only.
          for (const post of r.posts) {
            assert.strictEqual(post.authorization, `Bearer ${INGEST_KEY}`)
            assert.strictEqual(post.body.workspaceId, "ws-test")
            assert.strictEqual(post.idempotencyKey, post.body.batch)
            assert.match(post.idempotencyKey ?? "", /^[0-9a-f]{64}$/)
            for (const secret of [INGEST_KEY, CLIENT_KEY, PROMPT, REPLY]) assert.notInclude(post.raw, secret)
            for (const row of post.body.rows) assert.notProperty(row, "ingested_at")
          }
          // A batch sent again after a refusal is the same rows under the same key.
          const byKey = new Map<string, string>()
          for (const post of r.posts) {
            const rows = post.body.rows.map((row) => row.key).join(",")
            if (byKey.has(post.body.batch)) assert.strictEqual(byKey.get(post.body.batch), rows)
            byKey.set(post.body.batch, rows)
          }

          const drained = yield* cli(dir, ["stats", "--json", "--config", config])
          assert.deepStrictEqual(JSON.parse(drained.stdout).ingest, { backlog: 0, oldestUnsent: null })
        }),
      { timeout: 90_000 }
    )
  })
}
