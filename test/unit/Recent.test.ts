/** The recent-requests ring behind `GET /admin/recent`: bounded, newest first, metadata only. */
import { assert, describe, it } from "@effect/vitest"
import * as Recent from "../../src/Admin/Recent.js"
import { sampleEvent } from "../support/Events.js"

describe("Recent", () => {
  it("keeps the last rows, newest first, and drops the oldest when full", () => {
    const recent = Recent.make(3)
    assert.deepStrictEqual(recent.latest(10), [])
    for (let i = 0; i < 2; i++) recent.push(sampleEvent(i))
    assert.deepStrictEqual(recent.latest(10).map((r) => r.requestId), ["req_1", "req_0"])
    for (let i = 2; i < 7; i++) recent.push(sampleEvent(i))
    assert.deepStrictEqual(recent.latest(10).map((r) => r.requestId), ["req_6", "req_5", "req_4"])
    assert.deepStrictEqual(recent.latest(2).map((r) => r.requestId), ["req_6", "req_5"])
    assert.deepStrictEqual(recent.latest(0), [])
  })

  it("shows metadata only: no client hash, user agent, project or session", () => {
    const recent = Recent.make(2)
    recent.push({ ...sampleEvent(1), clientHash: "abc123", project: "p", session: "s", servedModel: null, costUsd: null })
    const [entry] = recent.latest(1)
    assert.deepStrictEqual(entry, {
      time: new Date(1_750_000_000_001).toISOString(),
      requestId: "req_1",
      endpoint: "/v1/chat/completions",
      model: "gpt-4o-mini",
      provider: "openai",
      route: null,
      status: 200,
      errorType: null,
      stream: false,
      inputTokens: 100,
      outputTokens: 20,
      costUsd: null,
      latencyMs: 12.5,
      ttfbMs: 3.3,
      cache: null,
      attempts: 1,
      failover: false,
      aborted: false
    })
    assert.notInclude(JSON.stringify(entry), "abc123")
  })

  it("reads ?limit= from 1 to the capacity, 50 by default", () => {
    assert.strictEqual(Recent.limitOf("/admin/recent", 200), 50)
    assert.strictEqual(Recent.limitOf("/admin/recent", 20), 20)
    assert.strictEqual(Recent.limitOf("/admin/recent?limit=7", 200), 7)
    assert.strictEqual(Recent.limitOf("/admin/recent?limit=200", 200), 200)
    for (const bad of ["0", "201", "-1", "1.5", "ten", ""]) {
      const problem = Recent.limitOf(`/admin/recent?limit=${bad}`, 200)
      assert.isObject(problem, bad)
      assert.strictEqual((problem as { code: string }).code, "invalid_limit")
    }
  })
})
