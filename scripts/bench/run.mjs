#!/usr/bin/env node
// `npm run bench`: tollgate against a direct connection and a raw Node proxy, on one machine.
// See scripts/bench/README.md for what is measured and how to read the output.
//
//   npm run bench [-- --quick] [--only direct,raw,tollgate,cache,responses,metrics,telemetry,cli] [--duration S]
//                 [--cpu-prof] [--no-pin] [--strict] [--keep]
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { request } from "undici"
import {
  adminUrlOf,
  fmt,
  fmtInt,
  memorySampler,
  median,
  pinningSupport,
  pinSelf,
  readCpuMs,
  renderTable,
  stamp,
  startMockUpstream,
  startProcess,
  startRawProxy,
  startTollgate,
  stopProcess
} from "./lib.mjs"
import { ANSWER, CHAT, RESPONSES, tollgateConfig } from "./fixtures.mjs"
import { runCannon, runStreams } from "./load.mjs"
import { renderProfile, summarizeProfile } from "./profile.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, "../..")
const RESULTS = path.join(HERE, "results")
const PROF_DIR = path.join(RESULTS, "prof")

const TARGETS = ["direct", "raw", "tollgate", "cache"]
const LABEL = { direct: "direct", raw: "raw proxy", tollgate: "tollgate", cache: "tg cache-hit", floor: "floor" }

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    duration: { type: "string" },
    "chunk-delay": { type: "string", default: "2" },
    chunks: { type: "string", default: "50" },
    "cpu-prof": { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    strict: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "node-args": { type: "string", default: "" },
    pairs: { type: "string", default: "on,otlp,otlp10" },
    bin: { type: "string", default: path.join(ROOT, "dist/bin.js") },
    help: { type: "boolean", short: "h", default: false }
  }
})

if (args.help) {
  console.log(`usage: npm run bench -- [options]

  --quick              short run (~3 s per scenario, 20k telemetry events; about 2-3 minutes)
  --duration S         seconds per measured scenario (default 10, 3 with --quick)
  --only LIST          comma-separated subset of: direct,raw,tollgate,cache,responses,metrics,telemetry,cli
  --chunk-delay MS     pause between SSE chunks on the paced stream (default 2)
  --chunks N           SSE content chunks per stream (default 50)
  --cpu-prof           run tollgate under node --cpu-prof (profiles in scripts/bench/results/prof)
  --no-pin             do not pin processes to cores with taskset
  --strict             exit 1 if any target is FAIL
  --keep               keep the temporary directory (configs, ledgers)
  --pairs LIST         with metrics: which of on,otlp,otlp10 to load together with metrics off (default all)
  --node-args="..."    extra node flags for the tollgate processes (e.g. --node-args="--v8-pool-size=2",
                       what npm start gives)
  --bin FILE           the tollgate executable to run (default dist/bin.js; another build's, to compare)`)
  process.exit(0)
}

const BIN = path.resolve(args.bin)
const QUICK = args.quick
const DURATION_S = args.duration !== undefined ? Number(args.duration) : QUICK ? 3 : 10
const CHUNK_DELAY_MS = Number(args["chunk-delay"])
const CHUNKS = Number(args.chunks)
const TELEMETRY_EVENTS = QUICK ? 20_000 : 100_000
const SECTIONS = [...TARGETS, "responses", "metrics", "telemetry", "cli"]
const selected = new Set(
  (args.only ?? SECTIONS.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
)
for (const name of selected) {
  if (!SECTIONS.includes(name)) {
    console.error(`--only: unknown name "${name}" (expected some of ${SECTIONS.join(",")})`)
    process.exit(2)
  }
}
if (!(DURATION_S > 0)) {
  console.error("--duration must be a positive number of seconds")
  process.exit(2)
}

// Warm-up per target: a short probe to learn its rate, then rounds of `roundSeconds` at 50
// connections until two rounds in a row agree within 10% (JIT settled) or `maxSeconds` have
// passed, then a short run at 1 connection and a few paced streams.
const WARMUP = QUICK
  ? { roundSeconds: 0.75, maxSeconds: 5, streamMs: 600 }
  : { roundSeconds: 1.5, maxSeconds: 15, streamMs: 1_500 }

// ---------------------------------------------------------------------------------------------
// Requests

const JSON_BODY = JSON.stringify(CHAT)
const STREAM_BODY = JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } })
const HEADERS = {
  "content-type": "application/json",
  authorization: "Bearer sk-bench-0000000000000000",
  "user-agent": "tollgate-bench/1"
}
const STREAM_HEADERS = { ...HEADERS, accept: "text/event-stream", "x-bench-chunk-delay-ms": String(CHUNK_DELAY_MS) }
const ANSWER_JSON = JSON.stringify(ANSWER)
const verifyCompletion = (body) => body.includes("\"chat.completion\"") && body.includes("\"usage\"") && body.includes(ANSWER_JSON)

// ---------------------------------------------------------------------------------------------
// Processes

const pinning = args["no-pin"] ? { ok: false, reason: "disabled by --no-pin" } : pinningSupport()
const PIN = pinning.ok
// The load generator (this process) shares core 1 with the mock upstream; proxies get core 0.
if (PIN && !pinSelf(1)) console.log("note: could not pin the load generator to core 1")

const log = (line) => console.log(`· ${line}`)

const workDir = mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-"))
const cleanup = () => {
  if (!args.keep) rmSync(workDir, { recursive: true, force: true })
}
process.on("SIGINT", () => {
  console.log("\ninterrupted: stopping the processes this run started")
  cleanup()
  process.exit(130) // the exit hook in lib.mjs kills the children
})

const startUpstream = ({ name = "mock upstream", core = 1 } = {}) =>
  startMockUpstream({ name, core, pin: PIN, args: ["--chunks", String(CHUNKS)] })

const startTollgateTarget = ({ name, upstreamBase, cache, profile = true, admin = true, env = {} }) => {
  const config = path.join(workDir, `${name}.yaml`)
  const db = path.join(workDir, `${name}.db`)
  writeFileSync(config, tollgateConfig({ upstreamBase, cache, admin }))
  const nodeArgs = args["node-args"].split(/\s+/).filter((a) => a !== "")
  let profileName
  if (args["cpu-prof"] && profile) {
    mkdirSync(PROF_DIR, { recursive: true })
    profileName = `${name}-${RUN_STAMP}.cpuprofile`
    nodeArgs.push("--cpu-prof", "--cpu-prof-dir", PROF_DIR, "--cpu-prof-name", profileName)
  }
  return startTollgate({ name, bin: BIN, nodeArgs, config, db, cwd: workDir, pin: PIN, env }).then((handle) => Object.assign(handle, { db, config, profile: profileName && path.join(PROF_DIR, profileName) }))
}

/** Runs a command to completion (bounded by `timeoutMs`); resolves with { code, stdout, stderr }. */
const runToEnd = (command, argv, { timeoutMs, env, core } = {}) =>
  new Promise((resolve) => {
    const full = PIN && core !== undefined ? ["taskset", "-c", String(core), command, ...argv] : [command, ...argv]
    const child = spawn(full[0], full.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c) => (stdout += c))
    child.stderr.on("data", (c) => (stderr += c))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs ?? 60_000)
    child.once("error", (error) => {
      clearTimeout(timer)
      resolve({ code: -1, stdout, stderr: stderr + error.message })
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal, stdout, stderr })
    })
  })

