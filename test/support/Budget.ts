/**
 * Budget test helpers: the `Budget` service on a given config and SQLite file, budget requests,
 * a condition wait that turns the event loop (for real sockets under TestClock), and a webhook
 * receiver on 127.0.0.1:0.
 */
import { SqlClient } from "@effect/sql"
import { Deferred, Effect, Layer, Queue } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Budget from "../../src/Budget.js"
import * as Config from "../../src/Config.js"
import * as Pricing from "../../src/Pricing.js"
import * as Store from "../../src/Store.js"

/** Prices that make arithmetic easy: model "m" costs $0.01 per 1,000 output tokens. */
export const testPricing = {
  m: { input: 0, output: 10 },
  "m-small": { input: 0, output: 1 }
}

export const budgetLayer = (config: Config.FileConfigInput, dbPath = ":memory:") =>
  Budget.layer.pipe(
    Layer.provideMerge(Store.layerAt(dbPath)),
    Layer.provide(Pricing.layer),
    Layer.provide(Config.layerFrom({ pricing: testPricing, ...config }))
  )

let seq = 0
export const request = (overrides: Partial<Budget.BudgetRequest> = {}): Budget.BudgetRequest => {
  const n = seq++
  return {
    requestId: `req_${n}`,
    clientHash: null,
    project: null,
    session: null,
    model: "m",
    estimatedInputTokens: () => 0,
    inputTokensUpperBound: 0,
    maxOutputTokens: 1000,
    fingerprint: () => `fp_${n}`,
    ...overrides
  }
}

/** Admits and settles at the reservation (real cost = estimate). */
export const spend = (overrides: Partial<Budget.BudgetRequest> = {}) =>
  Effect.gen(function*() {
    const budget = yield* Budget.Budget
    const admission = yield* budget.admit(request(overrides))
    yield* admission.settle(admission.reservedUsd)
    return admission
  })

export const alertRows = Effect.gen(function*() {
  const alerts = yield* Budget.Alerts
  yield* alerts.flush
  const sql = yield* SqlClient.SqlClient
  return yield* sql<{ kind: string; threshold: number | null; scope: string; anomaly: string | null; delivered_at: number | null; attempts: number }>`
    SELECT * FROM budget_alerts ORDER BY id`
})

/**
 * Waits until `check` holds, letting the event loop run between checks (real I/O completes; no
 * wall-clock time is assumed). Fails after `turns` turns instead of hanging.
 */
export const awaitCondition = <E, R>(check: Effect.Effect<boolean, E, R>, turns = 20_000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns; i++) {
      if (yield* check) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    return yield* Effect.dieMessage("condition not reached")
  })

export interface Receiver {
  readonly url: string
  /** Bodies received, in order. */
  readonly bodies: Array<string>
  /** Each request waits here for the status to answer with. */
  readonly answers: Queue.Queue<number>
  readonly firstArrived: Deferred.Deferred<void>
}

/** A webhook receiver on 127.0.0.1:0 that answers each call with the next status from `answers`. */
export const receiver = Effect.acquireRelease(
  Effect.gen(function*() {
    const answers = yield* Queue.unbounded<number>()
    const firstArrived = yield* Deferred.make<void>()
    const bodies: Array<string> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        bodies.push(body)
        Effect.runFork(Effect.gen(function*() {
          yield* Deferred.succeed(firstArrived, undefined)
          const status = yield* Queue.take(answers)
          res.writeHead(status, { "content-type": "text/plain" }).end("ok")
        }))
      })
    })
    yield* Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void)))
    const port = (server.address() as AddressInfo).port
    return { server, receiver: { url: `http://127.0.0.1:${port}/hook`, bodies, answers, firstArrived } }
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
).pipe(Effect.map(({ receiver }): Receiver => receiver))
