#!/usr/bin/env node
// The OTLP span encoder alone (src/Telemetry/OtlpSpans.ts): CPU per span to encode ledger rows as
// one export body, in protobuf and in JSON, in batches of 512 (the batch span processor's size),
// and the bytes per span; with --post, each body also sent with undici to a receiver in this
// process that reads and discards it (the receiver's own CPU counted too: one process). One
// batch for all, filled 64 rows at a time, as the exporter does.
//
//   npm run build && node scripts/bench/otlp-encode.mjs [--spans N] [--rounds R] [--post]
import * as http from "node:http"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { request } from "undici"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    spans: { type: "string", default: "200000" },
    rounds: { type: "string", default: "5" },
    post: { type: "boolean", default: false }
  }
})
const { batch, ID_BYTES } = await import(pathToFileURL(path.join(HERE, "..", "..", "dist", "Telemetry", "OtlpSpans.js")).href)
const N = Number(args.spans)
const BATCH = 512

const row = (i) => ({
  ts: Date.now(), requestId: `req_${i.toString(36)}_0123456789ab`, endpoint: "/v1/chat/completions", route: "default", rule: null,
  provider: "openai", requestedModel: "gpt-4o-mini", servedModel: "gpt-4o-mini-2024-07-18", stream: i % 2 === 0, status: 200,
  errorType: null, attempts: 1, failover: false, attemptErrors: null, skipped: null, cacheStatus: "miss", inputTokens: 120 + (i % 50),
  outputTokens: 33, cachedInputTokens: 0, cacheWriteTokens: null, reasoningTokens: null, costUsd: 0.0000378, savedUsd: null, priced: true,
  usageSource: "reported", latencyMs: 12.3, ttfbMs: i % 2 === 0 ? 4.5 : null, aborted: false, clientHash: "abc", userAgent: "bench",
  project: null, session: null, cascade: null, downgradedFrom: null
})
const ROWS = Array.from({ length: N }, (_, i) => row(i))
const resource = [{ key: "service.name", value: { stringValue: "tollgate" } }]

const server = args.post
  ? await new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => res.writeHead(200).end())
    })
    s.listen(0, "127.0.0.1", () => resolve(s))
  })
  : undefined
const url = server && `http://127.0.0.1:${server.address().port}/v1/traces`

for (const protocol of ["http/protobuf", "http/json"]) {
  const perSpan = []
  let bytes = 0
  const building = batch(protocol, resource, "tollgate")
  for (let round = 0; round < Number(args.rounds); round++) {
    bytes = 0
    const start = process.cpuUsage()
    for (let at = 0; at < N; at += BATCH) {
      const rows = ROWS.slice(at, at + BATCH)
      const ids = crypto.getRandomValues(new Uint8Array(rows.length * ID_BYTES))
      for (let i = 0; i < rows.length; i += 64) building.add(rows.slice(i, i + 64), ids.subarray(i * ID_BYTES, (i + 64) * ID_BYTES))
      const body = building.finish()
      bytes += body.length
      if (url) await (await request(url, { method: "POST", body, headers: { "content-type": "application/x-protobuf" } })).body.dump()
    }
    const used = process.cpuUsage(start)
    perSpan.push((used.user + used.system) / N)
  }
  perSpan.sort((a, b) => a - b)
  console.log(`${protocol}${url ? " + POST" : ""}: ${perSpan[0].toFixed(2)} us per span (min of ${args.rounds}), median ${perSpan[perSpan.length >> 1].toFixed(2)} us; ${(bytes / N).toFixed(0)} bytes per span`)
}
server?.close()
