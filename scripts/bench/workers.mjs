#!/usr/bin/env node
// `tollgate start --workers 2` against one worker on this machine (docs/scale-out.md, "--workers"):
// the throughput ratio. The same load as the benchmark's non-streaming scenario (autocannon,
// `jsonRequests`: the bench's JSON chat request at 50 connections, every request answered) through
// the same mock upstream, to the same configuration (the bench's: a routing rule, a budget that
// reserves and settles every request, no cache), with the ledger on PostgreSQL and the budget on
// Redis for both sides, since two workers need them. Nothing is pinned: the workers need every
// core, and the upstream and the load generator share them (the ratio is this machine's whole
// answer, not tollgate's alone).
//
// Each round starts one side, warms it up, measures it, stops it, then the other (the order
// alternating from round to round: this machine's speed drifts within minutes); the ratio of the
// round's two rates is the round's result, and the median over rounds is what to read.
//
//   npm run build && node scripts/bench/workers.mjs [--rounds N] [--requests N] [--warmup N] [--workers N]
//        [--no-budget] [--pg URL] [--redis URL]
//
// --no-budget leaves the budget (and Redis) out: the workers' cost without the shared reservation.
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import pg from "pg"
import { tollgateConfig } from "./fixtures.mjs"
import { median, readCpuMs, startMockUpstream, startProcess, stopProcess } from "./lib.mjs"
import { jsonRequests } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const BIN = path.join(HERE, "..", "..", "dist", "bin.js")
const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    requests: { type: "string", default: "20000" },
    warmup: { type: "string", default: "5000" },
    workers: { type: "string", default: "2" },
    // No budget (and so no Redis): what the workers cost without the shared reservation.
    "no-budget": { type: "boolean", default: false },
    pg: { type: "string", default: process.env.TOLLGATE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test" },
    redis: { type: "string", default: process.env.TOLLGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379" }
  }
})
const rounds = Number(args.rounds)
const requests = Number(args.requests)
const warmup = Number(args.warmup)
const workers = Number(args.workers)
if (!(rounds >= 1) || !(requests >= 100) || !(warmup >= 0) || !(workers >= 2)) {
  console.error("usage: node scripts/bench/workers.mjs [--rounds N >= 1] [--requests N >= 100] [--warmup N] [--workers N >= 2] [--pg URL] [--redis URL]")
  process.exit(2)
}

const admin = async (text) => {
  const client = new pg.Client({ connectionString: args.pg })
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}
const dbName = `tollgate_bench_${randomBytes(5).toString("hex")}`
await admin(`CREATE DATABASE ${dbName}`)
const dbUrl = new URL(args.pg)
dbUrl.pathname = `/${dbName}`
const prefix = `tollgate-bench:${randomBytes(5).toString("hex")}:`

const dir = mkdtempSync(path.join(os.tmpdir(), "tollgate-workers-bench-"))
const upstream = await startMockUpstream({ pin: false })
const config = path.join(dir, "tollgate.yaml")
const base = tollgateConfig({ upstreamBase: `${upstream.match[1]}/v1`, cache: false })
writeFileSync(
  config,
  (args["no-budget"] ? base.replace(/^budget:.*\n/m, "") : `${base}redis: { url: "${args.redis}", keyPrefix: "${prefix}" }\n`) +
    `database: { url: "${dbUrl}" }\n`
)

const start = (count) =>
  startProcess({
    name: `tollgate --workers ${count}`,
    command: process.execPath,
    args: [BIN, "start", "--config", config, "--port", "0", "--host", "127.0.0.1", "--admin-port", "0", "--workers", String(count)],
    env: { TOLLGATE_HOME: path.join(dir, "home") },
    cwd: dir,
    pin: false,
    ready: /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/,
    timeoutMs: 60_000
  })

