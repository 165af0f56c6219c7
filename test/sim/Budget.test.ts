/**
 * Budget reservations on TestClock: concurrency at the limit, settle/release, calendar windows in
 * a non-UTC zone, downgrades, restart from the ledger, and the HTTP shape of a refusal.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, TestClock } from "effect"
import * as Budget from "../../src/Budget.js"
import * as Control from "../../src/Budget/Control.js"
import { toResponse } from "../../src/Http/Errors.js"
import { budgetLayer, request, spend } from "../support/Budget.js"
import { tempDbPath } from "../support/Tollgate.js"

const daily = (usd: number, extra: Record<string, unknown> = {}) => ({ budget: { enabled: true, limits: [{ window: "daily" as const, usd }], ...extra } })

const status = Effect.flatMap(Budget.Budget, (b) => b.status)
const globalLine = (window: string) => Effect.map(status, (lines) => lines.find((l) => l.scope === "global" && l.window === window)!)

describe("reservations", () => {
  it.effect("200 concurrent requests against a $1 daily limit: settled spend <= $1, the rest refused with Retry-After", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      // Every request reserves $0.01, holds it for a second (in flight), then settles at that cost.
      const fiber = yield* Effect.forEach(
        Array.from({ length: 200 }, () => request()),
        (r) =>
          budget.admit(r).pipe(
            Effect.tap(() => Effect.sleep("1 second")),
            Effect.tap((a) => a.settle(a.reservedUsd)),
            Effect.either
          ),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)
      const admitted = results.filter(Either.isRight)
      const refused = results.filter(Either.isLeft).map((r) => r.left)
      assert.strictEqual(admitted.length, 100)
      assert.strictEqual(refused.length, 100)
      for (const error of refused) {
        assert.strictEqual(error._tag, "BudgetExceeded")
        if (error._tag === "BudgetExceeded") assert.strictEqual(error.retryAfterSeconds, 86_400 - 0)
      }
      const line = yield* globalLine("daily")
      assert.isAtMost(line.spentUsd, 1 + 1e-9)
      assert.closeTo(line.spentUsd, 1, 1e-9)
      assert.strictEqual(line.reservedUsd, 0)
    }).pipe(Effect.provide(budgetLayer(daily(1)))))

  it.effect("far from the limit the byte bound is reserved without tokenizing; near it the count is exact", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      let counted = 0
      // Model "i" costs $1 per 1M input tokens and nothing for output.
      const probe = () => request({
        model: "i",
        maxOutputTokens: 0,
        inputTokensUpperBound: 40_000,
        estimatedInputTokens: () => (counted++, 10_000)
      })
      // $0.04 at the bound against $1 of headroom (under 5%): the bound, no tokenizer.
      const far = yield* budget.admit(probe())
      assert.strictEqual(counted, 0)
      assert.closeTo(far.reservedUsd, 0.04, 1e-12)
      yield* far.settle(0.01)
      // Spend until $0.50 is left: $0.04 is now over 5% of the headroom, so the count is exact.
      yield* spend({ model: "m", maxOutputTokens: 49_000 }) // $0.49
      const near = yield* budget.admit(probe())
      assert.strictEqual(counted, 1)
      assert.closeTo(near.reservedUsd, 0.01, 1e-12)
    }).pipe(Effect.provide(budgetLayer({ ...daily(1), pricing: { i: { input: 1, output: 0 }, m: { input: 0, output: 10 } } }))))

  it.effect("settling below the reservation frees the difference for the next request", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      const a = yield* budget.admit(request())
      const b = yield* budget.admit(request())
      assert.strictEqual(a.reservedUsd, 0.01)
      // $0.02 is fully reserved: a $0.008 request does not fit...
      const refused = yield* Effect.either(budget.admit(request({ maxOutputTokens: 800 })))
      assert.isTrue(Either.isLeft(refused))
      // ...until `a` turns out to have cost $0.002.
      yield* a.settle(0.002)
      yield* a.settle(0.002) // idempotent
      const c = yield* budget.admit(request({ maxOutputTokens: 800 }))
      const line = yield* globalLine("daily")
      assert.closeTo(line.spentUsd, 0.002, 1e-12)
      assert.closeTo(line.reservedUsd, 0.018, 1e-12)
      yield* b.release
      yield* c.settle(null) // unpriced: counted as 0
      assert.deepInclude(yield* globalLine("daily"), { reservedUsd: 0 })
    }).pipe(Effect.provide(budgetLayer(daily(0.02)))))

  it.effect("a request that fails or is interrupted releases its reservation", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      const call = (work: Effect.Effect<void, string>) =>
        Effect.acquireUseRelease(
          budget.admit(request()),
          () => work,
          (admission, exit) => Exit.isSuccess(exit) ? admission.settle(admission.reservedUsd) : admission.release
        )
      const failed = yield* Effect.either(call(Effect.fail("upstream said no")))
      assert.isTrue(Either.isLeft(failed))
      assert.deepInclude(yield* globalLine("daily"), { spentUsd: 0, reservedUsd: 0 })

      const fiber = yield* Effect.fork(call(Effect.never))
      yield* TestClock.adjust("1 second")
      assert.deepInclude(yield* globalLine("daily"), { reservedUsd: 0.01 })
      yield* Fiber.interrupt(fiber)
      assert.deepInclude(yield* globalLine("daily"), { spentUsd: 0, reservedUsd: 0 })
      // The whole limit is usable again.
      yield* call(Effect.void)
      assert.deepInclude(yield* globalLine("daily"), { spentUsd: 0.01, reservedUsd: 0 })
    }).pipe(Effect.provide(budgetLayer(daily(0.01)))))

  it.effect("limits per project, per client and per session count separately; a keyed limit replaces the generic one", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend({ project: "a" })
      yield* spend({ project: "b" })
      const again = yield* Effect.either(budget.admit(request({ project: "a" })))
      assert.isTrue(Either.isLeft(again) && again.left._tag === "BudgetExceeded" && again.left.scope === `project "a"`)
      // "big" has its own, larger limit.
      yield* spend({ project: "big" })
      yield* spend({ project: "big" })
      // The session limit counts the session's whole spend, whatever the project.
      yield* spend({ session: "s1", project: "c" })
      const session = yield* Effect.either(budget.admit(request({ session: "s1", project: "d" })))
      assert.isTrue(Either.isLeft(session) && session.left._tag === "BudgetExceeded" && session.left.window === "session")
      if (Either.isLeft(session) && session.left._tag === "BudgetExceeded") assert.isNull(session.left.retryAfterSeconds)
      // Each client has its own count: one client at its limit does not stop another.
      yield* spend({ clientHash: "alice" })
      const alice = yield* Effect.either(budget.admit(request({ clientHash: "alice" })))
      assert.isTrue(Either.isLeft(alice) && alice.left._tag === "BudgetExceeded" && alice.left.scope === "client alice")
      yield* spend({ clientHash: "bob" })
      const bob = yield* Effect.either(budget.admit(request({ clientHash: "bob" })))
      assert.isTrue(Either.isLeft(bob) && bob.left._tag === "BudgetExceeded" && bob.left.scope === "client bob")
      const lines = yield* status
      const clientLine = (key: string) => lines.find((l) => l.scope === "client" && l.key === key)
      assert.deepInclude(clientLine("alice"), { spentUsd: 0.01, reservedUsd: 0 })
      assert.deepInclude(clientLine("bob"), { spentUsd: 0.01, reservedUsd: 0 })
      // A request without a project or a client is not counted against any project or client limit.
      yield* spend({})
      yield* spend({})
    }).pipe(Effect.provide(budgetLayer({
      budget: {
        enabled: true,
        limits: [
          { scope: "project", window: "daily", usd: 0.01 },
          { scope: "client", window: "daily", usd: 0.01 },
          { scope: "project", key: "big", window: "daily", usd: 0.02 },
          { scope: "session", window: "session", usd: 0.01 }
        ]
      }
    }))))

  it.effect("a per-request limit refuses one expensive call, without Retry-After", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend({ maxOutputTokens: 500 })
      const refused = yield* Effect.flip(budget.admit(request({ maxOutputTokens: 2000 })))
      assert.strictEqual(refused._tag, "BudgetExceeded")
      if (refused._tag === "BudgetExceeded") {
        assert.strictEqual(refused.window, "perRequest")
        assert.isNull(refused.retryAfterSeconds)
      }
    }).pipe(Effect.provide(budgetLayer({ budget: { enabled: true, limits: [{ window: "perRequest", usd: 0.01 }] } }))))
})

/**
 * Moves the TestClock before the layer (and its repeating background fibers) exists: moving it
 * later would replay every minute of the prune schedule since 1970.
 */
