#!/usr/bin/env node
// V8 hidden classes ("maps") that tollgate makes per request, and where in the code.
//
// A steady request path makes none: every object of one kind shares a map. A map made on every
// request means objects that never share a shape, each costing microseconds to make, leaving
// garbage in the old generation (a full GC is the only one that frees it), and keeping the
// inline caches that read them from settling. Two causes seen here, both on Node 20 (V8 11.3):
// a property added to an object after a spread (`{ ...a, b }` where `a` has no `b`; measured:
// every object a map of its own), and a generator function made per call (`Effect.gen(function*
// () {...})` inside a function run per request: each gets a prototype of its own, made into a
// prototype map when its generator starts). `Effect.fnUntraced` makes the generator function once.
//
// Starts the mock upstream and `node --log-maps dist/bin.js start` (the bundle: one file, mapped
// back through its source map), sends WARM + N requests at 50 connections, and prints the map
// events that came at least once per two requests, per request, by kind and source position.
// Events made only at start-up or now and then fall under that bar by construction.
//
//   npm run build && node scripts/bench/maps.mjs [--mode json|cache|stream|anthropic|refresh] [--requests N] [--bin FILE] [--strict]
//
//   json       OpenAI JSON requests sent upstream (cache off)
//   cache      the same request, answered from the cache after the first
//   stream     OpenAI streams sent upstream (10 at a time, no pacing)
//   anthropic  Anthropic-shaped JSON requests, translated to the OpenAI upstream
//   refresh    `x-tollgate-cache: refresh`: every request through a flight of its own, then stored
//
// --bin runs another build's bundle (its .map beside it). With --strict the exit code is 1 when
// any event comes at least once per request.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { SourceMap } from "node:module"
import os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { CHAT, tollgateConfig } from "./fixtures.mjs"
import { pinningSupport, startMockUpstream, startTollgate, stopProcess } from "./lib.mjs"
import { runCannon, runStreams } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const DEFAULT_BIN = path.join(HERE, "..", "..", "dist", "bin.js")
const MODES = ["json", "cache", "stream", "anthropic", "refresh"]
const USAGE = `usage: node scripts/bench/maps.mjs [--mode ${MODES.join("|")}] [--requests N >= 1000] [--bin FILE] [--strict]`
let args
try {
  args = parseArgs({
    options: {
      mode: { type: "string", default: "cache" },
      requests: { type: "string", default: "2000" },
      strict: { type: "boolean", default: false },
      bin: { type: "string", default: DEFAULT_BIN },
      help: { type: "boolean", short: "h", default: false }
    }
  }).values
} catch (error) {
  console.error(`maps: ${error.message}\n${USAGE}`)
  process.exit(2)
}
const N = Number(args.requests)
// Start-up makes a few hundred maps of each kind once (the config's schemas: ~470): from 1,000
// requests on, those stay under the bar of one per two requests.
if (args.help || !MODES.includes(args.mode) || !(N >= 1000)) {
  console.log(USAGE)
  process.exit(args.help ? 0 : 2)
}
const BIN = path.resolve(args.bin)
if (!existsSync(BIN) || !existsSync(`${BIN}.map`)) {
  console.error(`maps: ${BIN} or its source map is missing; run \`npm run build\` first`)
  process.exit(2)
}
const WARM = N
const pin = pinningSupport().ok
const dir = mkdtempSync(path.join(os.tmpdir(), "tollgate-maps-"))
const logfile = path.join(dir, "v8.log")

const upstream = await startMockUpstream({ pin })
const config = path.join(dir, "tollgate.yaml")
writeFileSync(config, tollgateConfig({ upstreamBase: `${upstream.match[1]}/v1`, cache: args.mode === "cache" || args.mode === "refresh" }))
const tollgate = await startTollgate({
  name: "tollgate",
  bin: BIN,
  nodeArgs: ["--log-maps", "--no-log-maps-details", `--logfile=${logfile}`, "--no-logfile-per-isolate"],
  config,
  db: path.join(dir, "ledger.db"),
  cwd: dir,
  pin
})
const base = tollgate.match[1]

const json = { "content-type": "application/json", authorization: "Bearer bench" }
const load = (amount) => {
  switch (args.mode) {
    case "stream":
      return runStreams({
        url: `${base}/chat/completions`,
        connections: 10,
        durationMs: 120_000,
        maxStreams: amount,
        body: JSON.stringify({ ...CHAT, stream: true }),
        headers: { ...json, "x-bench-chunk-delay-ms": "0" },
        expect: { chunks: 50, usage: false }
      })
    case "anthropic":
      return runCannon({
        url: `${base}/messages`,
        connections: 50,
        amount,
        body: JSON.stringify({ model: CHAT.model, max_tokens: 200, system: CHAT.messages[0].content, messages: [CHAT.messages[1]] }),
        headers: { "content-type": "application/json", "x-api-key": "bench", "anthropic-version": "2023-06-01" },
        capMs: 120_000
      })
    default:
      return runCannon({
        url: `${base}/chat/completions`,
        connections: 50,
        amount,
        body: JSON.stringify(CHAT),
        headers: args.mode === "refresh" ? { ...json, "x-tollgate-cache": "refresh" } : json,
        capMs: 120_000
      })
  }
}

let answered = 0
try {
  for (const amount of [WARM, N]) {
    const result = await load(amount)
    const ok = result.completed2xx
    if (result.failures?.length > 0 || ok < amount) throw new Error(`only ${ok} of ${amount} requests answered 2xx`)
    answered += ok
  }
} finally {
  await stopProcess(tollgate)
  await stopProcess(upstream)
}

// map,<event>,<time>,<from>,<to>,<pc>,<line>,<column>,<reason>,<name>; line and column are
// positions in the bundle (1-based).
const bundleMap = new SourceMap(JSON.parse(readFileSync(`${BIN}.map`, "utf8")))
const where = (line, column) => {
  if (!(line > 0)) return "(runtime)"
  const entry = bundleMap.findEntry(line - 1, column - 1)
  if (entry?.originalSource === undefined) return `dist/bin.js:${line}:${column}`
  return `${entry.originalSource.replace(/^.*node_modules\//, "").replace(/^(\.\.\/)+/, "")}:${entry.originalLine + 1}`
}
const counts = new Map()
for (const line of readFileSync(logfile, "utf8").split("\n")) {
  if (!line.startsWith("map,")) continue
  const f = line.split(",")
  const key = `${f[1]}${f[8] ? ` ${f[8]}` : ""}${f[9] ? ` ${f.slice(9).join(",").slice(0, 40)}` : ""}\t${where(Number(f[6]), Number(f[7]))}`
  counts.set(key, (counts.get(key) ?? 0) + 1)
}
rmSync(dir, { recursive: true, force: true })

const perRequest = [...counts].map(([key, count]) => [key, count / answered]).filter(([, rate]) => rate >= 0.5).sort((a, b) => b[1] - a[1])
console.log(`${args.mode}: ${answered} requests (${WARM} warm-up + ${N}); map events that came at least once per two requests:`)
if (perRequest.length === 0) console.log("  none")
for (const [key, rate] of perRequest) {
  const [what, at] = key.split("\t")
  console.log(`  ${rate.toFixed(2).padStart(5)} per request  ${what.padEnd(48)} ${at}`)
}
process.exit(args.strict && perRequest.some(([, rate]) => rate >= 1) ? 1 : 0)
