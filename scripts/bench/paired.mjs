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
//        [--a-args="FLAGS"] [--b-args="FLAGS"] [--a-metrics off|on|otlp] [--b-metrics off|on|otlp]
//        [--cache] [--rounds N] [--requests N] [--together [--generations N]]
//
// --together loads both at the same time instead of in turn (see pairTogether below): it sees a
// difference of a few percent where rounds in turn see tens.
//
// --a-bin/--b-bin default to dist/bin.js; build another with `git worktree add` and `npm run build`
// there. --cache sends every request after the first to the cache (the tg cache-hit target).
// --a-metrics/--b-metrics: off (server.admin: false, so no metric is counted), on (the default),
// otlp (on, and OTLP export to a receiver in this process that discards what it gets).
//
// --stream pairs the time to first byte of paced streams at one connection instead (the bench's
// stream TTFB @1: 50 chunks 2 ms apart, one stream after another): each round sends --streams
// streams to each process in turn, and the median of the per-round differences B - A (in ms) is
// what to read. Over sockets one stream at a time is cold work and swings from round to round by
// several hundred microseconds here: it sees a difference of a few hundred, not of tens (see the
// README beside this file).
import * as path from "node:path"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { tollgateConfig } from "./fixtures.mjs"
import { adminUrlOf, median, pinningSupport, readCpuMs, readMemory, startMockUpstream, startProcess, startTollgate, stopProcess } from "./lib.mjs"
import { jsonRequests, pacedStreams } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const BIN = path.join(HERE, "..", "..", "dist", "bin.js")
const USAGE = "usage: node scripts/bench/paired.mjs [--a-bin FILE] [--b-bin FILE] [--a-args=\"FLAGS\"] [--b-args=\"FLAGS\"]\n" +
  "         [--a-metrics off|on|otlp] [--b-metrics off|on|otlp] [--cache | --stream [--streams N] | --together [--generations N >= 1]] [--rounds N >= 1] [--requests N >= 50]\n" +
  "         (node flags after '=': --b-args=\"--heap-growing-percent=0\")"
const OPTIONS = {
  "a-bin": { type: "string", default: BIN },
  "b-bin": { type: "string", default: BIN },
  "a-args": { type: "string", default: "" },
  "b-args": { type: "string", default: "" },
  "a-metrics": { type: "string", default: "on" },
  "b-metrics": { type: "string", default: "on" },
  cache: { type: "boolean", default: false },
  stream: { type: "boolean", default: false },
  streams: { type: "string", default: "20" },
  rounds: { type: "string", default: "10" },
  together: { type: "boolean", default: false },
  generations: { type: "string", default: "3" },
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
const streams = Number(args.streams)
const generations = Number(args.generations)
const METRICS = ["off", "on", "otlp"]
if (args.help || !(rounds >= 1) || !(requests >= 50) || !(streams >= 1) || !(generations >= 1) || (args.stream && args.cache) || (args.stream && args.together) || !METRICS.includes(args["a-metrics"]) || !METRICS.includes(args["b-metrics"])) {
  console.log(USAGE)
  process.exit(args.help ? 0 : 2)
}
const pin = pinningSupport().ok
const dir = mkdtempSync(path.join(os.tmpdir(), "tollgate-paired-"))
const flags = (text) => text.split(/\s+/).filter((a) => a !== "")

const upstream = await startMockUpstream({ pin })

// --x-metrics otlp exports to `otlp-sink.mjs` (its own process, on core 1), which reads each export and answers {}.
const sink = [args["a-metrics"], args["b-metrics"]].includes("otlp")
  ? await startProcess({
    name: "otlp sink",
    command: process.execPath,
    args: [path.join(HERE, "otlp-sink.mjs")],
    core: 1,
    pin,
    ready: /otlp sink listening on (http:\/\/127\.0\.0\.1:\d+)/
  }).then((handle) => ({ url: handle.match[1], handle }))
  : undefined

/** Each side's config: metrics off is `server.admin: false` (nothing is counted then); otlp adds the export. */
const start = (name, bin, nodeArgs, metrics) => {
  const config = path.join(dir, `${name}.yaml`)
  writeFileSync(config, tollgateConfig({ upstreamBase: `${upstream.match[1]}/v1`, cache: args.cache, admin: metrics !== "off" }))
  const env = metrics === "otlp" ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } : {}
  return startTollgate({ name, bin: path.resolve(bin), nodeArgs, config, db: path.join(dir, `${name}.db`), cwd: dir, pin, env })
}
const sides = [
  { name: "A", bin: args["a-bin"], nodeArgs: flags(args["a-args"]), metrics: args["a-metrics"] },
  { name: "B", bin: args["b-bin"], nodeArgs: flags(args["b-args"]), metrics: args["b-metrics"] }
]
for (const side of sides) side.process = await start(side.name, side.bin, side.nodeArgs, side.metrics)

const load = (side, amount) => jsonRequests(side.process.match[1], amount)
const paced = (side, count) => pacedStreams(side.process.match[1], count)

