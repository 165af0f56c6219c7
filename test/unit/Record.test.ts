/**
 * The ledger row of a request: a cascade's cost is the sum of its steps, and unpriced (null, never
 * a partial sum) as soon as any step with tokens has no price.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Usage } from "../../src/Domain/Usage.js"
import { RequestRecord } from "../../src/Proxy/Record.js"

const usage: Usage = { inputTokens: 1000, outputTokens: 100, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" }
const prices: Record<string, number> = { cheap: 0.001, big: 0.01 }

const record = () =>
  new RequestRecord({
    ts: 0,
    requestId: "req_1",
    endpoint: "/v1/chat/completions",
    headers: {} as never,
    clientHash: null,
    elapsedMs: () => 1,
    costOf: (model) => prices[model] ?? null
  })

const answered = (model: string) => ({ status: 200, errorType: null, usage, servedModel: model, ttfbMs: 1, aborted: false })

describe("RequestRecord", () => {
  it("a cascade's row costs every step", () => {
    const r = record()
    r.cascadeSteps.push("cheap:uncertainty:0.001")
    r.cascadeCostUsd += 0.001
    const row = r.event(answered("big"))
    assert.closeTo(row.costUsd!, 0.011, 1e-12)
    assert.isTrue(row.priced)
    assert.strictEqual(row.cascade, "cheap:uncertainty:0.001")
  })

  it("an unpriced earlier step makes the whole row unpriced, even when the last step has a price", () => {
    const r = record()
    r.cascadeSteps.push("mystery:refusal:unpriced")
    r.cascadeUnpriced = true
    const row = r.event(answered("big"))
    assert.isNull(row.costUsd)
    assert.isFalse(row.priced)
  })

  it("an unpriced last step makes the row unpriced", () => {
    const r = record()
    r.cascadeSteps.push("cheap:truncated:0.001")
    r.cascadeCostUsd += 0.001
    assert.isNull(r.event(answered("mystery")).costUsd)
  })
})