// ---------------------------------------------------------------------------------------------
// Ledger

/** Row counts by SQL (better-sqlite3), cross-checked with `tollgate stats --json --since all`. */
const readLedger = async (db) => {
  const out = { rows: undefined, ok: undefined, aborted: undefined, streams: undefined, cacheHits: undefined, statsRequests: undefined }
  try {
    const { default: Database } = await import("better-sqlite3")
    const sqlite = new Database(db, { readonly: true })
    const row = sqlite
      .prepare(
        `SELECT COUNT(*) AS rows, COALESCE(SUM(status BETWEEN 200 AND 299), 0) AS ok, COALESCE(SUM(aborted), 0) AS aborted,
                COALESCE(SUM(stream), 0) AS streams, COALESCE(SUM(cache_status = 'hit'), 0) AS cacheHits FROM requests`
      )
      .get()
    sqlite.close()
    Object.assign(out, row)
  } catch (error) {
    out.error = `better-sqlite3: ${error.message}`
  }
  const stats = await runToEnd(process.execPath, [BIN, "stats", "--json", "--since", "all", "--db", db], { timeoutMs: 30_000 })
  try {
    const parsed = JSON.parse(stats.stdout)
    out.statsRequests = parsed.rows.reduce((n, r) => n + r.requests, 0)
  } catch {
    out.statsError = `tollgate stats failed (code ${stats.code}): ${stats.stderr.slice(0, 300)}`
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** What a tollgate instance answered, as the clients saw it: compared to its ledger at the end. */
const newAccount = () => ({ completed2xx: 0, non2xx: 0, errors: 0, truncated: false })
const addCannon = (account, r) => {
  if (account === undefined) return r
  account.completed2xx += r.completed2xx
  account.non2xx += r.non2xx
  account.errors += r.errors
  account.truncated ||= r.truncated
  return r
}
const addStreams = (account, r) => {
  if (account === undefined) return r
  account.completed2xx += r.completed2xx
  account.non2xx += r.completedOther
  account.errors += r.errors
  return r
}

const problems = []
const noteProblems = (target, scenario, r) => {
  const bad = (r.non2xx ?? r.completedOther ?? 0) + (r.errors ?? 0) + (r.mismatches ?? 0) + (r.invalid ?? 0)
  if (bad > 0 || r.truncated) {
    const detail = r.failures?.length ? `: ${r.failures.join("; ")}` : r.statusCodes ? `: status ${JSON.stringify(r.statusCodes)}` : ""
    problems.push(`${LABEL[target] ?? target} ${scenario}: ${bad} bad response(s)${r.truncated ? ", stopped by its time cap" : ""}${detail}`)
  }
}

const capMs = (seconds) => Math.round(seconds * 2_000 + 5_000)

/**
 * Runs `run` and adds the CPU time the server process (`pid`: the proxy, or the upstream for direct)
 * spent meanwhile: `serverCpu.msPerRequest` (per completed request or stream) and `.percent` of one core.
 */
const withCpu = async (pid, run) => {
  const before = readCpuMs(pid)
  const t = performance.now()
  const result = await run()
  const after = readCpuMs(pid)
  const wallMs = performance.now() - t
  if (before !== undefined && after !== undefined) {
    const n = result.completed2xx + (result.non2xx ?? result.completedOther ?? 0)
    result.serverCpu = {
      ms: Math.round(after - before),
      msPerRequest: n > 0 ? (after - before) / n : undefined,
      percent: (100 * (after - before)) / wallMs
    }
  }
  return result
}

/**
 * The two loads against `base` (…/v1), each with the server's CPU (`pid`): autocannon JSON requests,
 * and paced streams read to the end and checked.
 */
const loadsFor = (target, base, pid) => {
  const url = `${base}/chat/completions`
  return {
    cannon: (connections, amount, seconds) =>
      withCpu(pid, () =>
        runCannon({ url, connections, amount, body: JSON_BODY, headers: HEADERS, capMs: capMs(seconds), verify: verifyCompletion })),
    streams: (connections, durationMs) =>
      withCpu(pid, () => runStreams({
        url,
        connections,
        durationMs,
        maxStreams: 1_000_000,
        body: STREAM_BODY,
        headers: STREAM_HEADERS,
        // A cache hit may replay the stream with other chunking (e.g. a stream made from a cached JSON
        // answer): there only the text, the usage chunk and [DONE] are checked.
        expect: { chunks: target === "cache" ? undefined : CHUNKS, usage: true, text: ANSWER }
      }))
  }
}

/** Warm-up, then the four measured scenarios, against `base` (…/v1); `pid` is the server process. */
const measure = async (target, base, account, pid) => {
  const { cannon, streams } = loadsFor(target, base, pid)

  // Amount mode: size each run from a measured rate so that it lasts about `seconds`.
  const amountFor = (rps, connections, seconds) => Math.max(connections * 10, Math.round(rps * seconds))

  const warmStart = performance.now()
  const probe50 = addCannon(account, await cannon(50, 500, 10))
  noteProblems(target, "warm-up (probe, 50 conn)", probe50)
  const rounds = []
  let warm50 = probe50
  while (performance.now() - warmStart < WARMUP.maxSeconds * 1000) {
    const previous = warm50.rps
    warm50 = addCannon(account, await cannon(50, amountFor(previous, 50, WARMUP.roundSeconds), WARMUP.roundSeconds))
    noteProblems(target, "warm-up (50 conn)", warm50)
    rounds.push(Math.round(warm50.rps))
    if (rounds.length >= 2 && Math.abs(warm50.rps - previous) <= 0.1 * previous) break
  }
  log(`${LABEL[target]}: warm-up at 50 connections, req/s per round: ${rounds.join(", ")}`)
  const probe1 = addCannon(account, await cannon(1, 100, 10))
  const warm1 = addCannon(account, await cannon(1, amountFor(probe1.rps, 1, WARMUP.roundSeconds), WARMUP.roundSeconds))
  const warmStreams = addStreams(account, await streams(10, WARMUP.streamMs))
  for (const [name, r] of [["probe, 1 conn", probe1], ["1 conn", warm1], ["streams", warmStreams]]) {
    noteProblems(target, `warm-up (${name})`, r)
  }

  log(`${LABEL[target]}: non-streaming, 50 connections`)
  const ns50 = addCannon(account, await cannon(50, amountFor(warm50.rps, 50, DURATION_S), DURATION_S))
  noteProblems(target, "non-streaming 50 conn", ns50)
  log(`${LABEL[target]}: non-streaming, 1 connection`)
  const ns1 = addCannon(account, await cannon(1, amountFor(warm1.rps, 1, DURATION_S), DURATION_S))
  noteProblems(target, "non-streaming 1 conn", ns1)
  log(`${LABEL[target]}: paced stream (${CHUNKS} chunks x ${CHUNK_DELAY_MS} ms), 1 connection`)
  const st1 = addStreams(account, await streams(1, DURATION_S * 1000))
  noteProblems(target, "stream 1 conn", st1)
  log(`${LABEL[target]}: paced stream, 10 connections`)
  const st10 = addStreams(account, await streams(10, DURATION_S * 1000))
  noteProblems(target, "stream 10 conn", st10)
  if (target === "cache") {
    const seen = Object.entries(st10.contentChunks).map(([n, count]) => `${count} with ${n}`).join(", ")
    log(`${LABEL[target]}: streams served from the cache had content chunks: ${seen} (the upstream sends ${CHUNKS})`)
  }
  return { ns50, ns1, st1, st10, warmup: { rounds50: rounds, ns1: warm1.rps, seconds: (performance.now() - warmStart) / 1000 } }
}

/**
 * The throughput ratios, measured so that a busy spell on a shared machine does not decide them:
 * the raw proxy, tollgate and (when selected) tollgate cache-hit run side by side (idle when not
 * loaded), and get short rounds at 50 connections in turn. Each round's ratio is taken against the
 * raw proxy's round just before it, and the median of those is reported.
 */
const INTERLEAVED = QUICK ? { rounds: 5, seconds: 1 } : { rounds: 15, seconds: 2 }
const interleaved = async (upstreamBase) => {
  const names = ["raw", "tollgate", ...(selected.has("cache") ? ["cache"] : [])]
  const procs = {}
  try {
    for (const name of names) {
      procs[name] = name === "raw"
        ? await startRawProxy({ upstreamBase, pin: PIN })
        : await startTollgateTarget({ name: `${name === "cache" ? "tollgate-cache" : "tollgate"}-interleaved`, upstreamBase, cache: name === "cache", profile: false })
      procs[name].account = newAccount()
    }
    const round = async (name, amount) => {
      const p = procs[name]
      const r = addCannon(p.account, await withCpu(p.pid, () =>
        runCannon({ url: `${p.match[1]}/chat/completions`, connections: 50, amount, body: JSON_BODY, headers: HEADERS, capMs: capMs(INTERLEAVED.seconds * 4), verify: verifyCompletion })))
      noteProblems(name, "interleaved round", r)
      return r
    }
    if (procs.cache) {
      // Fill the cache: every later request is a hit.
      await round("cache", 50)
    }
    const rate = {}
    for (const name of names) {
      for (let i = 0; i < 3; i++) rate[name] = (await round(name, Math.max(500, Math.round((rate[name] ?? 500) * INTERLEAVED.seconds)))).rps
    }
    const rounds = Object.fromEntries(names.map((n) => [n, []]))
    for (let i = 0; i < INTERLEAVED.rounds; i++) {
      for (const name of names) {
        const r = await round(name, Math.max(500, Math.round(rate[name] * INTERLEAVED.seconds)))
        rounds[name].push({ rps: r.rps, cpuMsPerRequest: r.serverCpu?.msPerRequest })
      }
    }
    const out = { rounds: INTERLEAVED.rounds, seconds: INTERLEAVED.seconds, perRound: rounds }
    for (const name of names.slice(1)) {
      const rps = rounds[name].map((r, i) => r.rps / rounds.raw[i].rps)
      const cpu = rounds[name].map((r, i) => r.cpuMsPerRequest / rounds.raw[i].cpuMsPerRequest)
      out[name] = { rpsRatio: median(rps), rpsRatioMin: Math.min(...rps), rpsRatioMax: Math.max(...rps), cpuRatio: median(cpu) }
      log(`interleaved: ${LABEL[name]}/raw req/s per round ${rps.map((x) => x.toFixed(2)).join(" ")} (median ${median(rps).toFixed(2)}), CPU per request ${median(cpu).toFixed(2)}x raw`)
    }
    return out
  } finally {
    for (const name of Object.keys(procs)) {
      const p = procs[name]
      const stopped = await stopProcess(p, { signal: "SIGINT", timeoutMs: 60_000 })
      if (stopped.killed) problems.push(`${LABEL[name]} (interleaved) did not exit within 60 s of SIGINT (killed)`)
      if (p.db !== undefined) {
        // The same ledger check as for the main runs: one row per request answered.
        const ledger = await readLedger(p.db)
        const completed = p.account.completed2xx + p.account.non2xx
        if (ledger.rows !== completed) problems.push(`${LABEL[name]} (interleaved): ${ledger.rows} ledger rows for ${completed} completed requests`)
      }
    }
  }
}

/**
 * The Responses API passed through (`--only responses`): the raw proxy and tollgate side by side,
 * interleaved rounds of JSON `/responses` requests at 50 connections (the median ratio, as for
 * chat), then paced Responses streams at 1 connection on each, for the time to first byte.
 */
const RESPONSES_JSON = JSON.stringify(RESPONSES)
const RESPONSES_STREAM = JSON.stringify({ ...RESPONSES, stream: true })
const verifyResponse = (body) => body.includes("\"object\":\"response\"") && body.includes("\"usage\"") && body.includes(ANSWER_JSON)
const measureResponses = async (upstreamBase) => {
  const procs = {}
  try {
    procs.raw = await startRawProxy({ upstreamBase, pin: PIN })
    procs.tollgate = await startTollgateTarget({ name: "tollgate-responses", upstreamBase, cache: false, profile: false })
    for (const p of Object.values(procs)) p.account = newAccount()
    const round = async (name, amount) => {
      const p = procs[name]
      const r = addCannon(p.account, await withCpu(p.pid, () =>
        runCannon({ url: `${p.match[1]}/responses`, connections: 50, amount, body: RESPONSES_JSON, headers: HEADERS, capMs: capMs(INTERLEAVED.seconds * 4), verify: verifyResponse })))
      noteProblems(name, "responses round", r)
      return r
    }
    const rate = {}
    for (const name of ["raw", "tollgate"]) {
      for (let i = 0; i < 3; i++) rate[name] = (await round(name, Math.max(500, Math.round((rate[name] ?? 500) * INTERLEAVED.seconds)))).rps
    }
    const ratios = []
    for (let i = 0; i < INTERLEAVED.rounds; i++) {
      const raw = await round("raw", Math.max(500, Math.round(rate.raw * INTERLEAVED.seconds)))
      const tg = await round("tollgate", Math.max(500, Math.round(rate.tollgate * INTERLEAVED.seconds)))
      ratios.push(tg.rps / raw.rps)
    }
    log(`responses: tollgate/raw req/s per round ${ratios.map((x) => x.toFixed(2)).join(" ")} (median ${median(ratios).toFixed(2)})`)
    const streamsOf = async (name) => {
      const p = procs[name]
      const r = addStreams(p.account, await withCpu(p.pid, () => runStreams({
        url: `${p.match[1]}/responses`,
        connections: 1,
        durationMs: DURATION_S * 1000,
        maxStreams: 1_000_000,
        body: RESPONSES_STREAM,
        headers: STREAM_HEADERS,
        expect: { responses: true, chunks: CHUNKS, text: ANSWER }
      })))
      noteProblems(name, "responses stream 1 conn", r)
      return r
    }
    await streamsOf("raw") // warm-up for both
    await streamsOf("tollgate")
    const rawStreams = await streamsOf("raw")
    const tgStreams = await streamsOf("tollgate")
    log(`responses: stream TTFB p50 @1 tollgate ${tgStreams.ttfbMs.p50?.toFixed(3)} ms, raw proxy ${rawStreams.ttfbMs.p50?.toFixed(3)} ms`)
    return {
      rounds: INTERLEAVED.rounds,
      rpsRatio: median(ratios),
      rpsRatioMin: Math.min(...ratios),
      rpsRatioMax: Math.max(...ratios),
      stream1: { tollgate: tgStreams, raw: rawStreams }
    }
  } finally {
    for (const name of Object.keys(procs)) {
      const p = procs[name]
      const stopped = await stopProcess(p, { signal: "SIGINT", timeoutMs: 60_000 })
      if (stopped.killed) problems.push(`${LABEL[name]} (responses) did not exit within 60 s of SIGINT (killed)`)
      if (p.db !== undefined) {
        const ledger = await readLedger(p.db)
        const completed = p.account.completed2xx + p.account.non2xx
        if (ledger.rows !== completed) problems.push(`tollgate (responses): ${ledger.rows} ledger rows for ${completed} completed requests`)
      }
    }
  }
}

/**
 * Metrics and OpenTelemetry (`--only metrics`): each of metrics on (the default: the admin
 * listener and its counters, scraped once a round as Prometheus would), metrics on with OTLP
 * export (`OTEL_EXPORTER_OTLP_ENDPOINT` at a receiver in this process that reads and discards),
 * and the same with one span in ten (`OTEL_TRACES_SAMPLER=traceidratio`, `_ARG=0.1`), against
 * metrics off (`server.admin: false`, so nothing is counted), the two loaded at the same time,
 * both on core 0, 25 connections each. The core's time is shared between them, so the ratio of
 * the requests each answered over the same span of time is the inverse of their CPU per request,
 * read under the same conditions: a busy spell on this shared machine slows both alike. Taken in
 * turn, as the other sections do, one round to the next varied by +-20% and the features' cost
 * drowned in it (docs/performance.md).
 *
 * In generations: each pair is started afresh for each (in a turning order), as one process of a
 * kind can run a few percent faster or slower than another of the same kind for as long as both
 * live. The median of all rounds is what to read (issue #26: within 3%), the spread of the
 * generations' own medians beside it.
 */
const METRICS_RUN = QUICK ? { generations: 1, rounds: 3, seconds: 2 } : { generations: 3, rounds: 4, seconds: 4 }
const PAIR_CONNECTIONS = 25
const PAIRS = args.pairs.split(",").map((p) => p.trim()).filter((p) => p !== "")
if (PAIRS.length === 0 || PAIRS.some((p) => !["off", "on", "otlp", "otlp10"].includes(p))) {
  console.error(`--pairs: expected a comma-separated subset of off,on,otlp,otlp10; got "${args.pairs}"`)
  process.exit(2)
}

/** The OTLP receiver (`otlp-sink.mjs`, its own process on core 1); `stop` gives its counts. */
const startOtlpSink = async () => {
  const handle = await startProcess({
    name: "otlp sink",
    command: process.execPath,
    args: [path.join(HERE, "otlp-sink.mjs")],
    core: 1,
    pin: PIN,
    ready: /otlp sink listening on (http:\/\/127\.0\.0\.1:\d+)/
  })
  return {
    url: handle.match[1],
    stop: async () => {
      await stopProcess(handle, { signal: "SIGINT", timeoutMs: 10_000 })
      const line = handle.lines.find((l) => l.startsWith("otlp sink counts "))
      return line === undefined ? { requests: 0, bytes: 0 } : JSON.parse(line.slice("otlp sink counts ".length))
    }
  }
}

const measureMetrics = async (upstreamBase) => {
  const sink = await startOtlpSink()
  let stopped = false
  const ENV = {
    off: {},
    on: {},
    otlp: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url },
    otlp10: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" }
  }
  const scrapes = { ok: 0, failed: 0 }
  const exported = { requests: 0 }
  let pair = {}
  const stopPair = async () => {
    for (const [side, p] of Object.entries(pair)) {
      const stopped = await stopProcess(p, { signal: "SIGINT", timeoutMs: 60_000 })
      if (stopped.killed) problems.push(`tollgate metrics ${p.kind} did not exit within 60 s of SIGINT (killed)`)
      const ledger = await readLedger(p.db)
      const completed = p.account.completed2xx + p.account.non2xx
      if (ledger.rows !== completed) problems.push(`tollgate metrics ${p.kind}: ${ledger.rows} ledger rows for ${completed} completed requests`)
      if (side !== "off" && p.kind.startsWith("otlp")) exported.requests += completed
    }
    pair = {}
  }
  const scrape = async (p) => {
    const admin = adminUrlOf(p)
    if (admin === undefined) return
    try {
      const r = await request(`${admin}/metrics`)
      const text = await r.body.text()
      if (r.statusCode === 200 && text.includes("tollgate_requests_total")) scrapes.ok++
      else scrapes.failed++
    } catch {
      scrapes.failed++
    }
  }
  const load = (p, amount) =>
    withCpu(p.pid, () =>
      runCannon({ url: `${p.match[1]}/chat/completions`, connections: PAIR_CONNECTIONS, amount, body: JSON_BODY, headers: HEADERS, capMs: capMs(METRICS_RUN.seconds * 4), verify: verifyCompletion, arrivals: true }))
  /** Both loaded at once with the same count; compared over the time until the first is done (the other then runs alone). */
  const together = async (amount) => {
    const [off, it] = await Promise.all([load(pair.off, amount), load(pair.it, amount)])
    for (const [p, r] of [[pair.off, off], [pair.it, it]]) {
      addCannon(p.account, r)
      noteProblems(p.kind, "metrics round", r)
    }
    await scrape(pair.it)
    const end = Math.min(off.arrivals.at(-1) ?? 0, it.arrivals.at(-1) ?? 0)
    const within = (r) => r.arrivals.filter((t) => t <= end).length
    return {
      ratio: within(it) / Math.max(1, within(off)),
      cpuRatio: it.serverCpu?.msPerRequest / off.serverCpu?.msPerRequest,
      offRps: off.overallRps
    }
  }
  try {
    const out = { method: "pairs loaded together on core 0", generations: METRICS_RUN.generations, rounds: METRICS_RUN.rounds, seconds: METRICS_RUN.seconds, connections: PAIR_CONNECTIONS, scrapes }
    // What one tollgate answers per second while it shares the core: found by the first warm-up.
    let rate = 1000
    for (const name of PAIRS) {
      const ratios = []
      const cpu = []
      const byGeneration = []
      for (let g = 0; g < METRICS_RUN.generations; g++) {
        for (const side of g % 2 === 0 ? ["off", "it"] : ["it", "off"]) {
          const kind = side === "off" ? "off" : name
          // `--pairs off` pairs metrics off with itself: what the method reads where there is no difference.
          pair[side] = await startTollgateTarget({ name: `tollgate-metrics-${name}-${side}-${g}`, upstreamBase, cache: false, profile: false, admin: kind !== "off", env: ENV[kind] })
          Object.assign(pair[side], { kind, account: newAccount() })
        }
        // Warm-up: two rounds (the first two measured after one read ~6% apart from the next two).
        for (let i = 0; i < 2; i++) rate = (await together(Math.max(500, Math.round(rate * METRICS_RUN.seconds)))).offRps
        const own = []
        for (let i = 0; i < METRICS_RUN.rounds; i++) {
          const r = await together(Math.max(500, Math.round(rate * METRICS_RUN.seconds)))
          own.push(r.ratio)
          cpu.push(r.cpuRatio)
        }
        ratios.push(...own)
        byGeneration.push(median(own))
        await stopPair()
      }
      out[name] = {
        rpsRatio: median(ratios), rpsRatioMin: Math.min(...ratios), rpsRatioMax: Math.max(...ratios), cpuRatio: median(cpu),
        generationMin: Math.min(...byGeneration), generationMax: Math.max(...byGeneration), perRound: ratios
      }
      log(`metrics: ${name}/off, loaded together, req per round ${ratios.map((x) => x.toFixed(3)).join(" ")} (median ${median(ratios).toFixed(3)}; ` +
        `generations ${Math.min(...byGeneration).toFixed(3)}-${Math.max(...byGeneration).toFixed(3)}), CPU per request ${median(cpu).toFixed(3)}x`)
    }
    await stopPair()
    const counts = await sink.stop()
    stopped = true
    out.otlpReceiver = { exports: counts.requests, bytes: counts.bytes, requests: exported.requests, bytesPerRequest: counts.bytes / exported.requests }
    log(`metrics: /metrics scraped ${scrapes.ok} times (${scrapes.failed} failed); the OTLP receiver got ${counts.requests} exports, ` +
      `${fmtInt(counts.bytes)} bytes for ${fmtInt(exported.requests)} requests (${fmtInt(counts.bytes / exported.requests)} bytes each)`)
    if (scrapes.failed > 0) problems.push(`metrics: ${scrapes.failed} scrapes of /metrics failed`)
    return out
  } finally {
    await stopPair()
    if (!stopped) await sink.stop()
  }
}

/**
 * The floor under every latency on core 0: the mock upstream itself (a node:http server that does
 * nothing but answer) started on the proxies' core and loaded from core 1 at 1 connection. Direct
 * runs on core 1 beside the load generator; a proxy on core 0 pays this crossing for the client
 * and again for the upstream, whatever it does.
 */
const measureFloor = async () => {
  const floor = await startUpstream({ name: "floor (mock upstream on core 0)", core: 0 })
  try {
    const loads = loadsFor("floor", `${floor.match[1]}/v1`, floor.pid)
    const cannon = (amount) => loads.cannon(1, amount, DURATION_S)
    const probe = await cannon(200)
    await cannon(Math.max(100, Math.round(probe.rps * WARMUP.roundSeconds)))
    const ns1 = await cannon(Math.max(100, Math.round(probe.rps * DURATION_S / 2)))
    const st1 = await loads.streams(1, DURATION_S * 500)
    noteProblems("floor", "non-streaming 1 conn", ns1)
    noteProblems("floor", "stream 1 conn", st1)
    return { ns1, st1 }
  } finally {
    await stopProcess(floor, { signal: "SIGTERM", timeoutMs: 10_000 })
  }
}

/** Is a repeated deterministic request answered from tollgate's cache? */
const probeCache = async (base, account) => {
  const url = `${base}/chat/completions`
  const once = async (body, headers) => {
    const response = await request(url, { method: "POST", body, headers })
    await response.body.text()
    if (response.statusCode >= 200 && response.statusCode < 300) account.completed2xx++
    else account.non2xx++
    return String(response.headers["x-tollgate-cache"] ?? "")
  }
  const json = [await once(JSON_BODY, HEADERS), await once(JSON_BODY, HEADERS)]
  const stream = [await once(STREAM_BODY, STREAM_HEADERS), await once(STREAM_BODY, STREAM_HEADERS)]
  return { json, stream, jsonHit: json[1] === "hit", streamHit: stream[1] === "hit" }
}

// ---------------------------------------------------------------------------------------------
// Run

const RUN_STAMP = stamp()
const t0 = performance.now()
const results = {
  meta: {
    date: new Date().toISOString(),
    quick: QUICK,
    durationS: DURATION_S,
    pacedStream: { chunks: CHUNKS, chunkDelayMs: CHUNK_DELAY_MS },
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    pinning: PIN ? "proxy under test on core 0; mock upstream and load generator on core 1" : `off (${pinning.reason})`,
    cpuProf: args["cpu-prof"],
    only: [...selected],
    // How tollgate was run: its executable and the node flags it was given.
    tollgate: { bin: path.relative(ROOT, BIN), nodeArgs: args["node-args"].split(/\s+/).filter((a) => a !== "") },
    git: gitInfo()
  },
  targets: {},
  ledger: {},
  telemetry: undefined,
  checks: [],
  problems
}

function gitInfo() {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" })
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" })
  return head.status === 0 ? { commit: head.stdout.trim(), srcDirty: dirty.stdout.trim().length > 0 } : undefined
}

/** Chat requests the mock upstream has received so far. */
const upstreamCount = async (upstreamBase) => {
  const response = await request(`${upstreamBase.replace(/\/v1$/, "")}/stats`)
  return (await response.body.json()).requests
}

const main = async () => {
  const needsTollgate = selected.has("tollgate") || selected.has("cache") || selected.has("telemetry") || selected.has("metrics")
  if (needsTollgate && !existsSync(BIN)) throw new Error(`${path.relative(process.cwd(), BIN)} is missing: run \`npm run build\` first`)
  console.log(
    `tollgate bench: ${QUICK ? "quick" : "full"} run, ${DURATION_S} s per scenario, pinning ${PIN ? "on" : `off (${pinning.reason})`}` +
      `${args["cpu-prof"] ? ", tollgate under --cpu-prof" : ""}`
  )

  const needsUpstream = TARGETS.some((t) => selected.has(t)) || selected.has("responses") || selected.has("metrics")
  const upstream = needsUpstream ? await startUpstream() : undefined
  const upstreamMemory = upstream && memorySampler(upstream.pid)
  const upstreamBase = upstream && `${upstream.match[1]}/v1`
  if (upstream) log(`mock upstream at ${upstreamBase} (pid ${upstream.pid})`)

  const profiles = []
  for (const target of TARGETS) {
    if (!selected.has(target)) continue
    const upstreamBefore = await upstreamCount(upstreamBase)
    if (target === "direct") {
      const account = newAccount()
      results.targets.direct = { ...(await measure("direct", upstreamBase, account, upstream.pid)) }
      results.targets.direct.upstreamCalls = { calls: (await upstreamCount(upstreamBase)) - upstreamBefore, completed: account.completed2xx + account.non2xx }
      if (PIN) {
        log("floor: the mock upstream on core 0 (the proxies' core), 1 connection")
        results.floor = await measureFloor()
      }
      continue
    }
    const isTollgate = target === "tollgate" || target === "cache"
    const handle = target === "raw"
      ? await startRawProxy({ upstreamBase, pin: PIN })
      : await startTollgateTarget({ name: target === "cache" ? "tollgate-cache" : "tollgate", upstreamBase, cache: target === "cache" })
    const base = handle.match[1]
    log(`${LABEL[target]} at ${base} (pid ${handle.pid})`)
    const memory = memorySampler(handle.pid)
    const account = newAccount()
    let entry
    try {
      if (target === "cache") {
        const probe = await probeCache(base, account)
        log(`cache probe: repeated request -> x-tollgate-cache "${probe.json[1] || "(absent)"}", repeated stream -> "${probe.stream[1] || "(absent)"}"`)
        entry = probe.jsonHit
          ? { probe, ...(await measure("cache", base, account, handle.pid)) }
          : { probe, unavailable: "n/a (cache not implemented)" }
        if (probe.jsonHit && !probe.streamHit) entry.streamUnavailable = "n/a (streams not served from cache)"
      } else {
        entry = await measure(target, base, account, handle.pid)
      }
    } finally {
      const peak = memory.peak()
      const stopped = await stopProcess(handle, { signal: "SIGINT", timeoutMs: 60_000 })
      entry ??= {}
      if (account !== undefined) {
        entry.upstreamCalls = { calls: (await upstreamCount(upstreamBase)) - upstreamBefore, completed: account.completed2xx + account.non2xx }
      }
      entry.peakRssMb = peak === undefined ? undefined : peak.peakKb / 1024
      entry.memory = peak
      entry.stop = { code: stopped.code, signal: stopped.signal, killed: stopped.killed, ms: Math.round(stopped.ms) }
      if (stopped.killed) problems.push(`${LABEL[target]} did not exit within 60 s of SIGINT (killed)`)
      else if (stopped.code !== 0 && stopped.code !== 130 && stopped.signal !== "SIGINT") {
        problems.push(`${LABEL[target]} exited with code ${stopped.code} signal ${stopped.signal}: ${handle.stderr.slice(-500)}`)
      }
      results.targets[target] = entry
    }
    if (isTollgate) {
      const ledger = await readLedger(handle.db)
      results.ledger[target] = { client: account, ledger }
      log(`${LABEL[target]} ledger: ${ledger.rows} rows for ${account.completed2xx + account.non2xx} completed requests (stopped in ${entry.stop.ms} ms)`)
      if (handle.profile) profiles.push({ file: handle.profile, measured: !entry.unavailable })
    }
  }

  for (const target of ["direct", "raw", "tollgate"]) {
    const u = results.targets[target]?.upstreamCalls
    if (u !== undefined && u.calls !== u.completed) {
      problems.push(`${LABEL[target]}: the upstream got ${u.calls} requests for ${u.completed} completed client requests (expected equal: no cache, no coalescing)`)
    }
  }

  if (selected.has("responses")) {
    log(`responses: raw proxy and tollgate side by side, /v1/responses passed through, ${INTERLEAVED.rounds} rounds at 50 connections, then paced streams at 1`)
    results.responses = await measureResponses(upstreamBase)
  }

  if (selected.has("metrics")) {
    log(`metrics: ${PAIRS.join(", ")}, each loaded together with metrics off on core 0 (${PAIR_CONNECTIONS} connections each), ` +
      `${METRICS_RUN.generations} generation(s) of ${METRICS_RUN.rounds} rounds of ~${METRICS_RUN.seconds} s`)
    results.metrics = await measureMetrics(upstreamBase)
  }

  if (selected.has("raw") && selected.has("tollgate")) {
    log(`interleaved rounds: raw proxy, tollgate${selected.has("cache") ? ", tg cache-hit" : ""} side by side, ${INTERLEAVED.rounds} rounds of ~${INTERLEAVED.seconds} s each at 50 connections`)
    results.interleaved = await interleaved(upstreamBase)
  }

  if (upstream) {
    const peak = upstreamMemory.peak()
    await stopProcess(upstream, { signal: "SIGTERM", timeoutMs: 10_000 })
    results.upstream = { peakRssMb: peak === undefined ? undefined : peak.peakKb / 1024 }
  }

  if (selected.has("telemetry")) {
    log(`telemetry writer: ${TELEMETRY_EVENTS.toLocaleString("en-US")} events`)
    const out = path.join(workDir, "telemetry.json")
    const run = await runToEnd(
      process.execPath,
      [path.join(HERE, "telemetry.mjs"), "--events", String(TELEMETRY_EVENTS), "--db", path.join(workDir, "telemetry.db"), "--json-out", out],
      { timeoutMs: 300_000, core: 0 }
    )
    if (existsSync(out)) results.telemetry = JSON.parse(readFileSync(out, "utf8"))
    else problems.push(`telemetry benchmark failed (code ${run.code}): ${run.stderr.slice(-800)}`)
  }

  if (selected.has("cli")) {
    // The CLI's start time (issue #25: --version and stats within 0.3 s): printed after the report.
    log("CLI start time")
    const run = await runToEnd(process.execPath, [path.join(HERE, "cli.mjs"), "--runs", QUICK ? "5" : "10", "--bin", BIN], { timeoutMs: 120_000 })
    if (run.code === 0) results.cli = run.stdout
    else problems.push(`CLI start-time benchmark failed (code ${run.code}): ${run.stderr.slice(-800)}`)
  }

  results.meta.elapsedS = Math.round((performance.now() - t0) / 100) / 10
  report()
  if (results.cli !== undefined) console.log(`\n${results.cli.trimEnd()}`)

  mkdirSync(RESULTS, { recursive: true })
  const file = path.join(RESULTS, `${RUN_STAMP}${QUICK ? "-quick" : ""}.json`)
  writeFileSync(file, JSON.stringify(results, null, 2))
  console.log(`\nresults: ${path.relative(ROOT, file)} (run took ${results.meta.elapsedS} s)`)

  for (const { file: profile, measured } of profiles) {
    if (!measured) {
      console.log(`\nCPU profile (probe only, not summarised): ${path.relative(ROOT, profile)}`)
      continue
    }
    if (!existsSync(profile)) {
      const near = existsSync(PROF_DIR) ? readdirSync(PROF_DIR).join(", ") : "none"
      console.log(`\nno CPU profile at ${profile} (in ${PROF_DIR}: ${near})`)
      continue
    }
    console.log(`\n${renderProfile(summarizeProfile(profile, 15))}`)
  }

  const failed = results.checks.filter((c) => c.status === "FAIL")
  if (problems.length > 0) process.exitCode = 1
  else if (args.strict && failed.length > 0) process.exitCode = 1
}

// ---------------------------------------------------------------------------------------------
// Report

function report() {
  const t = results.targets
  const get = (target, pick) => {
    const entry = t[target]
    if (entry === undefined || entry.unavailable) return undefined
    try {
      return pick(entry)
    } catch {
      return undefined
    }
  }
  const streamGet = (target, pick) => (t[target]?.streamUnavailable ? undefined : get(target, pick))

  // [label, pick, kind]: kind "rate" (higher is better) or "ms" (lower is better) or "mb"
  const metrics = [
    ["non-stream req/s @50", (e) => e.ns50.rps, "rate"],
    ["non-stream p50 ms @50", (e) => e.ns50.latencyMs.p50, "ms"],
    ["non-stream p99 ms @50", (e) => e.ns50.latencyMs.p99, "ms"],
    ["non-stream req/s @1", (e) => e.ns1.rps, "rate"],
    ["non-stream p50 ms @1", (e) => e.ns1.latencyMs.p50, "ms"],
    ["non-stream p99 ms @1", (e) => e.ns1.latencyMs.p99, "ms"],
    ["stream TTFB p50 ms @1", (e) => e.st1.ttfbMs.p50, "ms", true],
    ["stream TTFB p99 ms @1", (e) => e.st1.ttfbMs.p99, "ms", true],
    ["stream total p50 ms @1", (e) => e.st1.totalMs.p50, "ms", true],
    ["stream total p99 ms @1", (e) => e.st1.totalMs.p99, "ms", true],
    ["stream TTFB p50 ms @10", (e) => e.st10.ttfbMs.p50, "ms", true],
    ["stream TTFB p99 ms @10", (e) => e.st10.ttfbMs.p99, "ms", true],
    ["stream total p50 ms @10", (e) => e.st10.totalMs.p50, "ms", true],
    ["stream total p99 ms @10", (e) => e.st10.totalMs.p99, "ms", true],
    ["streams/s @10", (e) => e.st10.streamsPerSecond, "rate", true],
    ["server CPU ms/req @50", (e) => e.ns50.serverCpu.msPerRequest, "ms"],
    ["server CPU ms/req @1", (e) => e.ns1.serverCpu.msPerRequest, "ms"],
    ["server CPU ms/stream @10", (e) => e.st10.serverCpu.msPerRequest, "ms", true],
    ["peak RSS MB (proxy)", (e) => e.peakRssMb, "mb"]
  ]
  const value = (target, metric) => (metric[3] ? streamGet(target, metric[1]) : get(target, metric[1]))
  const cell = (v, kind) => (v === undefined ? "-" : kind === "rate" ? fmtInt(v) : kind === "mb" ? fmt(v, 1) : fmt(v, 3))
  const ratio = (a, b, kind) => {
    if (a === undefined || b === undefined || b === 0) return "-"
    const r = `${(a / b).toFixed(2)}x`
    return kind === "ms" ? `${r} ${a - b >= 0 ? "+" : ""}${(a - b).toFixed(3)}` : r
  }
  const cacheNa = t.cache?.unavailable
  const rows = metrics.map((m) => {
    const [direct, raw, tg, cache] = TARGETS.map((target) => value(target, m))
    const noProxy = m[2] === "mb" // direct has no proxy process
    return [
      m[0],
      noProxy ? "-" : cell(direct, m[2]),
      cell(raw, m[2]),
      cell(tg, m[2]),
      cacheNa && selected.has("cache") ? "n/a" : cell(cache, m[2]),
      noProxy ? "-" : ratio(tg, direct, m[2]),
      ratio(tg, raw, m[2]),
      ratio(cache, raw, m[2])
    ]
  })
  const ledgerCell = (target) => {
    const l = results.ledger[target]
    if (l === undefined) return "-"
    return `${l.ledger.rows ?? "?"}/${l.client.completed2xx + l.client.non2xx}`
  }
  rows.push(["ledger rows/completed", "-", "-", ledgerCell("tollgate"), ledgerCell("cache"), "", "", ""])
  const callsCell = (target) => {
    const u = t[target]?.upstreamCalls
    return u === undefined ? "-" : `${u.calls}/${u.completed}`
  }
  rows.push(["upstream calls/completed", ...TARGETS.map(callsCell), "", "", ""])

  if (!TARGETS.some((target) => selected.has(target))) rows.length = 0
  console.log("")
  if (rows.length > 0) console.log(renderTable(["METRIC", "direct", "raw proxy", "tollgate", "tg cache-hit", "tg/direct", "tg/raw", "cache/raw"], rows))
  if (cacheNa && selected.has("cache")) console.log(`\ntg cache-hit: ${cacheNa}`)
  if (t.cache?.streamUnavailable) console.log(`tg cache-hit streams: ${t.cache.streamUnavailable}`)
  if (results.upstream?.peakRssMb !== undefined) console.log(`mock upstream peak RSS: ${fmt(results.upstream.peakRssMb, 1)} MB`)
  const floor = results.floor
  if (floor) {
    console.log(
      `floor (the mock upstream on core 0, loaded from core 1): p50 ${fmt(floor.ns1.latencyMs.p50, 3)} ms @1, ` +
        `stream TTFB p50 ${fmt(floor.st1.ttfbMs.p50, 3)} ms @1, server CPU ${fmt(floor.ns1.serverCpu?.msPerRequest, 3)} ms/req @1`
    )
  }

  const tel = results.telemetry
  if (tel) {
    console.log(
      `telemetry writer: ${fmtInt(tel.eventsPerSecond)} events/s over ${fmtInt(tel.events)} events ` +
        `(offered in ${fmt(tel.offerMs, 0)} ms, all written at ${fmt(tel.writtenMs, 0)} ms, closed in ${fmt(tel.closeMs, 0)} ms), ` +
        `${fmtInt(tel.rows)} rows in SQLite`
    )
  }

  // Targets
  const checks = results.checks
  const check = (name, ok, detail) => checks.push({ name, status: ok === "info" ? "info" : ok === undefined ? "n/a" : ok ? "PASS" : "FAIL", detail })
  const v = (target, pick) => get(target, pick)
  const sv = (target, pick) => streamGet(target, pick)
  const both = (...xs) => xs.every((x) => x !== undefined)

  // Throughput ratios: the median of the interleaved rounds when they ran (the single runs above
  // are minutes apart, and this machine's speed drifts by more than the margins in between).
  const il = results.interleaved
  const ilDetail = (e) => `median of ${il.rounds} interleaved rounds ${e.rpsRatio.toFixed(2)}x (rounds ${e.rpsRatioMin.toFixed(2)}-${e.rpsRatioMax.toFixed(2)}x)`
  {
    const tg = v("tollgate", (e) => e.ns50.rps)
    const raw = v("raw", (e) => e.ns50.rps)
    const single = both(tg, raw) ? `single runs ${fmtInt(tg)} vs ${fmtInt(raw)} (${(tg / raw).toFixed(2)}x)` : "needs tollgate and raw"
    check("tollgate req/s @50 >= 0.5x raw proxy", il?.tollgate ? il.tollgate.rpsRatio >= 0.5 : both(tg, raw) ? tg >= 0.5 * raw : undefined,
      il?.tollgate ? `${ilDetail(il.tollgate)}; ${single}` : single)
  }
  {
    const tg = v("tollgate", (e) => e.ns1.latencyMs.p50)
    const d = v("direct", (e) => e.ns1.latencyMs.p50)
    check("added p50 latency @1 vs direct <= 0.3 ms", both(tg, d) ? tg - d <= 0.3 : undefined,
      both(tg, d) ? `+${(tg - d).toFixed(3)} ms (${tg.toFixed(3)} vs ${d.toFixed(3)})` : "needs tollgate and direct")
  }
  for (const c of [1, 10]) {
    const key = c === 1 ? "st1" : "st10"
    const tg = sv("tollgate", (e) => e[key].ttfbMs.p50)
    const d = sv("direct", (e) => e[key].ttfbMs.p50)
    check(`added stream TTFB p50 @${c} vs direct <= 0.5 ms`, both(tg, d) ? tg - d <= 0.5 : undefined,
      both(tg, d) ? `+${(tg - d).toFixed(3)} ms (${tg.toFixed(3)} vs ${d.toFixed(3)})` : "needs tollgate and direct")
  }
  for (const c of [1, 10]) {
    const key = c === 1 ? "st1" : "st10"
    const tg = sv("tollgate", (e) => e[key].totalMs.p50)
    const d = sv("direct", (e) => e[key].totalMs.p50)
    check(`stream total p50 @${c} within 2% of direct`, both(tg, d) ? tg <= d * 1.02 : undefined,
      both(tg, d) ? `${((tg / d - 1) * 100).toFixed(2)}% (${tg.toFixed(2)} vs ${d.toFixed(2)} ms)` : "needs tollgate and direct")
  }
  {
    const r = results.responses
    check("responses passthrough req/s @50 >= 0.5x raw proxy", r === undefined ? undefined : r.rpsRatio >= 0.5,
      r === undefined ? "not run" : `median of ${r.rounds} interleaved rounds ${r.rpsRatio.toFixed(2)}x (rounds ${r.rpsRatioMin.toFixed(2)}-${r.rpsRatioMax.toFixed(2)}x)`)
    const tg = r?.stream1.tollgate.ttfbMs.p50
    const raw = r?.stream1.raw.ttfbMs.p50
    check("responses stream TTFB p50 @1, added over the raw proxy", r === undefined ? undefined : "info",
      both(tg, raw) ? `+${(tg - raw).toFixed(3)} ms (${tg.toFixed(3)} vs ${raw.toFixed(3)})` : "not run")
  }
  {
    const m = results.metrics
    for (const [name, label] of [["on", "metrics on"], ["otlp", "metrics on + OTLP export"], ["otlp10", "metrics on + OTLP, 1 span in 10"]]) {
      const r = m?.[name]
      check(`${label}: req/s @50 within 3% of metrics off`, r === undefined ? undefined : r.rpsRatio >= 0.97,
        r === undefined ? "not run" : `loaded together with off, median of ${r.perRound.length} rounds in ${m.generations} generation(s) ${r.rpsRatio.toFixed(3)}x (rounds ${r.rpsRatioMin.toFixed(3)}-${r.rpsRatioMax.toFixed(3)}x, ` +
          `generations ${r.generationMin.toFixed(3)}-${r.generationMax.toFixed(3)}x), CPU per request ${r.cpuRatio.toFixed(3)}x`)
    }
  }
  if (cacheNa || !selected.has("cache")) {
    check("cache hit req/s @50 >= raw proxy", undefined, cacheNa ?? "not run")
    check("cache hit p50 @1 <= 0.2 ms", undefined, cacheNa ?? "not run")
  } else {
    const c = v("cache", (e) => e.ns50.rps)
    const raw = v("raw", (e) => e.ns50.rps)
    const single = both(c, raw) ? `single runs ${fmtInt(c)} vs ${fmtInt(raw)} (${(c / raw).toFixed(2)}x)` : "needs cache and raw"
    check("cache hit req/s @50 >= raw proxy", il?.cache ? il.cache.rpsRatio >= 1 : both(c, raw) ? c >= raw : undefined,
      il?.cache ? `${ilDetail(il.cache)}; ${single}` : single)
    const p50 = v("cache", (e) => e.ns1.latencyMs.p50)
    check("cache hit p50 @1 <= 0.2 ms", p50 === undefined ? undefined : p50 <= 0.2, p50 === undefined ? "-" : `${p50.toFixed(3)} ms`)
    const hits = results.ledger.cache?.ledger
    if (hits?.rows) check("cache ledger rows marked hit", "info", `${hits.cacheHits}/${hits.rows} rows have cache_status=hit`)
  }
  if (floor) {
    // Not targets: what the latencies above stand on. A proxy crosses cores twice per request
    // (client -> core 0 -> upstream), a cache hit once.
    const f = floor.ns1.latencyMs.p50
    const over = (target, pick, base) => {
      const x = get(target, pick)
      return x === undefined ? "" : `, ${LABEL[target]} +${(x - base).toFixed(3)}`
    }
    const overAll = (parts) => (parts.join("") === "" ? "" : `; over it${parts.join("")} ms`)
    check("floor: p50 @1 of a do-nothing server on core 0", "info",
      `${f.toFixed(3)} ms (direct, on core 1: ${v("direct", (e) => e.ns1.latencyMs.p50)?.toFixed(3) ?? "-"} ms)` +
        overAll(["raw", "tollgate", "cache"].map((target) => over(target, (e) => e.ns1.latencyMs.p50, f))))
    const ft = floor.st1.ttfbMs.p50
    check("floor: stream TTFB p50 @1 of a do-nothing server on core 0", "info",
      `${ft.toFixed(3)} ms (direct: ${sv("direct", (e) => e.st1.ttfbMs.p50)?.toFixed(3) ?? "-"} ms)` +
        overAll(["raw", "tollgate"].map((target) => over(target, (e) => e.st1.ttfbMs.p50, ft))))
  }
  for (const target of ["tollgate", "cache"]) {
    const mb = t[target]?.peakRssMb
    if (t[target] === undefined || t[target].unavailable) continue
    check(`${LABEL[target]} peak RSS <= 150 MB`, mb === undefined ? undefined : mb <= 150, mb === undefined ? "no /proc" : `${mb.toFixed(1)} MB`)
  }
  check("telemetry writer >= 20,000 events/s", tel ? tel.eventsPerSecond >= 20_000 : undefined,
    tel ? `${fmtInt(tel.eventsPerSecond)} events/s` : "not run")
  check("telemetry writer loses nothing", tel ? tel.lossFree : undefined, tel ? `${fmtInt(tel.rows)}/${fmtInt(tel.events)} rows` : "not run")
  for (const target of ["tollgate", "cache"]) {
    const l = results.ledger[target]
    if (l === undefined) continue
    const completed = l.client.completed2xx + l.client.non2xx
    const exact = l.client.errors === 0 && !l.client.truncated
    const statsNote = l.ledger.statsRequests === undefined ? `; stats: ${l.ledger.statsError}` : `; tollgate stats says ${l.ledger.statsRequests}`
    check(`${LABEL[target]} ledger rows = requests completed`, l.ledger.rows === undefined ? undefined : l.ledger.rows === completed,
      `${l.ledger.rows} rows, ${completed} completed (${l.client.non2xx} non-2xx), ${l.ledger.aborted} aborted rows` +
        `${exact ? "" : " [client errors or a time cap: count is a lower bound]"}${statsNote}`)
  }

  console.log("\nTARGETS")
  console.log(renderTable(["RESULT", "TARGET", "MEASURED"], checks.map((c) => [c.status, c.name, c.detail ?? ""]), "lll"))
  if (problems.length > 0) {
    console.log("\nPROBLEMS (the numbers above may be wrong):")
    for (const p of problems) console.log(`  - ${p}`)
  }
}

main()
  .catch((error) => {
    console.error(`\nbench failed: ${error.stack ?? error}`)
    process.exitCode = 1
  })
  .finally(cleanup)
