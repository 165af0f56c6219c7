#!/usr/bin/env node
// Where a paced stream's time to first byte goes inside each proxy, over real sockets: the raw
// proxy and tollgate run side by side (pinned to core 0, the mock upstream and the client on core
// 1), each with `segments-preload.mjs`, which marks every request's way through the process from
// Node's and undici's diagnostics channels. After the same warm-up as `paired.mjs`, rounds of
// --streams paced streams (the bench's stream TTFB @1) go to each in turn; the medians of each
// segment are printed side by side with the client's TTFB.
//
//   npm run build && node scripts/bench/segments.mjs [--bin FILE] [--node-args="FLAGS"] [--rounds N] [--streams N]
//
// The socket bench can only say that tollgate's TTFB is higher; this says whether the time goes
// before the upstream call (reading the request, deciding, admitting) or after its answer (on to
// the client), measured where a stream meets the process cold. The channels' subscribers cost
// both proxies a little, so the absolute numbers read higher than the bench's.
//
// A scratch build (src/ copied with `globalThis.__segment?.("name")` calls added, bundled like
// scripts/build-bin.mjs) gives a finer breakdown: pass it with --bin, and its own marks are listed
// in time order below the table.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { tollgateConfig } from "./fixtures.mjs"
import { median, pinningSupport, renderTable, startMockUpstream, startRawProxy, startTollgate, stopProcess } from "./lib.mjs"
import { jsonRequests, pacedStreams } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const USAGE = "usage: node scripts/bench/segments.mjs [--bin FILE] [--node-args=\"FLAGS\"] [--rounds N >= 1] [--streams N >= 1]"
let args
try {
  args = parseArgs({
    options: {
      bin: { type: "string", default: path.join(HERE, "..", "..", "dist", "bin.js") },
      "node-args": { type: "string", default: "" },
      rounds: { type: "string", default: "10" },
      streams: { type: "string", default: "30" },
      help: { type: "boolean", short: "h", default: false }
    }
  }).values
} catch (error) {
  console.error(`segments: ${error.message}\n${USAGE}`)
  process.exit(2)
}
const rounds = Number(args.rounds)
const streams = Number(args.streams)
if (args.help || !(rounds >= 1) || !(streams >= 1)) {
  console.log(USAGE)
  process.exit(args.help ? 0 : 2)
}

/** The preload's marks, in the order a request passes them. */
const STANDARD = ["in", "created", "headersOut", "bodyOut", "answered", "firstOut", "flushed"]
const LABELS = {
  created: "request in -> upstream request created",
  headersOut: "-> its head on the upstream socket",
  bodyOut: "-> its body too",
  answered: "-> the upstream's answer head parsed",
  firstOut: "-> first bytes written to the client",
  flushed: "-> on the client's socket"
}
const WARM_REQUESTS = 6000
const WARM_STREAMS = 20

const pin = pinningSupport().ok
const dir = mkdtempSync(path.join(os.tmpdir(), "tollgate-segments-"))
const preload = `--import=${path.join(HERE, "segments-preload.mjs")}`
const marksOf = (name) => path.join(dir, `${name}.json`)

/** Median over the requests of the time from mark `from` to mark `to`, in microseconds. */
const span = (requests, from, to) => {
  const spans = requests.filter((r) => r[from] !== undefined && r[to] !== undefined).map((r) => (r[to] - r[from]) * 1000)
  return spans.length === 0 ? undefined : median(spans)
}

