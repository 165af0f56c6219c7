/**
 * Issue #29, the listener, the client connection and startup, over real sockets on 127.0.0.1:
 * hop-by-hop and expectation headers stay with tollgate, a request undici refuses is not a
 * provider failure, the client's OpenAI account headers go only with its own key, Node's own
 * error answers are JSON, HEAD is GET without a body, a missing key is refused before the body is
 * read, a body that never ends is cut, bodies in memory at once are capped, connections per
 * provider are capped, an open bind without keys is refused, and SIGTERM drains and exits.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Http from "../../src/Http.js"
import * as Anthropic from "../../src/Upstream/Anthropic.js"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")
const KEY = "k-edge"
process.env.EDGE_PROVIDER_KEY = "sk-operator"

interface Response {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** Every whole HTTP/1.1 response in `raw` (content-length or chunked), in order. */
const parseResponses = (raw: Buffer): Array<Response> => {
  const out: Array<Response> = []
  let at = 0
  while (at < raw.length) {
    const end = raw.indexOf("\r\n\r\n", at)
    if (end === -1) break
    const [line, ...fields] = raw.subarray(at, end).toString("latin1").split("\r\n")
    const status = Number(line!.split(" ")[1])
    const headers: Record<string, string> = {}
    for (const field of fields) {
      const colon = field.indexOf(":")
      headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim()
    }
    at = end + 4
    if (status === 100) continue
    let body = ""
    if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        const lineEnd = raw.indexOf("\r\n", at)
        if (lineEnd === -1) return out
        const size = parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16)
        if (lineEnd + 2 + size + 2 > raw.length) return out
        body += raw.subarray(lineEnd + 2, lineEnd + 2 + size).toString("utf8")
        at = lineEnd + 2 + size + 2
        if (size === 0) break
      }
    } else {
      const length = Number(headers["content-length"] ?? 0)
      if (at + length > raw.length) return out
      body = raw.subarray(at, at + length).toString("utf8")
      at += length
    }
    out.push({ status, headers, body })
  }
  return out
}

/** A raw client connection: what it received, and waits on what it receives (never on time). */
interface Raw {
  readonly socket: net.Socket
  readonly received: () => Buffer
  /** Until `ok(received)` holds, or the socket closes (then fails if it does not hold). */
  readonly until: (ok: (received: Buffer) => boolean) => Effect.Effect<Buffer, Error>
  readonly responses: (n: number) => Effect.Effect<Array<Response>, Error>
  readonly closed: Effect.Effect<void>
}

const connect = (port: number) =>
  Effect.acquireRelease(
    Effect.async<Raw>((resume) => {
      const socket = net.connect(port, "127.0.0.1")
      let data = Buffer.alloc(0)
      const waiters = new Set<() => void>()
      const closed = Deferred.unsafeMake<void>(undefined as never)
      socket.on("data", (chunk) => {
        data = Buffer.concat([data, chunk])
        for (const w of waiters) w()
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        Deferred.unsafeDone(closed, Effect.void)
        for (const w of waiters) w()
      })
      const until = (ok: (received: Buffer) => boolean) =>
        Effect.async<Buffer, Error>((done) => {
          const check = () => {
            if (ok(data)) return waiters.delete(check), done(Effect.succeed(data))
            if (socket.destroyed || socket.readyState === "closed") {
              waiters.delete(check)
              done(Effect.fail(new Error(`socket closed; received: ${data.toString("latin1").slice(0, 300)}`)))
            }
          }
          waiters.add(check)
          check()
          return Effect.sync(() => void waiters.delete(check))
        }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`timed out; received: ${data.toString("latin1").slice(0, 300)}`) }))
      socket.once("connect", () =>
        resume(Effect.succeed({
          socket,
          received: () => data,
          until,
          responses: (n) => Effect.map(until((d) => parseResponses(d).length >= n), parseResponses),
          closed: Deferred.await(closed).pipe(Effect.timeout("5 seconds"), Effect.orDie)
        })))
    }),
    (raw) => Effect.sync(() => raw.socket.destroy())
  )

const portOf = (baseUrl: string) => Number(new URL(baseUrl).port)

const chat = (model: string, extra = "") => JSON.stringify({ model, messages: [{ role: "user", content: `hi${extra}` }] })

