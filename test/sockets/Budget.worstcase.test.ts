/**
 * Issue #23's acceptance tests, over real sockets with the official `openai` SDK: a budget holds
 * whatever model serves. 200 requests at once against a $3 daily limit (one project each), on a
 * route that fails over to a pricier model, a cascade that escalates, and a weighted route over
 * models of different prices, as JSON and as streams: the ledger's spend is at or under the limit
 * every time. Unpriced models under a budget are refused, or booked at the fallback price.
 *
 * Every answer of the mock provider has 1,200 input and 300 output tokens; input is free, so an
 * answer costs 300 output tokens: $0.03 on "cheap", $0.30 on "pricey". `max_tokens: 300` makes the
 * reservation exactly an answer's cost.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import type * as Config from "../../src/Config.js"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const LIMIT = 3
const N = 200

const Env = (extra: Partial<Config.FileConfigInput>) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      // "flaky" answers the model "rate-limited" with a 429; "steady" answers everything.
      const flaky = yield* MockUpstream.makeWith({ faulty: true })
      const steady = yield* MockUpstream.makeWith({ faulty: false })
      return Tollgate.layer({
        retry: { attempts: 0 },
        // The breaker stays closed, so every failover request tries the cheap target first.
        circuit: { failureThreshold: 1_000_000 },
        cache: { enabled: false, coalesce: false },
        providers: {
          flaky: { kind: "openai", baseUrl: flaky.url },
          steady: { kind: "openai", baseUrl: steady.url }
        },
        pricing: {
          "rate-limited": { input: 0, output: 100 },
          cheap: { input: 0, output: 100 },
          pricey: { input: 0, output: 1_000 }
        },
        routes: [
          {
            name: "failover",
            match: { model: "failover" },
            targets: [{ provider: "flaky", model: "rate-limited" }, { provider: "steady", model: "pricey" }]
          },
          {
            name: "ladder",
            match: { model: "ladder" },
            cascade: { targets: [{ provider: "steady", model: "cheap" }, { provider: "steady", model: "pricey" }], signals: { uncertainty: ["not sure"] } }
          },
          {
            name: "weighted",
            match: { model: "weighted" },
            targets: [{ provider: "steady", model: "cheap", weight: 1 }, { provider: "steady", model: "pricey", weight: 1 }]
          },
          { name: "any", match: { model: "*" }, targets: [{ provider: "steady" }] }
        ],
        budget: { enabled: true, limits: [{ scope: "project", window: "daily", usd: LIMIT }] },
        ...extra
      })
    })
  )

const client = (baseURL: string, project: string) =>
  new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, defaultHeaders: { "x-tollgate-project": project } })

/** N requests at once; each resolves to its request id and status (a refusal is an APIError). */
const burst = (baseURL: string, project: string, model: string, stream: boolean) =>
  Effect.forEach(
    Array.from({ length: N }, (_, i) => i),
    (i) =>
      Effect.promise(async () => {
        const openai = client(baseURL, project)
        // The mock echoes the prompt: "I'm not sure." makes the cascade escalate.
        const params = { model, max_tokens: 300, messages: [{ role: "user" as const, content: `I'm not sure. (${i})` }] }
        try {
          if (stream) {
            const { data, response } = await openai.chat.completions.create({ ...params, stream: true }).withResponse()
            for await (const _ of data) {
              // drained: the row is booked when the stream ends
            }
            return { status: response.status, id: response.headers.get("x-tollgate-request-id")!, model: response.headers.get("x-tollgate-model") }
          }
          const { response } = await openai.chat.completions.create(params).withResponse()
          return { status: response.status, id: response.headers.get("x-tollgate-request-id")!, model: response.headers.get("x-tollgate-model") }
        } catch (error) {
          const e = error as { status?: number; headers?: Headers; error?: { type?: string } }
          return { status: e.status ?? 0, id: e.headers?.get("x-tollgate-request-id") ?? "", model: null, type: e.error?.type }
        }
      }),
    { concurrency: "unbounded" }
  )

