/**
 * Budget alerts: thresholds once per window each, stored in SQLite, delivered to a real local
 * webhook receiver with a retry after a 500, without delaying the request that raised them.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Queue, SubscriptionRef, TestClock } from "effect"
import * as Budget from "../../src/Budget.js"
import { alertRows, awaitCondition, budgetLayer, receiver, request, spend } from "../support/Budget.js"

describe("threshold alerts", () => {
  it.effect("fire once per window per threshold, and again in the next window", () =>
    // The clock starts an hour before midnight, before the layer's background fibers exist.
    Effect.zipRight(TestClock.setTime(Date.UTC(2025, 0, 1, 23)), Effect.gen(function*() {
      const budget = yield* Budget.Budget
      const settleAt = (usd: number) => Effect.flatMap(budget.admit(request({ maxOutputTokens: usd * 100_000 })), (a) => a.settle(usd))
      yield* settleAt(0.6) // 60%: 50
      yield* settleAt(0.1) // 70%: nothing new
      yield* settleAt(0.15) // 85%: 80
      yield* settleAt(0.01) // 86%: nothing new
      const first = yield* alertRows
      assert.deepStrictEqual(first.map((r) => [r.kind, r.threshold]), [["threshold", 50], ["threshold", 80]])
      yield* TestClock.adjust("1 hour")
      yield* settleAt(0.55)
      const all = yield* alertRows
      assert.deepStrictEqual(all.map((r) => r.threshold), [50, 80, 50])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, limits: [{ window: "daily", usd: 1 }], refreshInterval: "1h" },
      alerts: { thresholds: [50, 80] }
    })))))

  it.effect("a blocked request raises one breach alert per window", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend()
      for (let i = 0; i < 3; i++) yield* Effect.either(budget.admit(request()))
      const rows = yield* alertRows
      assert.deepStrictEqual(rows.map((r) => r.kind), ["threshold", "threshold", "threshold", "breach"])
    }).pipe(Effect.provide(budgetLayer({ budget: { enabled: true, limits: [{ window: "daily", usd: 0.01 }] } }))))
})

describe("webhook", () => {
  it.scoped("delivered to a local receiver, retried after a 500, never delaying the request", () =>
    Effect.gen(function*() {
      const hook = yield* receiver
      yield* Effect.gen(function*() {
        const budget = yield* Budget.Budget
        const alerts = yield* Budget.Alerts
        // The receiver holds its answer: the request settles (and raises the alert) regardless.
        const admission = yield* budget.admit(request())
        yield* admission.settle(0.6)
        yield* Deferred.await(hook.firstArrived)
        assert.strictEqual(hook.bodies.length, 1)
        const payload = JSON.parse(hook.bodies[0]!)
        assert.strictEqual(payload.type, "tollgate.budget.alert")
        assert.include(payload.alert.message, "past the 50% threshold")
        // Answer 500; the retry waits 1 s on the clock.
        yield* Queue.offer(hook.answers, 500)
        yield* awaitCondition(Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length > 0 && hook.bodies.length === 1))
        yield* Queue.offer(hook.answers, 200)
        yield* TestClock.adjust("999 millis")
        assert.strictEqual(hook.bodies.length, 1)
        yield* TestClock.adjust("1 millis")
        yield* awaitCondition(Effect.map(SubscriptionRef.get(alerts.delivered), (n) => n === 1))
        assert.strictEqual(hook.bodies.length, 2)
        const rows = yield* alertRows
        yield* awaitCondition(Effect.map(alertRows, (rs) => rs[0]?.delivered_at !== null))
        assert.strictEqual((yield* alertRows)[0]!.attempts, 2)
        assert.strictEqual(rows.length, 1)
      }).pipe(Effect.provide(budgetLayer({
        budget: { enabled: true, limits: [{ window: "daily", usd: 1 }] },
        alerts: { thresholds: [50], webhookUrl: hook.url, retry: { attempts: 3, baseDelay: "1s" } }
      })))
    }))
})