const post = (target: string, body: string, headers: Record<string, string> = {}) =>
  `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
  Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + `\r\n${body}`

/** One request with fetch; the JSON body and the status and headers. */
const fetchJson = (url: string, init: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, headers: response.headers, json: (await response.json()) as any }
  })

class Upstream extends Effect.Tag("test/EdgeUpstream")<Upstream, MockUpstream.MockUpstream>() {}
class Counting extends Effect.Tag("test/EdgeCounting")<Counting, { readonly connections: () => number }>() {}

/**
 * An upstream that counts its connections and answers requests two at a time (it holds each until
 * a second one is there): with at most 2 connections it never waits for a third.
 */
const countingUpstream = Effect.acquireRelease(
  Effect.async<{ server: http.Server; url: string; connections: () => number }>((resume) => {
    // Connections that carried a completion: tollgate's listing of the provider's models at start
    // (GET /models, on a client of its own) is answered at once and not counted.
    const sockets = new Set<unknown>()
    let held: Array<http.ServerResponse> = []
    const server = http.createServer((req, res) => {
      req.resume()
      if (req.method === "GET") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }))
        return
      }
      sockets.add(req.socket)
      req.on("end", () => {
        held.push(res)
        if (held.length < 2) return
        for (const r of held) {
          r.writeHead(200, { "content-type": "application/json" })
          r.end(JSON.stringify({ id: "c", object: "chat.completion", model: "capped", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }))
        }
        held = []
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1`, connections: () => sockets.size })))
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
)

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const upstream = yield* MockUpstream.make
    const counting = yield* countingUpstream
    return Layer.mergeAll(
      Tollgate.layer({
        server: { apiKeys: [KEY], bodyTimeout: "300ms", maxBodyBytes: 3000, maxBodyBytesInFlight: 4096 },
        retry: { attempts: 0 },
        cache: { enabled: false },
        providers: {
          up: { kind: "openai", baseUrl: upstream.url, apiKeyEnv: "EDGE_PROVIDER_KEY" },
          pass: { kind: "openai", baseUrl: upstream.url, passthroughAuth: true },
          // A header undici will not send: every request to this provider is refused before it goes.
          odd: { kind: "openai", baseUrl: upstream.url, apiKeyEnv: "EDGE_PROVIDER_KEY", headers: { upgrade: "websocket" } },
          capped: { kind: "openai", baseUrl: counting.url, apiKeyEnv: "EDGE_PROVIDER_KEY", maxConnections: 2 }
        },
        routes: [
          { name: "pass", match: { model: "pass-*" }, targets: [{ provider: "pass" }] },
          { name: "odd", match: { model: "odd-*" }, targets: [{ provider: "odd" }] },
          { name: "capped", match: { model: "capped-*" }, targets: [{ provider: "capped" }] },
          { name: "up", targets: [{ provider: "up" }] }
        ]
      }),
      Layer.succeed(Upstream, upstream),
      Layer.succeed(Counting, { connections: counting.connections })
    )
  })
)

const AUTH = { authorization: `Bearer ${KEY}` }

