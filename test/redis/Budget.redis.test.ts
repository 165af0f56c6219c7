/**
 * Shared budgets on a real Redis: two `Budget` services (two replicas, each with its own ledger)
 * on one key prefix. The limit holds across both under concurrency; a dead replica's reservations
 * lapse with their lease; a store that lost its data is seeded again from the ledger; a store that
 * is down refuses (`onStoreDown: block`) or counts locally (`local`); alerts fire once across
 * replicas. Time is TestClock's; Redis is real (`test/support/Redis.ts`).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Exit, Fiber, Layer, Scope, TestClock } from "effect"
import * as Budget from "../../src/Budget.js"
import { toResponse } from "../../src/Http/Errors.js"
import { alertRows, budgetLayer, request } from "../support/Budget.js"
import * as Redis from "../support/Redis.js"

type Replica = Context.Context<Budget.Budget | Budget.Alerts | SqlClient.SqlClient>

const config = (redis: { url: string; keyPrefix: string }, budget: Record<string, unknown>, top: Record<string, unknown> = {}) => ({
  ...top,
  redis,
  budget: { enabled: true, limits: [{ window: "daily" as const, usd: 1 }], reservationLease: "6s", ...budget }
})

/** A replica built in `scope` (closing it is the replica dying: nothing released, nothing renewed). */
const replica = (cfg: ReturnType<typeof config>, scope: Scope.Scope) =>
  Layer.buildWithScope(budgetLayer(cfg), scope) as Effect.Effect<Replica, unknown>

const on = <A, E>(r: Replica, effect: Effect.Effect<A, E, Budget.Budget | Budget.Alerts | SqlClient.SqlClient>) => Effect.provide(effect, r)

let rows = 0
/** The row Telemetry writes for a request that cost `cost` now: the ledger is the record a store is seeded from. */
const ledgerRow = (cost: number) =>
  Effect.flatMap(Effect.all([SqlClient.SqlClient, TestClock.currentTimeMillis]), ([sql, now]) =>
    sql`INSERT INTO requests (ts, request_id, endpoint, stream, status, attempts, failover, priced, aborted, cost_usd)
        VALUES (${now}, ${`r${rows++}`}, '/v1/chat/completions', 0, 200, 1, 0, 1, 0, ${cost})`)

const globalDaily = (r: Replica) =>
  on(r, Effect.flatMap(Budget.Budget, (b) => b.status)).pipe(
    Effect.map((lines) => lines.find((l) => l.scope === "global" && l.window === "daily")!)
  )

const skipped = Redis.unreachable === undefined ? "" : ` (skipped: ${Redis.unreachable})`

