/**
 * Bad input and bad upstreams: each returns its status with an OpenAI-shaped error body, and
 * never a stack trace.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"
import { Layer } from "effect"

/** A port with nothing listening on it. */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const upstream = yield* MockUpstream.make
    const deadPort = yield* closedPort
    return Tollgate.layer({
      server: { maxBodyBytes: 4096 },
      retry: { attempts: 0 },
      providers: {
        up: { kind: "openai", baseUrl: upstream.url },
        slow: { kind: "openai", baseUrl: upstream.url, timeouts: { firstByte: "300ms" } },
        dead: { kind: "openai", baseUrl: `http://127.0.0.1:${deadPort}/v1` }
      },
      routes: [
        { name: "hung", match: { model: "hang" }, targets: [{ provider: "slow" }] },
        { name: "down", match: { model: "gpt-dead*" }, targets: [{ provider: "dead" }] }
      ]
    })
  })
)

const post = (baseUrl: string, body: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      ...init
    })
    return { status: response.status, headers: response.headers, body: (await response.json()) as any }
  })

const assertOpenAiError = (body: any, code: string) => {
  assert.hasAllKeys(body, ["error"])
  assert.isString(body.error.message)
  assert.isString(body.error.type)
  assert.strictEqual(body.error.code, code)
  assert.notMatch(body.error.message, /\n\s+at /, "no stack trace")
}

/** The request id tollgate gave a response (every answer has one, errors included). */
const idOf = (response: { readonly headers: Headers }): string => {
  const id = response.headers.get("x-tollgate-request-id")
  assert.match(id ?? "", /^req_/)
  return id!
}

const chat = (model: string) => JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] })

