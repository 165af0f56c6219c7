#!/usr/bin/env node
// Paired A/B of two tollgate processes: two builds, or one build with two sets of node flags.
// This machine's speed swings within minutes, so two runs of the benchmark one after the other
// compare the machine as much as the builds. Here both processes are alive for the whole run,
// pinned to the same core (core 0, the mock upstream and the load on core 1), and loaded in turn,
// round after round (the order alternating), with the same JSON request at 50 connections. Each
// round gives each process's CPU per request (from /proc), and their ratio B/A; the median of the
// ratios is what to read. Run it in both orders (swap A and B): the process started second has
// come out a few percent slower or faster here for no reason of its own.
//
//   npm run build && node scripts/bench/paired.mjs [--a-bin FILE] [--b-bin FILE]
//        [--a-args="FLAGS"] [--b-args="FLAGS"] [--cache] [--rounds N] [--requests N]
//
// --a-bin/--b-bin default to dist/bin.js; build another with `git worktree add` and `npm run build`
// there. --cache sends every request after the first to the cache (the tg cache-hit target).
import * as path from "node:path"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { CHAT, tollgateConfig } from "./fixtures.mjs"
import { median, pinningSupport, readCpuMs, readMemory, startMockUpstream, startTollgate, stopProcess } from "./lib.mjs"
import { runCannon } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const BIN = path.join(HERE, "..", "..", "dist", "bin.js")
const USAGE = "usage: node scripts/bench/paired.mjs [--a-bin FILE] [--b-bin FILE] [--a-args=\"FLAGS\"] [--b-args=\"FLAGS\"]\n" +
  "         [--cache] [--rounds N >= 1] [--requests N >= 50]   (node flags after '=': --b-args=\"--heap-growing-percent=0\")"
const OPTIONS = {
  "a-bin": { type: "string", default: BIN },
  "b-bin": { type: "string", default: BIN },
  "a-args": { type: "string", default: "" },
  "b-args": { type: "string", default: "" },
  cache: { type: "boolean", default: false },
  rounds: { type: "string", default: "10" },
  requests: { type: "string", default: "6000" },
  help: { type: "boolean", short: "h", default: false }
}
let args
try {
  args = parseArgs({ options: OPTIONS }).values
} catch (error) {
  console.error(`paired: ${error.message}\n${USAGE}`)
  process.exit(2)
}
const rounds = Number(args.rounds)
const requests = Number(args.requests)
if (args.help || !(rounds >= 1) || !(requests >= 50)) {
  console.log(USAGE)
  process.exit(args.help ? 0 : 2)
}
const pin = pinningSupport().ok
const dir = mkdtempSync(path.join(os.tmpdir(), "tollgate-paired-"))
const flags = (text) => text.split(/\s+/).filter((a) => a !== "")

const upstream = await startMockUpstream({ pin })
const config = path.join(dir, "tollgate.yaml")
writeFileSync(config, tollgateConfig({ upstreamBase: `${upstream.match[1]}/v1`, cache: args.cache }))

const start = (name, bin, nodeArgs) =>
  startTollgate({ name, bin: path.resolve(bin), nodeArgs, config, db: path.join(dir, `${name}.db`), cwd: dir, pin })
const sides = [
  { name: "A", bin: args["a-bin"], nodeArgs: flags(args["a-args"]) },
  { name: "B", bin: args["b-bin"], nodeArgs: flags(args["b-args"]) }
]
for (const side of sides) side.process = await start(side.name, side.bin, side.nodeArgs)

const load = (side, amount) =>
  runCannon({
    url: `${side.process.match[1]}/chat/completions`,
    connections: 50,
    amount,
    body: JSON.stringify(CHAT),
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    capMs: 120_000
  })

try {
  console.log(`paired: ${rounds} rounds of ${requests} requests at 50 connections${args.cache ? " (cache hits)" : ""}, pinning ${pin ? "on" : "off"}`)
  for (const side of sides) console.log(`  ${side.name}: ${path.relative(process.cwd(), path.resolve(side.bin))} ${side.nodeArgs.join(" ")}`)
  // Warm-up: the JIT, the pools, and (with --cache) the stored answer.
  for (const side of sides) await load(side, requests)
  const ratios = []
  for (let round = 0; round < rounds; round++) {
    const us = {}
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const before = readCpuMs(side.process.pid)
      const result = await load(side, requests)
      const spent = readCpuMs(side.process.pid) - before
      if (result.completed2xx === 0 || result.truncated) throw new Error(`${side.name}: ${result.completed2xx} requests completed${result.truncated ? " before the time cap" : ""}`)
      us[side.name] = (spent * 1000) / result.completed2xx
      ;(side.cpu ??= []).push(us[side.name])
      side.peakMb = Math.max(side.peakMb ?? 0, readMemory(side.process.pid).hwmKb / 1024)
    }
    ratios.push(us.B / us.A)
    console.log(`round ${round + 1}: A ${us.A.toFixed(0)} us, B ${us.B.toFixed(0)} us per request, B/A ${(us.B / us.A).toFixed(3)}`)
  }
  for (const side of sides) console.log(`${side.name}: median ${median(side.cpu).toFixed(0)} us of CPU per request, peak RSS ${side.peakMb.toFixed(1)} MB`)
  console.log(`median B/A ${median(ratios).toFixed(3)} (rounds ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})`)
} finally {
  for (const side of sides) await stopProcess(side.process)
  await stopProcess(upstream)
  rmSync(dir, { recursive: true, force: true })
}
