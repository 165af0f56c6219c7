/**
 * `GET /v1/models` through the real listener: the union of what the configured providers list
 * (fake OpenAI and Anthropic servers on 127.0.0.1) and tollgate's aliases, in Anthropic's shape
 * when the client sends `anthropic-version`; one model by id; a provider that cannot be listed
 * falls back to its catalogue. And the 404s that say what exists.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Tollgate from "../support/Tollgate.js"

process.env["TOLLGATE_TEST_MODELS_KEY"] = "sk-test-models"

/** A provider's `/models` (and Anthropic's `/v1/models`) on 127.0.0.1; records what it was asked. */
const modelServer = (answer: (url: string) => { status: number; body: unknown }) =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; url: string; seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> }>((resume) => {
      const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = []
      const server = http.createServer((req, res) => {
        seen.push({ url: req.url ?? "", headers: req.headers })
        const { status, body } = answer(req.url ?? "")
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen })))
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
  )

const getJson = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    return { status: response.status, body: (await response.json()) as any }
  })

describe("GET /v1/models", () => {
  it.scopedLive("lists what the providers serve, then tollgate's aliases, in OpenAI's or Anthropic's shape", () =>
    Effect.gen(function*() {
      const openai = yield* modelServer((url) =>
        url === "/v1/models"
          ? { status: 200, body: { object: "list", data: [{ id: "served-a", object: "model", created: 1700000001, owned_by: "acme" }, { id: "served-b", object: "model", created: 1700000002, owned_by: "acme" }] } }
          : { status: 404, body: {} }
      )
      const anthropic = yield* modelServer((url) =>
        url.startsWith("/v1/models")
          ? { status: 200, body: { data: [{ type: "model", id: "claude-test-1", display_name: "Claude Test", created_at: "2025-05-01T00:00:00Z" }], has_more: false } }
          : { status: 404, body: {} }
      )
      const context = yield* Layer.build(Tollgate.layer({
        providers: {
          acme: { kind: "openai", baseUrl: `${openai.url}/v1`, apiKeyEnv: "TOLLGATE_TEST_MODELS_KEY" },
          claude: { kind: "anthropic", baseUrl: anthropic.url, apiKeyEnv: "TOLLGATE_TEST_MODELS_KEY" }
        },
        models: { aliases: { smart: "served-a" } }
      }))
      const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)

      const list = yield* getJson(`${baseUrl}/models`)
      assert.strictEqual(list.status, 200)
      assert.strictEqual(list.body.object, "list")
      const ids = list.body.data.map((m: { id: string }) => m.id)
      assert.deepStrictEqual(ids.slice(0, 3), ["served-a", "served-b", "claude-test-1"])
      assert.include(ids, "smart")
      assert.include(ids, "tollgate:auto")
      assert.deepStrictEqual(list.body.data[0], { id: "served-a", object: "model", created: 1700000001, owned_by: "acme" })
      // The provider's key went with the listing, never the client's.
      assert.strictEqual(openai.seen[0]!.headers.authorization, "Bearer sk-test-models")
      assert.strictEqual(anthropic.seen[0]!.headers["x-api-key"], "sk-test-models")
      assert.isString(anthropic.seen[0]!.headers["anthropic-version"])

      const claudeShape = yield* getJson(`${baseUrl}/models`, { "anthropic-version": "2023-06-01" })
      assert.strictEqual(claudeShape.body.has_more, false)
      assert.strictEqual(claudeShape.body.first_id, "served-a")
      const claude = claudeShape.body.data.find((m: { id: string }) => m.id === "claude-test-1")
      assert.deepStrictEqual(claude, { type: "model", id: "claude-test-1", display_name: "Claude Test", created_at: "2025-05-01T00:00:00.000Z" })

      const one = yield* getJson(`${baseUrl}/models/served-b`)
      assert.deepStrictEqual(one.body, { id: "served-b", object: "model", created: 1700000002, owned_by: "acme" })
      const missing = yield* getJson(`${baseUrl}/models/nope`)
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.body.error.code, "model_not_found")
    }))

  it.scopedLive("a provider that cannot be listed contributes its catalogue; the answer still comes", () =>
    Effect.gen(function*() {
      const failing = yield* modelServer(() => ({ status: 500, body: { error: { message: "down" } } }))
      const context = yield* Layer.build(Tollgate.layer({
        providers: { openai: { kind: "openai", baseUrl: `${failing.url}/v1`, apiKeyEnv: "TOLLGATE_TEST_MODELS_KEY" } }
      }))
      const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)
      const list = yield* getJson(`${baseUrl}/models`)
      assert.strictEqual(list.status, 200)
      assert.isAtLeast(failing.seen.length, 1)
      const ids: Array<string> = list.body.data.map((m: { id: string }) => m.id)
      // OpenAI's priced models, from the price data.
      assert.isTrue(ids.some((id) => id.startsWith("gpt-4o")), ids.slice(0, 10).join(","))
    }))
})

describe("404s that say what exists", () => {
  it.scopedLive("a base URL without /v1, and an unknown path under /v1", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Tollgate.layer({ providers: { sim: { kind: "mock" } } }))
      const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)
      const root = baseUrl.replace(/\/v1$/, "")
      const noV1 = yield* Effect.promise(() => fetch(`${root}/chat/completions`, { method: "POST", body: "{}" }).then(async (r) => ({ status: r.status, body: (await r.json()) as any })))
      assert.strictEqual(noV1.status, 404)
      assert.include(noV1.body.error.message, "Did you mean /v1/chat/completions?")
      const unknown = yield* Effect.promise(() => fetch(`${baseUrl}/nothing`, { method: "POST", body: "{}" }).then(async (r) => ({ status: r.status, body: (await r.json()) as any })))
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.error.code, "unknown_url")
      assert.include(unknown.body.error.message, "POST /v1/chat/completions")
      assert.include(unknown.body.error.message, "POST /v1/messages")
    }))
})