describe.skipIf(Redis.unreachable !== undefined)(`shared budgets on Redis${skipped}`, () => {
  it.scoped("two replicas, 200 concurrent requests at a $1 daily limit: 100 admitted across both, settled spend $1", () =>
    Effect.gen(function*() {
      const prefix = yield* Redis.freshPrefix
      const cfg = config({ url: Redis.URL, keyPrefix: prefix }, {})
      const scope = yield* Effect.scope
      const a = yield* replica(cfg, scope)
      const b = yield* replica(cfg, scope)
      // Each request reserves $0.01 and holds it while "in flight" (one TestClock second).
      const fiber = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) =>
          on(
            i % 2 === 0 ? a : b,
            Effect.flatMap(Budget.Budget, (budget) =>
              budget.admit(request()).pipe(
                Effect.tap(() => Effect.sleep("1 second")),
                Effect.tap((admission) => admission.settle(admission.reservedUsd)),
                Effect.either
              ))
          ),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)
      const admitted = results.filter(Either.isRight)
      const refused = results.filter(Either.isLeft).map((r) => r.left)
      assert.strictEqual(admitted.length, 100)
      assert.isTrue(refused.every((e) => e._tag === "BudgetExceeded"))
      // Both replicas admitted some: the limit was shared, not split or doubled.
      assert.isTrue(results.filter((r, i) => i % 2 === 0 && Either.isRight(r)).length > 0)
      assert.isTrue(results.filter((r, i) => i % 2 === 1 && Either.isRight(r)).length > 0)
      for (const r of [a, b]) {
        const line = yield* globalDaily(r)
        assert.closeTo(line.spentUsd, 1, 1e-9)
        assert.strictEqual(line.reservedUsd, 0)
      }
    }))

  it.scoped("a dead replica's reservations lapse with their lease and free the budget; a live one's are renewed", () =>
    Effect.gen(function*() {
      const prefix = yield* Redis.freshPrefix
      const cfg = config({ url: Redis.URL, keyPrefix: prefix }, { limits: [{ window: "daily", usd: 0.02 }] })
      const dying = yield* Scope.make()
      const a = yield* replica(cfg, dying)
      const b = yield* replica(cfg, yield* Effect.scope)
      // a holds half the limit and dies holding it; b holds the other half and lives on.
      yield* on(a, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      const held = yield* on(b, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* Scope.close(dying, Exit.void)
      const full = yield* on(b, Effect.flatMap(Budget.Budget, (budget) => Effect.either(budget.admit(request()))))
      assert.isTrue(Either.isLeft(full) && full.left._tag === "BudgetExceeded")
      // Past the lease (6 s), a's hold is gone; b's own, renewed every 2 s, is not.
      yield* TestClock.adjust("7 seconds")
      const freed = yield* on(b, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      assert.strictEqual(freed.reservedUsd, 0.01)
      const line = yield* globalDaily(b)
      assert.closeTo(line.reservedUsd, 0.02, 1e-12)
      yield* held.settle(0.01)
      yield* freed.settle(0.01)
      assert.deepInclude(yield* globalDaily(b), { spentUsd: 0.02, reservedUsd: 0 })
    }))

  it.scoped("a store that lost its keys is seeded again from the ledger before it admits", () =>
    Effect.gen(function*() {
      const prefix = yield* Redis.freshPrefix
      const cfg = config({ url: Redis.URL, keyPrefix: prefix }, {})
      const a = yield* replica(cfg, yield* Effect.scope)
      // $0.98 spent today, as a's ledger records it.
      yield* on(a, ledgerRow(0.98))
      // The server restarted empty (or someone flushed the prefix).
      yield* Effect.promise(() => Redis.deleteKeys(Redis.URL, prefix))
      const first = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* first.settle(0.01)
      assert.closeTo((yield* globalDaily(a)).spentUsd, 0.99, 1e-9)
      // A replica that starts now reads the seeded store, not its own (empty) ledger.
      const b = yield* replica(cfg, yield* Effect.scope)
      const second = yield* on(b, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* second.settle(0.01)
      const refused = yield* on(b, Effect.flatMap(Budget.Budget, (budget) => Effect.flip(budget.admit(request()))))
      assert.strictEqual(refused._tag, "BudgetExceeded")
    }))

  it.scoped("alerts cross a threshold once across replicas", () =>
    Effect.gen(function*() {
      const prefix = yield* Redis.freshPrefix
      const cfg = config({ url: Redis.URL, keyPrefix: prefix }, { limits: [{ window: "daily", usd: 0.04 }] }, { alerts: { thresholds: [50] } })
      const scope = yield* Effect.scope
      const a = yield* replica(cfg, scope)
      const b = yield* replica(cfg, scope)
      for (const r of [a, b, a, b]) {
        yield* on(r, Effect.flatMap(Budget.Budget, (budget) => Effect.flatMap(budget.admit(request()), (x) => x.settle(0.01))))
      }
      const rows = [...yield* on(a, alertRows), ...yield* on(b, alertRows)]
      assert.deepStrictEqual(rows.map((r) => [r.kind, r.threshold]), [["threshold", 50]])
    }))
})

describe.skipIf(Redis.unreachable !== undefined || Redis.serverBinary === undefined)(
  `shared budgets when the store is down${Redis.serverBinary === undefined ? " (skipped: redis-server is not installed)" : skipped}`, () => {
  it.scoped("onStoreDown block: 503 budget_store_unavailable with Retry-After, nothing held; the store back: served, seeded", () =>
    Effect.gen(function*() {
      const server = yield* Redis.privateServer
      const cfg = config({ url: server.url, keyPrefix: "t:" }, {})
      const a = yield* replica(cfg, yield* Effect.scope)
      const ok = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* ok.settle(0.01)
      yield* on(a, ledgerRow(0.01))
      yield* Effect.promise(() => server.stop())
      const refused = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => Effect.flip(budget.admit(request()))))
      assert.strictEqual(refused._tag, "BudgetStoreUnavailable")
      const response = toResponse(refused)
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers["retry-after"], "5")
      const body = JSON.parse(new TextDecoder().decode((response.body as { body: Uint8Array }).body))
      assert.strictEqual(body.error.code, "budget_store_unavailable")
      assert.deepInclude(yield* globalDaily(a), { reservedUsd: 0 })
      yield* Effect.promise(() => server.start())
      // The client reconnects in the background (real time): admissions succeed once it is back,
      // against a store seeded again from the ledger (the restarted server is empty).
      let back: Budget.Admission | undefined
      for (let i = 0; i < 100 && back === undefined; i++) {
        const tried = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => Effect.either(budget.admit(request()))))
        if (Either.isRight(tried)) back = tried.right
        else {
          assert.strictEqual(tried.left._tag, "BudgetStoreUnavailable")
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
        }
      }
      assert.isDefined(back)
      yield* back!.settle(0.01)
      assert.closeTo((yield* globalDaily(a)).spentUsd, 0.02, 1e-9)
    }))

  it.scoped("onStoreDown local: admitted against this replica's own counters while the store is down", () =>
    Effect.gen(function*() {
      const server = yield* Redis.privateServer
      const cfg = config({ url: server.url, keyPrefix: "t:" }, { onStoreDown: "local", limits: [{ window: "daily", usd: 0.02 }] })
      const a = yield* replica(cfg, yield* Effect.scope)
      yield* Effect.promise(() => server.stop())
      const first = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* first.settle(0.01)
      const second = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => budget.admit(request())))
      yield* second.settle(0.01)
      // The local count still enforces the limit.
      const refused = yield* on(a, Effect.flatMap(Budget.Budget, (budget) => Effect.flip(budget.admit(request()))))
      assert.strictEqual(refused._tag, "BudgetExceeded")
    }))
})