const at = <A, E, R>(time: number, program: Effect.Effect<A, E, R>) => Effect.zipRight(TestClock.setTime(time), program)

describe("calendar windows", () => {
  it.effect("the daily window rolls over at midnight Europe/Paris, not UTC", () =>
    // 22:59:00 UTC on 10 March 2025 is 23:59:00 in Paris (CET, UTC+1).
    at(Date.UTC(2025, 2, 10, 22, 59, 0), Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend()
      const refused = yield* Effect.flip(budget.admit(request()))
      assert.strictEqual(refused._tag === "BudgetExceeded" ? refused.retryAfterSeconds : -1, 60)
      assert.include(refused.message, "2025-03-10T23:00:00.000Z")
      yield* TestClock.adjust("59 seconds")
      assert.isTrue(Either.isLeft(yield* Effect.either(budget.admit(request()))))
      yield* TestClock.adjust("1 second") // 00:00 Paris
      const admitted = yield* budget.admit(request())
      yield* admitted.settle(admitted.reservedUsd)
      const line = yield* globalLine("daily")
      assert.strictEqual(line.resetsAt, Date.UTC(2025, 2, 11, 23, 0, 0))
      assert.closeTo(line.spentUsd, 0.01, 1e-12)
    }).pipe(Effect.provide(budgetLayer(daily(0.01, { timezone: "Europe/Paris" }))))))

  it.effect("the hourly window rolls over on the local hour (Asia/Kolkata hours start at :30 UTC)", () =>
    at(Date.UTC(2025, 5, 1, 10, 29, 0), Effect.gen(function*() { // 15:59 in Kolkata (UTC+5:30)
      const budget = yield* Budget.Budget
      yield* spend()
      const refused = yield* Effect.flip(budget.admit(request()))
      assert.strictEqual(refused._tag === "BudgetExceeded" ? refused.retryAfterSeconds : -1, 60)
      yield* TestClock.adjust("1 minute")
      yield* spend()
      assert.strictEqual((yield* globalLine("hourly")).resetsAt, Date.UTC(2025, 5, 1, 11, 30, 0))
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, timezone: "Asia/Kolkata", limits: [{ window: "hourly", usd: 0.01 }] }
    })))))
})

