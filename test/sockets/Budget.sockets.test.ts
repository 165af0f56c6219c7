/**
 * The acceptance test, through the real listener: 200 requests in flight at once against a
 * $1 daily limit, where a request's real cost equals its reservation (input priced at 0, output
 * at $0.01 per token, `max_tokens: 1`, and the simulated model answers one token). Exactly $1 of
 * requests may pass; the rest get 429 budget_exceeded with Retry-After, and the ledger agrees.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Tollgate from "../support/Tollgate.js"

const N = 200

describe("budget over real sockets", () => {
  layer(Tollgate.layer({
    providers: { sim: { kind: "mock", reply: "ok", latencyMs: 20 } },
    pricing: { "gpt-4o-mini": { input: 0, output: 10_000 } },
    cache: { enabled: false, coalesce: false },
    budget: { enabled: true, limits: [{ window: "daily", usd: 1 }] }
  }), { excludeTestServices: true })((it) => {
    it.effect("200 concurrent requests against $1/day: never more than $1 spent, the rest 429 with Retry-After", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const responses = yield* Effect.forEach(
          Array.from({ length: N }, (_, i) => i),
          (i) =>
            Effect.promise(async () => {
              const response = await fetch(`${baseUrl}/chat/completions`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 1, messages: [{ role: "user", content: `request ${i}` }] })
              })
              const body = (await response.json()) as { error?: { type?: string } }
              return { status: response.status, retryAfter: response.headers.get("retry-after"), id: response.headers.get("x-tollgate-request-id")!, type: body.error?.type }
            }),
          { concurrency: "unbounded" }
        )
        const ok = responses.filter((r) => r.status === 200)
        const refused = responses.filter((r) => r.status === 429)
        assert.strictEqual(ok.length + refused.length, N, "every request is either served or refused")
        assert.strictEqual(ok.length, 100, "exactly $1 of $0.01 requests")
        assert.isTrue(refused.every((r) => r.type === "budget_exceeded" && Number(r.retryAfter) > 0))

        const rows = yield* Tollgate.awaitRequests(responses.map((r) => r.id))
        const spent = rows.reduce((sum, row) => sum + ((row.cost_usd as number | null) ?? 0), 0)
        assert.isAtMost(spent, 1 + 1e-9)
        assert.closeTo(spent, 1, 1e-9)
        assert.strictEqual(rows.filter((row) => row.error_type === "budget_exceeded").length, refused.length)
      }))
  })
})