/** Rounds of paced streams, one at a time, to each side in turn; B - A of each round's TTFB p50. */
const pairStreams = async () => {
  for (const side of sides) await paced(side, streams)
  const differences = []
  for (let round = 0; round < rounds; round++) {
    const p50 = {}
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const result = await paced(side, streams)
      if (result.valid !== streams) throw new Error(`${side.name}: ${result.valid} of ${streams} streams valid (${result.failures.join("; ")})`)
      p50[side.name] = result.ttfbMs.p50
      ;(side.ttfb ??= []).push(result.ttfbMs.p50)
      side.peakMb = Math.max(side.peakMb ?? 0, readMemory(side.process.pid).hwmKb / 1024)
    }
    differences.push(p50.B - p50.A)
    console.log(`round ${round + 1}: TTFB p50 A ${p50.A.toFixed(3)} ms, B ${p50.B.toFixed(3)} ms, B-A ${(p50.B - p50.A).toFixed(3)}`)
  }
  for (const side of sides) console.log(`${side.name}: median of round TTFB p50s ${median(side.ttfb).toFixed(3)} ms, peak RSS ${side.peakMb.toFixed(1)} MB`)
  const sorted = [...differences].sort((a, b) => a - b)
  const quartile = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  console.log(`median B-A ${median(differences).toFixed(3)} ms (quartiles ${quartile(0.25).toFixed(3)} / ${quartile(0.75).toFixed(3)}, rounds ${sorted[0].toFixed(3)} to ${sorted[sorted.length - 1].toFixed(3)})`)
}

/** Rounds of --requests JSON requests at 50 connections to each side in turn; B/A of the CPU per request. */
const pairRequests = async () => {
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
}

/**
 * Both sides loaded at the same time, on the same core, with the same count of requests: they share
 * the core's time, so B's answers over A's, counted until the first is done, are the inverse of
 * their CPU per request under the same conditions (a busy spell slows both alike). The pair is
 * started afresh for each of --generations (a process can run a few percent apart from another of
 * its kind for as long as both live), two warm-up rounds each, then --rounds.
 */
const pairTogether = async () => {
  const ratios = []
  const byGeneration = []
  for (let g = 0; g < generations; g++) {
    if (g > 0) {
      for (const side of sides) await stopProcess(side.process)
      for (const side of g % 2 === 0 ? sides : [...sides].reverse()) side.process = await start(side.name, side.bin, side.nodeArgs, side.metrics)
    }
    const own = []
    for (let round = -2; round < rounds; round++) {
      const [a, b] = await Promise.all(sides.map((side) => jsonRequests(side.process.match[1], requests, { connections: 25, arrivals: true })))
      for (const [side, r] of [[sides[0], a], [sides[1], b]]) {
        if (r.completed2xx === 0 || r.truncated || r.non2xx > 0) throw new Error(`${side.name}: ${r.completed2xx} requests answered 2xx, ${r.non2xx} not${r.truncated ? ", cut at the time cap" : ""}`)
        side.peakMb = Math.max(side.peakMb ?? 0, readMemory(side.process.pid).hwmKb / 1024)
      }
      // As Prometheus would, and as the bench's metrics section does: each side with an admin listener is scraped once a round.
      for (const side of sides) {
        const admin = adminUrlOf(side.process)
        if (admin !== undefined) await fetch(`${admin}/metrics`).then((r) => r.text())
      }
      if (round < 0) continue
      const end = Math.min(a.arrivals.at(-1), b.arrivals.at(-1))
      const within = (r) => r.arrivals.filter((t) => t <= end).length
      const ratio = within(b) / within(a)
      own.push(ratio)
      console.log(`generation ${g + 1} round ${round + 1}: B/A requests answered ${ratio.toFixed(3)}`)
    }
    ratios.push(...own)
    byGeneration.push(median(own))
  }
  for (const side of sides) console.log(`${side.name}: peak RSS ${side.peakMb.toFixed(1)} MB`)
  console.log(`median B/A requests answered ${median(ratios).toFixed(3)} (rounds ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}, ` +
    `generations ${Math.min(...byGeneration).toFixed(3)}-${Math.max(...byGeneration).toFixed(3)}); above 1, B answers more`)
}

try {
  const what = args.stream
    ? `${streams} paced streams (50 chunks x 2 ms) at 1 connection`
    : args.together
    ? `${requests} requests to each at 25 connections each, both at once, in ${generations} generation(s)`
    : `${requests} requests at 50 connections${args.cache ? " (cache hits)" : ""}`
  console.log(`paired: ${rounds} rounds of ${what}, pinning ${pin ? "on" : "off"}`)
  for (const side of sides) console.log(`  ${side.name}: ${path.relative(process.cwd(), path.resolve(side.bin))} ${side.nodeArgs.join(" ")} (metrics ${side.metrics})`)
  // Warm-up: the JIT, the pools, and (with --cache) the stored answer.
  if (!args.together) for (const side of sides) await load(side, requests)
  await (args.stream ? pairStreams() : args.together ? pairTogether() : pairRequests())
} finally {
  for (const side of sides) await stopProcess(side.process)
  await stopProcess(upstream)
  if (sink !== undefined) await stopProcess(sink.handle, { signal: "SIGINT" })
  rmSync(dir, { recursive: true, force: true })
}