describe("actions", () => {
  it.effect("onBreach downgrade serves the mapped cheaper model and says so", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      const first = yield* spend({ model: "gpt-5" })
      assert.strictEqual(first.model, "gpt-5")
      assert.deepStrictEqual(first.headers, {})
      const second = yield* budget.admit(request({ model: "gpt-5" }))
      assert.strictEqual(second.model, "gpt-5-mini")
      assert.strictEqual(second.downgradedFrom, "gpt-5")
      assert.match(second.headers["x-tollgate-downgraded"]!, /^gpt-5 -> gpt-5-mini \(daily budget for global reached\)$/)
      assert.closeTo(second.reservedUsd, 0.002, 1e-12)
    }).pipe(Effect.provide(budgetLayer(daily(0.012, { onBreach: "downgrade" })))))

  it.effect("auto-downgrade at thresholdPercent, before the limit; a custom mapping wins over the built-in one", () =>
    Effect.gen(function*() {
      const first = yield* spend({ model: "m" })
      assert.strictEqual(first.model, "m") // 33% of $0.03 with this request
      const second = yield* spend({ model: "m" })
      assert.strictEqual(second.model, "m-small") // 0.01 + 0.01 = 66% >= 50%
      assert.include(second.headers["x-tollgate-downgraded"]!, "past 50%")
    }).pipe(Effect.provide(budgetLayer(daily(0.03, { downgrade: { thresholdPercent: 50, mapping: { m: "m-small" } } })))))

  it.effect("warn serves past the limit with a warning header; alert serves without one", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend({ project: "w" })
      const warned = yield* budget.admit(request({ project: "w" }))
      assert.include(warned.headers["x-tollgate-budget-warning"]!, `project "w"`)
      yield* spend({ project: "quiet" })
      const alerted = yield* budget.admit(request({ project: "quiet" }))
      assert.deepStrictEqual(alerted.headers, {})
    }).pipe(Effect.provide(budgetLayer({
      budget: {
        enabled: true,
        limits: [
          { scope: "project", key: "w", window: "daily", usd: 0.01, onBreach: "warn" },
          { scope: "project", key: "quiet", window: "daily", usd: 0.01, onBreach: "alert" }
        ]
      }
    }))))

  it("a refusal is a 429 budget_exceeded naming limit and scope, with Retry-After", () => {
    const response = toResponse(
      new Budget.BudgetExceeded({
        scope: `project "x"`,
        window: "daily",
        limitUsd: 1,
        spentUsd: 1,
        retryAfterSeconds: 3600,
        message: "Budget exceeded: the daily limit of $1.00 for project \"x\" ..."
      })
    )
    assert.strictEqual(response.status, 429)
    assert.strictEqual(response.headers["retry-after"], "3600")
    const body = JSON.parse(new TextDecoder().decode((response.body as { body: Uint8Array }).body))
    assert.deepStrictEqual(body.error.type, "budget_exceeded")
    assert.deepStrictEqual(body.error.code, "budget_daily")
    assert.include(body.error.message, `project "x"`)
  })
})