const upstream = await startMockUpstream({ pin })
const base = upstream.match[1]
const sides = []
try {
  sides.push({
    name: "raw proxy",
    process: await startRawProxy({ upstreamBase: base, pin, nodeArgs: [preload], env: { SEGMENTS_OUT: marksOf("raw") } }),
    marks: marksOf("raw")
  })
  const config = path.join(dir, "tollgate.yaml")
  writeFileSync(config, tollgateConfig({ upstreamBase: `${base}/v1`, cache: false }))
  const nodeArgs = [...args["node-args"].split(/\s+/).filter((a) => a !== ""), preload]
  const db = path.join(dir, "tollgate.db")
  sides.push({
    name: "tollgate",
    process: await startTollgate({ name: "tollgate", bin: path.resolve(args.bin), nodeArgs, config, db, cwd: dir, pin, env: { SEGMENTS_OUT: marksOf("tollgate") } }),
    marks: marksOf("tollgate")
  })

  console.log(`segments: ${rounds} rounds of ${streams} paced streams (50 chunks x 2 ms) at 1 connection to each, pinning ${pin ? "on" : "off"}`)
  console.log(`  tollgate: ${path.relative(process.cwd(), path.resolve(args.bin))} ${args["node-args"]}`)
  for (const side of sides) {
    const warm = await jsonRequests(side.process.match[1], WARM_REQUESTS)
    if (warm.completed2xx !== WARM_REQUESTS) throw new Error(`${side.name}: ${warm.completed2xx} of ${WARM_REQUESTS} warm-up requests completed`)
    await pacedStreams(side.process.match[1], WARM_STREAMS)
    side.ttfb = []
  }
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const result = await pacedStreams(side.process.match[1], streams)
      if (result.valid !== streams) throw new Error(`${side.name}: ${result.valid} of ${streams} streams valid (${result.failures.join("; ")})`)
      side.ttfb.push(result.ttfbMs.p50)
    }
    process.stdout.write(`\r  round ${round + 1}/${rounds}`)
  }
  process.stdout.write("\n")
} finally {
  for (const side of sides) await stopProcess(side.process)
  await stopProcess(upstream)
}

try {
  for (const side of sides) {
    // Every request the process saw, warm-ups first: only the measured streams are kept.
    const seen = JSON.parse(readFileSync(side.marks, "utf8"))
    side.requests = seen.slice(WARM_REQUESTS + WARM_STREAMS)
    if (side.requests.length !== rounds * streams) throw new Error(`${side.name}: ${side.requests.length} requests marked, ${rounds * streams} sent`)
  }
  const cell = (us) => (us === undefined ? "-" : us.toFixed(0))
  const rows = STANDARD.slice(1).map((to, i) => {
    const [raw, tollgate] = sides.map((side) => span(side.requests, STANDARD[i], to))
    return [LABELS[to], cell(raw), cell(tollgate), raw === undefined || tollgate === undefined ? "-" : `${tollgate - raw >= 0 ? "+" : ""}${(tollgate - raw).toFixed(0)}`]
  })
  const [rawTotal, tgTotal] = sides.map((side) => span(side.requests, "in", "flushed"))
  rows.push(["request in -> first bytes on the socket (own median)", cell(rawTotal), cell(tgTotal), `${tgTotal - rawTotal >= 0 ? "+" : ""}${(tgTotal - rawTotal).toFixed(0)}`])
  const [rawTtfb, tgTtfb] = sides.map((side) => median(side.ttfb) * 1000)
  rows.push(["client's stream TTFB (median of round p50s)", cell(rawTtfb), cell(tgTtfb), `${tgTtfb - rawTtfb >= 0 ? "+" : ""}${(tgTtfb - rawTtfb).toFixed(0)}`])
  console.log("")
  console.log(renderTable(["SEGMENT (medians, us)", "raw proxy", "tollgate", "difference"], rows))

  // A scratch build's own marks, in the order a request passes them.
  const tollgate = sides[1].requests
  const own = [...new Set(tollgate.flatMap((r) => Object.keys(r)))].filter((k) => !STANDARD.includes(k))
  if (own.length > 0) {
    const keys = [...own, ...STANDARD].sort((a, b) => (span(tollgate, "in", a) ?? 0) - (span(tollgate, "in", b) ?? 0))
    console.log("\ntollgate, every mark (medians from the one before, us):")
    for (let i = 1; i < keys.length; i++) console.log(`  ${keys[i].padEnd(24)} +${cell(span(tollgate, keys[i - 1], keys[i]))}`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
