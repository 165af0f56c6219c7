#!/usr/bin/env node
// What a shared budget adds to a request (docs/scale-out.md): tollgate's own `Budget` service
// (dist/, so `npm run build` first) admitting and settling requests against a daily limit, with
// its counters in this process only and with them shared on Redis (`redis:`); the difference of
// the medians is what sharing adds. Then the choice of store: one reservation as a Redis script
// (tollgate's) against the same check-and-reserve as one Postgres statement on a locked row,
// the round trip each engine costs. Sequential, then 16 at a time.
//
//   npm run build && node scripts/bench/budget-store.mjs [--requests N] [--redis URL] [--pg URL]
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "5000" },
    redis: { type: "string", default: process.env.TOLLGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379" },
    pg: { type: "string", default: process.env.TOLLGATE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test" }
  }
})
const N = Number(args.requests)
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist")
const load = (file) => import(pathToFileURL(path.join(DIST, file)).href)
const [Budget, Config, Store, Pricing] = await Promise.all(["Budget.js", "Config.js", "Store.js", "Pricing.js"].map(load))

const stats = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { p50: at(0.5), p99: at(0.99) }
}
const fmt = (ms) => `${ms.toFixed(3)} ms`

/** `run(i)` N times, `concurrency` at a time; the latency of each, and the rate. */
const measure = async (run, concurrency) => {
  const samples = []
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < N) {
      const i = next++
      const t = performance.now()
      await run(i)
      samples.push(performance.now() - t)
    }
  }))
  return { ...stats(samples), perSecond: N / ((performance.now() - started) / 1000) }
}

const prefix = `tollgate-bench:${randomBytes(4).toString("hex")}:`
const budgetConfig = (redis) => ({
  pricing: { m: { input: 0, output: 1 } },
  ...(redis ? { redis: { url: args.redis, keyPrefix: prefix } } : {}),
  // A limit no run reaches: every request is admitted and settled.
  budget: { enabled: true, limits: [{ window: "daily", usd: 1_000_000 }, { scope: "project", window: "monthly", usd: 1_000_000 }] }
})

let seq = 0
const request = () => {
  const n = seq++
  return {
    requestId: `b${n}`, clientHash: null, project: "p", session: null, model: "m",
    estimatedInputTokens: () => 0, inputTokensUpperBound: 0, maxOutputTokens: 100, fingerprint: () => `f${n}`
  }
}

const budgetRuns = async (redis) => {
  const layer = Budget.layer.pipe(
    Layer.provideMerge(Store.layerAt(":memory:")),
    Layer.provide(Pricing.layer),
    Layer.provide(Config.layerFrom(budgetConfig(redis)))
  )
  const program = Effect.gen(function*() {
    const budget = yield* Budget.Budget
    const runtime = yield* Effect.runtime()
    const { runPromise } = yield* Effect.sync(() => ({ runPromise: (e) => Effect.runPromise(Effect.provide(e, runtime.context)) }))
    const once = () => runPromise(Effect.flatMap(budget.admit(request()), (a) => a.settle(a.reservedUsd)))
    for (let i = 0; i < 500; i++) yield* Effect.promise(once) // warm-up
    const sequential = yield* Effect.promise(() => measure(once, 1))
    const concurrent = yield* Effect.promise(() => measure(once, 16))
    return { sequential, concurrent }
  })
  return Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
}

const local = await budgetRuns(false)
const shared = await budgetRuns(true)

// The two candidate stores, bare: check spent + reserved + amount <= limit and reserve, atomically.
const { Redis } = await import("ioredis")
const redis = new Redis(args.redis)
const LUA = `local s = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local r = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if s + r + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'reserved', string.format('%.17g', r + tonumber(ARGV[1])))
redis.call('ZADD', KEYS[1] .. ':r', ARGV[3], ARGV[4])
return 1`
const sha = await redis.script("LOAD", LUA)
const redisRun = (i) => redis.evalsha(sha, 1, `${prefix}c`, "0.001", "1000000", Date.now() + 30_000, `m${i}`)
const redisBare = { sequential: await measure(redisRun, 1), concurrent: await measure(redisRun, 16) }
const keys = await redis.keys(`${prefix}*`)
if (keys.length > 0) await redis.del(...keys)
redis.disconnect()

const pg = (await import("pg")).default
const pool = new pg.Pool({ connectionString: args.pg, max: 16 })
const table = `bench_budget_${randomBytes(4).toString("hex")}`
await pool.query(`CREATE TABLE ${table} (key text PRIMARY KEY, spent double precision NOT NULL, reserved double precision NOT NULL, lim double precision NOT NULL)`)
await pool.query(`INSERT INTO ${table} VALUES ('c', 0, 0, 1000000)`)
const pgRun = () =>
  pool.query(`UPDATE ${table} SET reserved = reserved + $1 WHERE key = 'c' AND spent + reserved + $1 <= lim RETURNING spent, reserved`, [0.001])
const pgBare = { sequential: await measure(pgRun, 1), concurrent: await measure(pgRun, 16) }
await pool.query(`DROP TABLE ${table}`)
await pool.end()

const row = (name, r) =>
  `| ${name} | ${fmt(r.sequential.p50)} | ${fmt(r.sequential.p99)} | ${fmt(r.concurrent.p50)} | ${fmt(r.concurrent.p99)} | ${Math.round(r.concurrent.perSecond)} |`
console.log(`${N} requests each; node ${process.version}`)
console.log("| | p50, 1 at a time | p99 | p50, 16 at a time | p99 | per second, 16 at a time |")
console.log("|---|---|---|---|---|---|")
console.log(row("Budget admit + settle, local counters", local))
console.log(row("Budget admit + settle, shared on Redis", shared))
console.log(row("bare reservation: Redis script", redisBare))
console.log(row("bare reservation: Postgres UPDATE on a locked row", pgBare))
console.log(`added p50 of a shared reservation (admit + settle, 1 at a time): ${fmt(shared.sequential.p50 - local.sequential.p50)}`)