describe("budgets off", () => {
  it.effect("admit passes the model through, the same admission object each time", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      const a = yield* budget.admit(request({ model: "gpt-4o" }))
      const b = yield* budget.admit(request({ model: "gpt-4o" }))
      assert.strictEqual(a, b)
      assert.deepInclude(a, { model: "gpt-4o", downgradedFrom: null, reservedUsd: 0 })
    }).pipe(Effect.provide(budgetLayer({}))))
})

describe("state across restarts", () => {
  const insertRow = (ts: number, cost: number, project: string | null) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`INSERT INTO requests (ts, request_id, endpoint, stream, status, attempts, failover, priced, aborted, cost_usd, project)
          VALUES (${ts}, ${`r${ts}`}, '/v1/chat/completions', 0, 200, 1, 0, 1, 0, ${cost}, ${project})`)

  it.effect("spend in the open window is the same after the layer is rebuilt on the same file; reservations do not leak", () =>
    Effect.gen(function*() {
      const dbPath = tempDbPath()
      const config = { budget: { enabled: true, limits: [{ window: "daily" as const, usd: 1 }, { scope: "project" as const, window: "monthly" as const, usd: 5 }] } }
      yield* TestClock.setTime(Date.UTC(2025, 5, 2, 12))
      const before = yield* Effect.gen(function*() {
        const budget = yield* Budget.Budget
        for (const project of ["a", "a", "b"]) {
          const admission = yield* spend({ project })
          // What Telemetry writes for this request: the ledger is the record.
          yield* insertRow(Date.UTC(2025, 5, 2, 12), admission.reservedUsd, project)
        }
        // Yesterday's spend and a crashed request's reservation must not count.
        yield* insertRow(Date.UTC(2025, 4, 31, 12), 0.5, "a")
        yield* budget.admit(request({ project: "a" }))
        return yield* budget.status
      }).pipe(Effect.provide(budgetLayer(config, dbPath)))
      const after = yield* Effect.flatMap(Budget.Budget, (b) => b.status).pipe(Effect.provide(budgetLayer(config, dbPath)))
      const spent = (lines: ReadonlyArray<Budget.LimitStatus>) =>
        lines.map((l) => `${l.scope}:${l.key}:${l.window}:${l.spentUsd.toFixed(4)}`).sort()
      assert.deepStrictEqual(spent(after), spent(before))
      assert.deepStrictEqual(spent(after), ["global:null:daily:0.0300", "project:a:monthly:0.0200", "project:b:monthly:0.0100"])
      assert.isTrue(after.every((l) => l.reservedUsd === 0))
      assert.isTrue(before.some((l) => l.reservedUsd > 0))
    }))

  it.effect("budget set / reset from another process reach the running budget on its refresh", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      yield* spend()
      assert.isTrue(Either.isLeft(yield* Effect.either(budget.admit(request()))))
      yield* Control.setLimit({ scope: "global", key: undefined, window: "daily", usd: 0.02, onBreach: undefined })
      yield* TestClock.adjust("5 seconds")
      yield* spend()
      yield* Control.reset({ scope: null, key: null, window: "daily" })
      yield* budget.refresh
      assert.deepInclude(yield* globalLine("daily"), { spentUsd: 0, limitUsd: 0.02 })
    }).pipe(Effect.provide(budgetLayer(daily(0.01)))))
})

// Keep Layer referenced for readers looking for how layers are built in these tests.
void Layer.empty