describe("HTTP errors", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("malformed JSON is 400 invalid_json", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const r = yield* post(baseUrl, `{"model": "gpt-4o", "messages": [`)
        assert.strictEqual(r.status, 400)
        assertOpenAiError(r.body, "invalid_json")
        assert.strictEqual(r.body.error.type, "invalid_request_error")
      }))

    it.effect("missing or invalid model is 400 invalid_model", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        for (const body of [`{"messages":[{"role":"user","content":"x"}]}`, `{"model":42,"messages":[{"role":"user","content":"x"}]}`, `{"model":"","messages":[{"role":"user","content":"x"}]}`]) {
          const r = yield* post(baseUrl, body)
          assert.strictEqual(r.status, 400, body)
          assertOpenAiError(r.body, "invalid_model")
          assert.strictEqual(r.body.error.param, "model")
        }
      }))

    it.effect("missing or invalid messages is 400 invalid_messages", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        for (const body of [`{"model":"gpt-4o"}`, `{"model":"gpt-4o","messages":[]}`, `{"model":"gpt-4o","messages":"hi"}`, `{"model":"gpt-4o","messages":[{"content":"no role"}]}`]) {
          const r = yield* post(baseUrl, body)
          assert.strictEqual(r.status, 400, body)
          assertOpenAiError(r.body, "invalid_messages")
        }
      }))

    it.effect("a body that is not an object is 400", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const r = yield* post(baseUrl, `[1,2,3]`)
        assert.strictEqual(r.status, 400)
        assertOpenAiError(r.body, "invalid_body")
      }))

    it.effect("an unknown path is 404", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const response = yield* Effect.promise(() => fetch(`${baseUrl}/nothing/here`))
        assert.strictEqual(response.status, 404)
        assertOpenAiError(yield* Effect.promise(() => response.json()), "unknown_url")
      }))

    it.effect("a wrong method is 405 with Allow", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const get = yield* Effect.promise(() => fetch(`${baseUrl}/chat/completions`))
        assert.strictEqual(get.status, 405)
        assert.strictEqual(get.headers.get("allow"), "POST")
        assertOpenAiError(yield* Effect.promise(() => get.json()), "method_not_allowed")
        const del = yield* Effect.promise(() => fetch(`${baseUrl}/models`, { method: "DELETE" }))
        assert.strictEqual(del.status, 405)
        assert.strictEqual(del.headers.get("allow"), "GET, HEAD")
      }))

    it.effect("a body over the limit is 413, declared or streamed", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const big = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(5000) }] })
        const declared = yield* post(baseUrl, big)
        assert.strictEqual(declared.status, 413)
        assertOpenAiError(declared.body, "payload_too_large")
        // Chunked, with no Content-Length: the limit is enforced while reading.
        const chunked = yield* post(baseUrl, "", {
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(big))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit)
        assert.strictEqual(chunked.status, 413)
        assertOpenAiError(chunked.body, "payload_too_large")
      }))

    it.effect("an unreachable provider is 502", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const r = yield* post(baseUrl, chat("gpt-dead-1"))
        assert.strictEqual(r.status, 502)
        assertOpenAiError(r.body, "upstream_unreachable")
        assert.include(r.body.error.message, "dead")
        assert.strictEqual(r.headers.get("x-tollgate-request-id")?.startsWith("req_"), true)
      }))

    it.effect("a provider that does not answer in time is 504", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const r = yield* post(baseUrl, chat("hang"))
        assert.strictEqual(r.status, 504)
        assertOpenAiError(r.body, "upstream_timeout")
      }))

    it.effect("errors are in the ledger with their status and type; 404, 405 and 413 leave no row", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        // Its own failing requests, each found in the ledger by its request id.
        const expected: ReadonlyArray<readonly [string, number, string]> = [
          [`{"model": "gpt-4o", "messages": [`, 400, "invalid_json"],
          [`{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_model"],
          [`{"model":"gpt-4o","messages":[]}`, 400, "invalid_messages"],
          [`[1,2,3]`, 400, "invalid_body"],
          [chat("gpt-dead-1"), 502, "upstream_unreachable"],
          [chat("hang"), 504, "upstream_timeout_firstByte"]
        ]
        const ids: Array<string> = []
        for (const [body, status] of expected) {
          const r = yield* post(baseUrl, body)
          assert.strictEqual(r.status, status, body)
          ids.push(idOf(r))
        }
        const rows = yield* Tollgate.awaitRequests(ids)
        const byId = new Map(rows.map((row) => [row.request_id, row]))
        expected.forEach(([body, status, type], i) => assert.deepInclude(byId.get(ids[i]!), { status, error_type: type }, body))

        // Rejected before the request program: no row. Rows are written in the order they are
        // recorded, so once a later request's row is in, theirs would be too.
        const unrecorded = [
          idOf(yield* Effect.promise(() => fetch(`${baseUrl}/nothing/here`))),
          idOf(yield* Effect.promise(() => fetch(`${baseUrl}/chat/completions`))),
          idOf(yield* post(baseUrl, JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(5000) }] })))
        ]
        yield* Tollgate.awaitRequests([idOf(yield* post(baseUrl, `[]`))])
        const sql = yield* SqlClient.SqlClient
        assert.deepStrictEqual(yield* sql`SELECT request_id FROM requests WHERE request_id IN ${sql.in(unrecorded)}`, [])
      }))

    it.effect("healthz, readyz and models answer", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const root = baseUrl.replace(/\/v1$/, "")
        const health = yield* Effect.promise(() => fetch(`${root}/healthz`).then((r) => r.json()))
        assert.deepStrictEqual(health, { status: "ok" })
        const ready = yield* Effect.promise(() => fetch(`${root}/readyz`).then((r) => r.json() as Promise<any>))
        assert.strictEqual(ready.status, "ready")
        const models = yield* Effect.promise(() => fetch(`${baseUrl}/models`).then((r) => r.json() as Promise<any>))
        assert.strictEqual(models.object, "list")
        assert.includeMembers(models.data.map((m: { id: string }) => m.id), ["gpt-4o", "gpt-4o-mini"])
      }))
  })
})

describe("server.apiKeys", () => {
  layer(Tollgate.layer({ server: { apiKeys: ["tg-team-key"] }, providers: { sim: { kind: "mock" } } }), { excludeTestServices: true })((it) => {
    it.effect("without a listed key the answer is 401; with one it is served", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const missing = yield* post(baseUrl, chat("gpt-4o-mini"))
        assert.strictEqual(missing.status, 401)
        assertOpenAiError(missing.body, "invalid_api_key")
        const wrong = yield* post(baseUrl, chat("gpt-4o-mini"), { headers: { authorization: "Bearer nope" } })
        assert.strictEqual(wrong.status, 401)
        const right = yield* post(baseUrl, chat("gpt-4o-mini"), { headers: { authorization: "Bearer tg-team-key" } })
        assert.strictEqual(right.status, 200)
        assert.strictEqual(right.body.choices[0].message.content, "You said: hello")
      }))
  })
})
