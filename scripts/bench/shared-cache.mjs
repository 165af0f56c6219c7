#!/usr/bin/env node
// What a hit in the shared cache tier (cache.redis) costs next to a memory hit: two built `Cache`
// services (two replicas) on one Redis key prefix. Each answer is stored through one; the other's
// first lookup of it is a Redis hit (and fills its memory tier), its second a memory hit. Wall
// time per lookup, median and p99, for a small answer and a large one, with and without
// cache.encrypt. The prefix's keys are deleted at the end.
//
//   npm run build && node scripts/bench/shared-cache.mjs [--url redis://127.0.0.1:6379] [--lookups N] [--dist DIR]
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { Redis as IoRedis } from "ioredis"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: process.env.TOLLGATE_REDIS_URL ?? "redis://127.0.0.1:6379" },
    lookups: { type: "string", default: "2000" },
    dist: { type: "string", default: path.join(HERE, "..", "..", "dist") },
    help: { type: "boolean", short: "h", default: false }
  }
})
if (args.help) {
  console.log("usage: node scripts/bench/shared-cache.mjs [--url redis://...] [--lookups N] [--dist DIR]")
  process.exit(0)
}
const N = Number(args.lookups)
const load = (name) => import(pathToFileURL(path.join(args.dist, name)).href)
const [Cache, Config, Redis, Store] = await Promise.all(["Cache.js", "Config.js", "Redis.js", "Store.js"].map(load))

const answerOf = (bytes) => ({
  kind: "json",
  json: JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion",
    model: "gpt-4o-mini",
    choices: [{ index: 0, message: { role: "assistant", content: "x".repeat(bytes) }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 }
  }),
  events: [],
  provider: "openai",
  model: "gpt-4o-mini",
  usage: { inputTokens: 1200, outputTokens: 300, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" },
  costUsd: 0.00036
})

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const prefix = `tollgate-bench:${randomBytes(6).toString("hex")}:`
const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-"))

const replica = (encrypt, scope, n) =>
  Layer.buildWithScope(
    Cache.layerWithoutDependencies.pipe(
      Layer.provide(Redis.layer),
      Layer.provide(Store.layerAt(path.join(home, `ledger-${encrypt}-${n}.db`))),
      Layer.provide(Config.layerFrom({ redis: { url: args.url, keyPrefix: prefix }, cache: { redis: true, encrypt } }).pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["TOLLGATE_CACHE_KEY", "ab".repeat(32)]]))))
      ))
    ),
    scope
  ).pipe(Effect.map((context) => Context.get(context, Cache.Cache)))

const timed = (effect) =>
  Effect.suspend(() => {
    const started = process.hrtime.bigint()
    return Effect.map(effect, (found) => {
      if (found._tag !== "Some") throw new Error("expected a hit")
      return Number(process.hrtime.bigint() - started) / 1e6
    })
  })

const run = (encrypt, bytes) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const a = yield* replica(encrypt, scope, 1)
    const b = yield* replica(encrypt, scope, 2)
    const answer = answerOf(bytes)
    const keys = Array.from({ length: N }, (_, i) => `bench-${encrypt}-${bytes}-${i}`)
    for (const key of keys) yield* a.set(key, answer)
    const shared = []
    const memory = []
    for (const key of keys) {
      shared.push(yield* timed(b.get(key)))
      memory.push(yield* timed(b.get(key)))
    }
    yield* Scope.close(scope, Exit.void)
    const row = (name, values) =>
      `| ${bytes.toLocaleString("en-US")} B answer${encrypt ? ", encrypted" : ""} | ${name} | ${percentile(values, 50).toFixed(3)} | ${percentile(values, 99).toFixed(3)} |`
    console.log(row("memory hit", memory))
    console.log(row("Redis hit (then in memory)", shared))
  })

console.log(`${N} lookups each, Redis at ${args.url}, ${new Date().toISOString().slice(0, 10)}`)
console.log("| answer | lookup | median ms | p99 ms |")
console.log("|---|---|---|---|")
try {
  for (const encrypt of [false, true]) {
    for (const bytes of [2_000, 64_000]) await Effect.runPromise(run(encrypt, bytes))
  }
} finally {
  const client = new IoRedis(args.url)
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== "0")
  client.disconnect()
  fs.rmSync(home, { recursive: true, force: true })
}