describe("budgets hold whatever model serves (200 at once, $3 a day per project)", () => {
  layer(Env({}), { excludeTestServices: true, timeout: 120_000 })((it) => {
    for (const stream of [false, true]) {
      for (const [model, served] of [["failover", "pricey"], ["ladder", "pricey"], ["weighted", null]] as const) {
        it.effect(`${model}${stream ? ", streamed" : ""}: spend at or under the limit, the rest refused`, () =>
          Effect.gen(function*() {
            const { baseUrl } = yield* Tollgate.TestInfo
            const project = `${model}-${stream ? "stream" : "json"}`
            const results = yield* burst(baseUrl, project, model, stream)
            const ok = results.filter((r) => r.status === 200)
            const refused = results.filter((r) => r.status === 429)
            assert.strictEqual(ok.length + refused.length, N, JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 429).slice(0, 3)))
            assert.isAbove(ok.length, 0)
            if (served !== null && !(stream && model === "ladder")) assert.isTrue(ok.every((r) => r.model === served))
            const rows = yield* Tollgate.awaitRequests(results.map((r) => r.id))
            const spent = rows.filter((r) => r.project === project).reduce((sum, r) => sum + ((r.cost_usd as number | null) ?? 0), 0)
            assert.isAtMost(spent, LIMIT + 1e-9, `${project} spent ${spent}`)
            assert.isAbove(spent, 0)
          }), { timeout: 120_000 })
      }
    }

    it.effect("an unpriced model under a limit is refused with the model's name and how to price it; without a limit it is served", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const refused = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-tollgate-project": "unpriced" },
            body: JSON.stringify({ model: "unknown-model-x", messages: [{ role: "user", content: "hi" }] })
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string; message: string } } }))
        )
        assert.strictEqual(refused.status, 400)
        assert.strictEqual(refused.body.error.code, "unpriced_model")
        assert.include(refused.body.error.message, "unknown-model-x")
        assert.include(refused.body.error.message, "pricing:")
        const free = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "unknown-model-x", messages: [{ role: "user", content: "hi" }] })
          }).then((r) => r.status)
        )
        assert.strictEqual(free, 200, "no limit applies without a project")
      }))
  })
})

describe("budget.unpriced: estimate", () => {
  layer(Env({ budget: { enabled: true, unpriced: "estimate", unpricedPrice: { input: 0, output: 1_000 }, limits: [{ window: "daily", usd: LIMIT }] } }), {
    excludeTestServices: true
  })((it) => {
    it.effect("an unpriced model is reserved and booked at the fallback price, its row marked priced = 0", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const results = yield* burst(baseUrl, "estimate", "unknown-model-x", false)
        const ok = results.filter((r) => r.status === 200)
        assert.strictEqual(ok.length, 10, "$0.30 each at the fallback price against $3")
        const rows = yield* Tollgate.awaitRequests(ok.map((r) => r.id))
        for (const row of rows) {
          assert.closeTo(row.cost_usd as number, 0.3, 1e-12)
          assert.strictEqual(row.priced, 0)
        }
      }), { timeout: 120_000 })
  })
})

describe("anomaly rules see the dearest model a request may reach", () => {
  layer(Env({ budget: { enabled: true, anomalies: { tokenExplosion: { maxUsd: 0.1, action: "block" } } } }), { excludeTestServices: true })((it) => {
    it.effect("token explosion: a route that may fail over to a pricier model is judged at that model's price", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const ask = (model: string) =>
          Effect.promise(() =>
            fetch(`${baseUrl}/chat/completions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ model, max_tokens: 300, messages: [{ role: "user", content: "hi" }] })
            }).then(async (r) => ({ status: r.status, body: await r.text() }))
          )
        // $0.03 at most on "cheap" alone: under the rule's $0.10.
        assert.strictEqual((yield* ask("cheap")).status, 200)
        // The failover route starts on a $0.03 model but may end on a $0.30 one.
        const failover = yield* ask("failover")
        assert.strictEqual(failover.status, 429, failover.body)
        assert.include(failover.body, "tokenExplosion")
      }))
  })
})