/** One side: started, warmed up, measured, stopped; its steady rate and latencies. */
const measure = async (count) => {
  const tollgate = await start(count)
  try {
    if (warmup > 0) await jsonRequests(tollgate.match[1], warmup)
    // The primary and its workers (their pids are in the banner), or the one process.
    const banner = tollgate.lines.join("\n").match(/workers, pids ([\d, ]+)/)
    const pids = [tollgate.pid, ...(banner === null ? [] : banner[1].split(", ").map(Number))]
    const cpu = () => pids.reduce((sum, pid) => sum + (readCpuMs(pid) ?? Number.NaN), 0)
    const cpuBefore = cpu()
    const primaryBefore = readCpuMs(tollgate.pid)
    const result = await jsonRequests(tollgate.match[1], requests)
    result.cpuMsPerRequest = (cpu() - cpuBefore) / requests
    // With workers, what the primary itself spent (it hands out connections, not requests).
    result.primaryCpuMs = banner === null ? undefined : readCpuMs(tollgate.pid) - primaryBefore
    if (result.completed2xx !== result.amount || result.truncated) {
      throw new Error(`${count} worker(s): ${result.completed2xx} of ${result.amount} answered 2xx (non2xx ${result.non2xx}, errors ${result.errors})`)
    }
    return result
  } finally {
    const stopped = await stopProcess(tollgate, { signal: "SIGTERM", timeoutMs: 60_000 })
    if (stopped.killed || stopped.code !== 0) throw new Error(`${count} worker(s) did not stop cleanly: ${JSON.stringify(stopped)}`)
  }
}

const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
console.log(
  `workers bench${args["no-budget"] ? " (no budget)" : ""}: ${workers} workers vs 1, ${rounds} round(s) of ${requests} requests (after ${warmup} to warm up) at 50 connections; ` +
    `${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`
)
const rows = []
try {
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? [1, workers] : [workers, 1]
    const results = {}
    for (const count of order) results[count] = await measure(count)
    const ratio = results[workers].rps / results[1].rps
    rows.push({ round, one: results[1], many: results[workers], ratio })
    const side = (r) => `${fmt(r.rps)} req/s (p50 ${fmt(r.latencyMs.p50, 2)} ms, p99 ${fmt(r.latencyMs.p99, 2)} ms, CPU ${fmt(r.cpuMsPerRequest, 3)} ms/request${r.primaryCpuMs === undefined ? "" : `, primary ${fmt(r.primaryCpuMs)} ms in all`})`
    console.log(`round ${round}: 1 worker ${side(results[1])}; ${workers} workers ${side(results[workers])}; ratio ${ratio.toFixed(2)}`)
  }
  // Every request answered is a ledger row, whichever worker served it and however it stopped.
  const ledger = new pg.Client({ connectionString: dbUrl.toString() })
  await ledger.connect()
  const written = Number((await ledger.query("SELECT COUNT(*) AS n FROM requests")).rows[0].n)
  await ledger.end()
  const sent = rows.length * 2 * (warmup + requests)
  console.log(`ledger: ${written} rows for ${sent} requests answered${written === sent ? " (none lost)" : " (MISMATCH)"}`)
  console.log(
    `median: 1 worker ${fmt(median(rows.map((r) => r.one.rps)))} req/s, ${workers} workers ${fmt(median(rows.map((r) => r.many.rps)))} req/s; ` +
      `ratio ${median(rows.map((r) => r.ratio)).toFixed(2)} (rounds: ${rows.map((r) => r.ratio.toFixed(2)).join(", ")}); ` +
      `CPU per request ${fmt(median(rows.map((r) => r.one.cpuMsPerRequest)), 3)} / ${fmt(median(rows.map((r) => r.many.cpuMsPerRequest)), 3)} ms; ` +
      `load average after ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`
  )
} finally {
  await stopProcess(upstream, { signal: "SIGTERM" })
  await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
  const { Redis } = await import("ioredis")
  const redis = new Redis(args.redis)
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
  rmSync(dir, { recursive: true, force: true })
}
