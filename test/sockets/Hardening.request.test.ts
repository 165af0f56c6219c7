/**
 * Hardening (issue #29), what a client's request can do, over real sockets: a prompt that would
 * pin the tokenizer, endless model names, output caps that disagree, model names no header can
 * hold, JSON nested past any sane depth, and header values of any size. Each of these failed on
 * the build before the fix (a hang, a 500, a bypassed budget, an unbounded map or row).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

class Upstream extends Effect.Tag("test/HardeningUpstream")<Upstream, MockUpstream.MockUpstream>() {}

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.makeWith({ faulty: false }), (upstream) =>
    Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        cache: { enabled: false, coalesce: false },
        providers: {
          up: { kind: "openai", baseUrl: upstream.url },
          sim: { kind: "mock", reply: "ok" }
        },
        // Input is free and output costs $0.01 a token: a $1 per-request limit allows 100 output tokens.
        pricing: { "gpt-4o-mini": { input: 0, output: 10_000 } },
        budget: { enabled: true, limits: [{ window: "perRequest", usd: 1 }] },
        routes: [
          { name: "sim", match: { model: "sim-*" }, targets: [{ provider: "sim", model: "gpt-4o-mini" }] },
          { name: "mini", match: { model: "gpt-4o-mini" }, targets: [{ provider: "up", model: "gpt-4o-mini" }] },
          { name: "any", match: { model: "*" }, targets: [{ provider: "up" }] }
        ]
      }),
      Layer.succeed(Upstream, upstream)
    ))
)

const post = (url: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })
    const text = await response.text()
    let json: { error?: { message?: string; code?: string; type?: string } } = {}
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON: the assertions below say so
    }
    return { status: response.status, json, text, id: response.headers.get("x-tollgate-request-id") }
  })

const chat = (model: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: "user", content: "hello" }], ...extra })

describe("hardening: what a client's request can do", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a 500 KB prompt of one letter is answered, and /healthz is answered beside it (the tokenizer is bounded)", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const body = JSON.stringify({ model: "sim-big", max_tokens: 5, messages: [{ role: "user", content: "a".repeat(500_000) }] })
        // The simulated provider counts the prompt's tokens, so the count runs on this request.
        const [big, health] = yield* Effect.all([
          post(`${baseUrl}/chat/completions`, body),
          Effect.promise(() => fetch(baseUrl.replace(/\/v1$/, "/healthz")).then((r) => r.status))
        ], { concurrency: 2 })
        assert.strictEqual(big.status, 200, big.text.slice(0, 300))
        assert.strictEqual(health, 200)
        const counted = yield* post(
          `${baseUrl}/messages/count_tokens`,
          JSON.stringify({ model: "sim-big", messages: [{ role: "user", content: " ".repeat(1_000_000) }] })
        )
        assert.strictEqual(counted.status, 200, counted.text.slice(0, 300))
      }), { timeout: 30_000 })

    it.effect("the larger of max_tokens and max_completion_tokens is reserved: a 1-token cap beside a 500-token one cannot slip past a budget", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const small = yield* post(`${baseUrl}/chat/completions`, chat("sim-budget", { max_tokens: 50 }))
        assert.strictEqual(small.status, 200, small.text)
        const both = yield* post(`${baseUrl}/chat/completions`, chat("sim-budget", { max_completion_tokens: 1, max_tokens: 500 }))
        assert.strictEqual(both.status, 429, both.text)
        assert.strictEqual(both.json.error?.type, "budget_exceeded")
        const anthropic = yield* post(
          `${baseUrl}/messages`,
          JSON.stringify({ model: "sim-budget", max_tokens: 500, max_completion_tokens: 1, messages: [{ role: "user", content: "hi" }] })
        )
        assert.strictEqual(anthropic.status, 429, anthropic.text)
      }))

    it.effect("model names outside printable ASCII, with CR/LF or too long: a 400 in the client's dialect, nothing sent upstream", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const before = upstream.received.length
        for (const model of ["gpt-4o\r\nx-injected: 1", "模型", "model\u0000", "m".repeat(10_000)]) {
          const openai = yield* post(`${baseUrl}/chat/completions`, chat(model))
          assert.strictEqual(openai.status, 400, openai.text)
          assert.strictEqual(openai.json.error?.code, "invalid_model")
          const anthropic = yield* post(`${baseUrl}/messages`, JSON.stringify({ model, max_tokens: 5, messages: [{ role: "user", content: "hi" }] }))
          assert.strictEqual(anthropic.status, 400, anthropic.text)
          assert.include(anthropic.text, "\"type\":\"invalid_request_error\"")
        }
        assert.strictEqual(upstream.received.length, before, "nothing reached the provider")
      }))

    it.effect("JSON nested 100,000 deep: a 400 naming the limit, not a stack overflow", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const deep = "[".repeat(100_000) + "]".repeat(100_000)
        for (const [path, body] of [
          ["chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${deep}}]}`],
          ["messages", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":${deep}}]}]}`],
          ["chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":${deep}}`]
        ] as const) {
          const response = yield* post(`${baseUrl}/${path}`, body)
          assert.strictEqual(response.status, 400, response.text.slice(0, 300))
          assert.include(response.text, "128 levels")
        }
      }))

    it.effect("thousands of distinct model names: /readyz lists the configured targets only", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        yield* Effect.forEach(
          Array.from({ length: 1_200 }, (_, i) => i),
          (i) => post(`${baseUrl}/chat/completions`, chat(`client-model-${i}`, { max_tokens: 1 })),
          { concurrency: 32, discard: true }
        )
        const ready = yield* Effect.promise(() =>
          fetch(baseUrl.replace(/\/v1$/, "/readyz")).then((r) => r.json() as Promise<{ targets: Array<{ target: string }> }>)
        )
        assert.deepStrictEqual(ready.targets.map((t) => t.target).sort(), ["sim/gpt-4o-mini", "up/gpt-4o-mini"])
      }), { timeout: 60_000 })

    it.effect("project and session headers past 128 characters are refused; a long user agent is clipped in the ledger", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const project = yield* post(`${baseUrl}/chat/completions`, chat("sim-labels", { max_tokens: 1 }), { "x-tollgate-project": "p".repeat(10_000) })
        assert.strictEqual(project.status, 400, project.text)
        assert.strictEqual(project.json.error?.code, "invalid_header")
        const session = yield* post(`${baseUrl}/chat/completions`, chat("sim-labels", { max_tokens: 1 }), { "x-tollgate-session": "s".repeat(129) })
        assert.strictEqual(session.status, 400, session.text)
        const fine = yield* post(`${baseUrl}/chat/completions`, chat("sim-labels", { max_tokens: 1 }), {
          "x-tollgate-project": "p".repeat(128),
          "user-agent": "u".repeat(10_000)
        })
        assert.strictEqual(fine.status, 200, fine.text)
        const rows = yield* Tollgate.awaitRequests([project.id!, fine.id!])
        const byId = new Map(rows.map((row) => [row.request_id, row]))
        assert.strictEqual(String(byId.get(fine.id!)!.user_agent).length, 256)
        assert.strictEqual(String(byId.get(fine.id!)!.project).length, 128)
        assert.strictEqual(String(byId.get(project.id!)!.project).length, 256, "a refused request's row keeps a clipped name")
      }))
  })
})