describe("hardening: the client connection", () => {
  layer(Env, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.scoped("Expect: 100-continue is answered by tollgate and never forwarded: 200 every time, the breaker stays closed", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const before = upstream.received.length
        for (let i = 0; i < 4; i++) {
          const raw = yield* connect(portOf(baseUrl))
          const body = chat("gpt-4o-mini", ` expect ${i}`)
          raw.socket.write(post("/v1/chat/completions", "", { ...AUTH, Expect: "100-continue", Connection: "close" }).replace(/Content-Length: 0/, `Content-Length: ${body.length}`))
          yield* raw.until((d) => d.includes("100 Continue"))
          raw.socket.write(body)
          const [response] = yield* raw.responses(1)
          assert.strictEqual(response!.status, 200, response!.body)
        }
        const sent = upstream.received.slice(before)
        assert.strictEqual(sent.length, 4)
        for (const r of sent) assert.isUndefined(r.headers.expect)
      }))

    it.scoped("headers a Connection header names are hop-by-hop: not forwarded", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const raw = yield* connect(portOf(baseUrl))
        raw.socket.write(post("/v1/chat/completions", chat("gpt-4o-mini", " hop"), { ...AUTH, Connection: "keep-alive, X-Hop-Secret", "X-Hop-Secret": "1", "X-End-To-End": "2" }))
        const [response] = yield* raw.responses(1)
        assert.strictEqual(response!.status, 200, response!.body)
        const last = upstream.received[upstream.received.length - 1]!
        assert.isUndefined(last.headers["x-hop-secret"])
        assert.strictEqual(last.headers["x-end-to-end"], "2")
      }))

    it.effect("a request undici refuses to send is the request's fault: 400 each time, never a provider failure", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // failureThreshold is 3: a breaker counting these would answer 503 from the fourth on.
        for (let i = 0; i < 5; i++) {
          const { status, json } = yield* fetchJson(`${baseUrl}/chat/completions`, { method: "POST", headers: AUTH, body: chat("odd-model") })
          assert.strictEqual(status, 400)
          assert.strictEqual(json.error.code, "unsendable_request")
        }
        const ready = yield* fetchJson(`${baseUrl.replace(/\/v1$/, "")}/readyz`, {})
        assert.strictEqual(ready.status, 200)
      }))

    it.effect("OpenAI-Organization and OpenAI-Project go only with the client's own key (passthroughAuth)", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const account = { ...AUTH, "OpenAI-Organization": "org-client", "OpenAI-Project": "proj-client" }
        yield* fetchJson(`${baseUrl}/chat/completions`, { method: "POST", headers: account, body: chat("gpt-4o-mini", " keyed") })
        const keyed = upstream.received[upstream.received.length - 1]!
        assert.strictEqual(keyed.headers.authorization, "Bearer sk-operator")
        assert.isUndefined(keyed.headers["openai-organization"])
        assert.isUndefined(keyed.headers["openai-project"])
        yield* fetchJson(`${baseUrl}/chat/completions`, { method: "POST", headers: account, body: chat("pass-model") })
        const passed = upstream.received[upstream.received.length - 1]!
        assert.strictEqual(passed.headers.authorization, `Bearer ${KEY}`)
        assert.strictEqual(passed.headers["openai-organization"], "org-client")
        assert.strictEqual(passed.headers["openai-project"], "proj-client")
        // The Anthropic adapter drops them too unless it passes the client's key on.
        const provider = { kind: "anthropic", baseUrl: "http://x", apiKeyEnv: "K", passthroughAuth: false, version: "2023-06-01", timeouts: { connect: 1, firstByte: 1, idle: 1, total: 1 }, limits: { bufferBytes: 1, eventBytes: 1, errorBytes: 1 }, headers: {} } as const
        const request = { provider: undefined as never, path: "/v1/messages", body: new Uint8Array(), stream: false, clientHeaders: { "openai-organization": "org-client", "openai-project": "p" } as never }
        const out = Anthropic.forwardHeaders(provider, { _tag: "None" } as never, request)
        assert.isUndefined(out["openai-organization"])
        assert.isUndefined(out["openai-project"])
      }))

    it.effect("HEAD is answered like GET, without a body", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const root = baseUrl.replace(/\/v1$/, "")
        const health = yield* Effect.promise(() => fetch(`${root}/healthz`, { method: "HEAD" }))
        assert.strictEqual(health.status, 200)
        assert.strictEqual(yield* Effect.promise(() => health.text()), "")
        const models = yield* Effect.promise(() => fetch(`${baseUrl}/models`, { method: "HEAD", headers: AUTH }))
        assert.strictEqual(models.status, 200)
        const wrong = yield* fetchJson(`${root}/healthz`, { method: "DELETE" })
        assert.strictEqual(wrong.status, 405)
        assert.include(wrong.headers.get("allow") ?? "", "HEAD")
      }))

    it.scoped("without a valid key the answer is 401 before the body is read, and the connection closes", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // Headers only: the 2000 bytes announced never come.
        const raw = yield* connect(portOf(baseUrl))
        raw.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n")
        const [response] = yield* raw.responses(1)
        assert.strictEqual(response!.status, 401)
        assert.strictEqual(response!.headers.connection, "close")
        assert.strictEqual(JSON.parse(response!.body).error.code, "invalid_api_key")
        yield* raw.closed
        // With Expect: 100-continue the client is never told to send its body.
        const expecting = yield* connect(portOf(baseUrl))
        expecting.socket.write("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n")
        const [refused] = yield* expecting.responses(1)
        assert.strictEqual(refused!.status, 401)
        assert.notInclude(expecting.received().toString("latin1"), "100 Continue")
        assert.strictEqual(JSON.parse(refused!.body).type, "error", "Anthropic's shape on /v1/messages")
      }))

    it.scoped("what Node cannot parse is answered in JSON: a bad request line 400, headers too large 431", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const garbage = yield* connect(portOf(baseUrl))
        garbage.socket.write("THIS IS NOT HTTP\r\n\r\n")
        const [bad] = yield* garbage.responses(1)
        assert.strictEqual(bad!.status, 400)
        assert.strictEqual(bad!.headers["content-type"], "application/json")
        assert.strictEqual(JSON.parse(bad!.body).error.code, "malformed_request")
        yield* garbage.closed

        const large = yield* connect(portOf(baseUrl))
        large.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)
        const [tooLarge] = yield* large.responses(1)
        assert.strictEqual(tooLarge!.status, 431)
        assert.strictEqual(JSON.parse(tooLarge!.body).error.code, "headers_too_large")
      }))

    it.scoped("a body that does not arrive within server.bodyTimeout is answered 408 in JSON", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const raw = yield* connect(portOf(baseUrl))
        raw.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 100\r\n\r\n{"model":`)
        const [response] = yield* raw.responses(1)
        assert.strictEqual(response!.status, 408)
        assert.strictEqual(JSON.parse(response!.body).error.code, "request_timeout")
        yield* raw.closed
      }))

    it.scoped("bodies held at once are capped: past server.maxBodyBytesInFlight a request gets 503 with Retry-After", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const padding = "x".repeat(2300)
        // Held at the upstream: its 2.3 KB body stays in memory until it is answered.
        const first = yield* connect(portOf(baseUrl))
        first.socket.write(post("/v1/chat/completions", chat("gated", padding), AUTH))
        yield* upstream.awaitHeld(1)
        const second = yield* connect(portOf(baseUrl))
        second.socket.write(post("/v1/chat/completions", chat("gpt-4o-mini", padding), AUTH))
        const [refused] = yield* second.responses(1)
        assert.strictEqual(refused!.status, 503)
        assert.strictEqual(refused!.headers["retry-after"], "1")
        assert.strictEqual(JSON.parse(refused!.body).error.code, "overloaded")
        upstream.release()
        const [answered] = yield* first.responses(1)
        assert.strictEqual(answered!.status, 200)
        // Given back once answered.
        const third = yield* connect(portOf(baseUrl))
        third.socket.write(post("/v1/chat/completions", chat("gpt-4o-mini", padding), AUTH))
        const [after] = yield* third.responses(1)
        assert.strictEqual(after!.status, 200)
      }))

    it.effect("a provider's connections are capped (maxConnections)", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const counting = yield* Counting
        const answers = yield* Effect.all(
          Array.from({ length: 6 }, (_, i) => fetchJson(`${baseUrl}/chat/completions`, { method: "POST", headers: AUTH, body: chat("capped-model", ` ${i}`) })),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200])
        assert.isAtMost(counting.connections(), 2)
      }))
  })
})

/** Runs the CLI to its end; its exit code and output. */
const tollgate = (...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    // Killed if it runs on (a `start` that listens instead of refusing).
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, TOLLGATE_CONFIG: "", NO_COLOR: "1" }, timeout: 15_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

interface Started {
  readonly child: ChildProcess
  readonly port: number
  readonly dbPath: string
  readonly exited: Effect.Effect<number | null>
}

/** `tollgate start` as a child on 127.0.0.1 (port 0), up once it prints its address; killed with the scope. */
const startChild = (config: Record<string, unknown>) =>
  Effect.acquireRelease(
    Effect.async<Started, Error>((resume) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-edge-"))
      const dbPath = path.join(dir, "ledger.db")
      const file = path.join(dir, "tollgate.yaml")
      fs.writeFileSync(file, JSON.stringify({ ...config, database: { path: dbPath } }))
      const child = spawn(process.execPath, [BIN, "start", "--config", file, "--port", "0", "--host", "127.0.0.1"], {
        env: { ...process.env, TOLLGATE_CONFIG: "", NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const exit = Deferred.unsafeMake<number | null>(undefined as never)
      child.once("exit", (code) => Deferred.unsafeDone(exit, Effect.succeed(code)))
      let out = ""
      child.stdout!.on("data", (d) => {
        out += String(d)
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (m !== null) {
          child.stdout!.removeAllListeners("data")
          child.stdout!.resume()
          resume(Effect.succeed({ child, port: Number(m[1]), dbPath, exited: Deferred.await(exit).pipe(Effect.timeout("10 seconds"), Effect.orDie) }))
        }
      })
      child.stderr!.on("data", (d) => (out += String(d)))
      child.once("exit", () => resume(Effect.fail(new Error(`tollgate exited before listening:\n${out}`))))
    }).pipe(Effect.timeout("20 seconds")),
    ({ child }) => Effect.sync(() => void (child.exitCode === null && child.kill("SIGKILL")))
  )

const ledgerRows = (dbPath: string) =>
  Effect.map(tollgate("export", "--format", "jsonl", "--db", dbPath), (r) =>
    r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>))

describe("hardening: startup and shutdown", () => {
  it.effect("a bind others can reach, without server.apiKeys, is refused at start with the reason", () =>
    Effect.gen(function*() {
      const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-edge-")), "tollgate.yaml")
      fs.writeFileSync(config, "{}\n")
      for (const host of ["0.0.0.0", "::"]) {
        const run = yield* tollgate("start", "--config", config, "--host", host, "--port", "0", "--demo")
        assert.notStrictEqual(run.code, 0, host)
        assert.include(run.stderr, `refusing to listen on ${host} without server.apiKeys`)
        assert.notMatch(run.stderr, /\n\s+at /)
        assert.notInclude(run.stdout, "listening on")
      }
      // Loopback in every spelling is fine without keys; `::` is reported as itself.
      for (const host of ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"]) assert.isTrue(Http.isLoopback(host), host)
      for (const host of ["0.0.0.0", "::", "10.1.2.3", "example.com"]) assert.isFalse(Http.isLoopback(host), host)
      assert.strictEqual(Http.tcpAddressOf({ address: "::", family: "IPv6", port: 4100 }).hostname, "::")
    }))

  it.scoped("SIGTERM: idle keep-alive connections close at once, a late request gets 503 with Connection: close, the request in flight finishes, rows are written, the process exits", () =>
    Effect.gen(function*() {
      const upstream = yield* MockUpstream.make
      const { child, dbPath, exited, port } = yield* startChild({
        providers: { up: { kind: "openai", baseUrl: upstream.url, apiKeyEnv: "EDGE_PROVIDER_KEY" } },
        cache: { enabled: false },
        server: { drainTimeout: "10s" }
      })
      // Idle after one answer, kept alive.
      const idle = yield* connect(port)
      idle.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      yield* idle.responses(1)
      // Also kept alive after one answer, then the head of a second request: not idle.
      const late = yield* connect(port)
      late.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      yield* late.responses(1)
      late.socket.write("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
      // In flight, held at the upstream.
      const busy = yield* connect(port)
      busy.socket.write(post("/v1/chat/completions", chat("gated")))
      yield* upstream.awaitHeld(1)

      child.kill("SIGTERM")
      yield* idle.closed
      late.socket.write("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
      const [, refused] = yield* late.responses(2)
      assert.strictEqual(refused!.status, 503)
      assert.strictEqual(refused!.headers.connection, "close")
      assert.deepStrictEqual(JSON.parse(refused!.body).error.type, "overloaded_error", "Anthropic's shape on /v1/messages")
      yield* late.closed

      upstream.release()
      const [answered] = yield* busy.responses(1)
      assert.strictEqual(answered!.status, 200)
      assert.strictEqual(yield* exited, 0)
      const rows = yield* ledgerRows(dbPath)
      assert.strictEqual(rows.length, 1)
      assert.deepInclude(rows[0]!, { status: 200, aborted: 0 })
    }))

  it.scoped("SIGTERM: a request still in flight after server.drainTimeout is cut off, booked as aborted, and the process exits", () =>
    Effect.gen(function*() {
      const upstream = yield* MockUpstream.make
      const { child, dbPath, exited, port } = yield* startChild({
        providers: { up: { kind: "openai", baseUrl: upstream.url, apiKeyEnv: "EDGE_PROVIDER_KEY" } },
        cache: { enabled: false },
        server: { drainTimeout: "200ms" }
      })
      const busy = yield* connect(port)
      busy.socket.write(post("/v1/chat/completions", chat("gated")))
      yield* upstream.awaitHeld(1)
      child.kill("SIGTERM")
      yield* busy.closed
      assert.strictEqual(parseResponses(busy.received()).length, 0)
      assert.strictEqual(yield* exited, 0)
      const rows = yield* ledgerRows(dbPath)
      assert.strictEqual(rows.length, 1)
      assert.strictEqual(rows[0]!.aborted, 1)
    }))
})
