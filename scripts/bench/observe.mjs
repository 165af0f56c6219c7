#!/usr/bin/env node
// What a booked row costs the metrics and the recent-requests feed, without anything else around
// it: Metrics.observe (counting, and not counting as with server.admin: false and no OTLP) and
// Recent.push, each called 2,000,000 times over 1,024 rows, 5 rounds after a warm-up (dist/).
//
//   npm run build && node scripts/bench/observe.mjs
import * as Effect from "effect/Effect"
import * as Config from "../../dist/Config.js"
import * as Metrics from "../../dist/Metrics.js"
import * as Recent from "../../dist/Admin/Recent.js"
const config = await Effect.runPromise(Effect.provide(Config.TollgateConfig, Config.layerFrom({
  providers: { up: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1" } },
  routes: [{ name: "bench", match: { model: "*" }, targets: [{ provider: "up" }] }],
  pricing: { "gpt-4o-mini": { input: 1, output: 2 } }
})))
const row = (i) => ({ ts: Date.now(), requestId: `r${i}`, endpoint: "/v1/chat/completions", route: "bench", rule: null, provider: "up",
  requestedModel: "gpt-4o-mini", servedModel: "gpt-4o-mini", stream: false, status: 200, errorType: null, attempts: 1, failover: false,
  attemptErrors: null, skipped: null, cacheStatus: null, inputTokens: 100 + (i % 50), outputTokens: 20, cachedInputTokens: 0, cacheWriteTokens: 0,
  reasoningTokens: 0, costUsd: 0.00004, savedUsd: null, priced: true, usageSource: "reported", latencyMs: 3 + (i % 100), ttfbMs: 1 + (i % 7),
  aborted: false, clientHash: null, userAgent: null, project: null, session: null, cascade: null, downgradedFrom: null })
const rows = Array.from({ length: 1024 }, (_, i) => row(i))
const time = (label, f, n = 2_000_000) => {
  for (let i = 0; i < 200_000; i++) f(rows[i & 1023])
  const results = []
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) f(rows[i & 1023])
    results.push(Number(process.hrtime.bigint() - t0) / n)
  }
  results.sort((a, b) => a - b)
  console.log(`${label}: min ${results[0].toFixed(0)} ns, median ${results[2].toFixed(0)} ns per row`)
}
const on = Metrics.make(config, true)
const off = Metrics.make(config, false)
const recent = Recent.make()
time("Metrics.observe, counting", on.observe)
time("Metrics.observe, not counting", off.observe)
time("Recent.push", recent.push)
