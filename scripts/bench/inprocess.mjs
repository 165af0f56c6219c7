#!/usr/bin/env node
// tollgate's request program in-process, without the listener's sockets: the routes are called
// directly with a request whose body is already in memory, against the bench's mock upstream
// (its own process). What it reports changes little from run to run on a noisy machine, unlike
// the socket benchmark: allocations and Effect steps per request are counts, not timings.
//
//   npm run build && node scripts/bench/inprocess.mjs [--mode upstream|cache] [--requests N]
//        [--stream [--chunk-delay MS]] [--coalesce] [--concurrency C] [--no-budget] [--no-metrics] [--report cpu|alloc|promoted|steps|cold] [--top K] [--dist DIR]
//
//   cpu    CPU time per request (this process: request program + undici client + ledger writer),
//          min and median of 5 rounds
//   alloc  bytes allocated per request, by allocating function (V8's sampling heap profiler,
//          counting objects already collected too)
//   promoted  the same, counting only what outlived a young-generation GC (what grows the old space)
//   steps  Effect instructions per request, by kind (a supervisor that sees every step)
//   cold   one request at a time, the CPU's caches flushed before each (a 64 MB buffer written
//          over): us from the request's start until undici creates the upstream request and
//          until its headers are on the wire, medians, against a bare undici request flushed the
//          same way (what the raw proxy does) and the same without the flush
//
// --dist points at another build (a git worktree of an older commit, say) to compare.
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scheduler from "effect/Scheduler"
import * as Stream from "effect/Stream"
import * as Supervisor from "effect/Supervisor"
import { spawn } from "node:child_process"
import { EventEmitter } from "node:events"
import * as diagnostics from "node:diagnostics_channel"
import * as fs from "node:fs"
import { Session } from "node:inspector"
import { Writable } from "node:stream"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { CHAT } from "./fixtures.mjs"
import { median } from "./lib.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    mode: { type: "string", default: "upstream" },
    stream: { type: "boolean", default: false },
    coalesce: { type: "boolean", default: false },
    "chunk-delay": { type: "string", default: "0" },
    requests: { type: "string", default: "5000" },
    concurrency: { type: "string", default: "10" },
    "no-budget": { type: "boolean", default: false },
    "no-metrics": { type: "boolean", default: false },
    report: { type: "string", default: "cpu" },
    top: { type: "string", default: "30" },
    dist: { type: "string", default: path.join(HERE, "..", "..", "dist") },
    help: { type: "boolean", short: "h", default: false }
  }
})
if (args.stream && args.mode === "cache") {
  console.log("--stream measures streams sent upstream; --mode cache is not supported with it")
  process.exit(2)
}
if (args.help || !["upstream", "cache"].includes(args.mode) || !["cpu", "alloc", "promoted", "steps", "cold"].includes(args.report)) {
  console.log("usage: node scripts/bench/inprocess.mjs [--mode upstream|cache] [--stream [--chunk-delay MS]] [--coalesce] [--requests N] [--concurrency C] [--no-budget] [--no-metrics] [--report cpu|alloc|promoted|steps|cold] [--top K] [--dist DIR]")
  process.exit(args.help ? 0 : 2)
}
const N = Number(args.requests)
const TOP = Number(args.top)
const load = (file) => import(pathToFileURL(path.join(path.resolve(args.dist), file)).href)
const [Config, Routes, Proxy, Pricing, Circuit, Telemetry] = await Promise.all(
  ["Config.js", "Http/Routes.js", "Proxy.js", "Pricing.js", "Circuit.js", "Telemetry.js"].map(load)
)

const upstream = spawn(process.execPath, [path.join(HERE, "upstream.mjs")], { stdio: ["ignore", "pipe", "inherit"] })
const stop = () => upstream.kill()
process.on("exit", stop)
const base = await new Promise((resolve, reject) => {
  upstream.once("error", reject)
  upstream.stdout.on("data", (d) => {
    const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(String(d))
    if (m) resolve(m[1])
  })
})

const config = {
  providers: { up: { kind: "openai", baseUrl: `${base}/v1` } },
  routes: [{ name: "bench", match: { model: "*" }, targets: [{ provider: "up" }] }],
  budget: args["no-budget"] ? { enabled: false } : { enabled: true, limits: [{ window: "daily", usd: 1000000 }] },
  cache: args.mode === "cache" ? { enabled: true } : { enabled: false, coalesce: args.coalesce },
  database: { path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-inprocess-")), "ledger.db") },
  // Metrics are counted only where something can read them: --no-metrics turns the admin listener off.
  ...(args["no-metrics"] ? { server: { admin: false } } : {})
}
const chat = args.stream ? { ...CHAT, stream: true, stream_options: { include_usage: true } } : CHAT
const body = Buffer.from(JSON.stringify(chat))
// With --coalesce every request asks something of its own: each goes through a flight (the
// default for a temperature-0 request), and none shares one (which would skip upstream calls).
let asked = 0
const bodyFor = () => {
  if (!args.coalesce) return body
  const messages = [chat.messages[0], { ...chat.messages[1], content: `${chat.messages[1].content} (#${asked++})` }]
  return Buffer.from(JSON.stringify({ ...chat, messages }))
}
const headers = {
  ...(args.stream ? { "x-bench-chunk-delay-ms": args["chunk-delay"] } : {}),
  "content-type": "application/json",
  authorization: "Bearer sk-bench-0000000000000000",
  "user-agent": "tollgate-bench/1",
  "content-length": String(body.length),
  host: "127.0.0.1"
}
/** What `Body.read` needs of an IncomingMessage: headers, then the body as data + end. */
const incomingBody = () => {
  const source = new EventEmitter()
  source.headers = headers
  setImmediate(() => {
    source.emit("data", body)
    source.emit("end")
  })
  return source
}

// The listener's scheduler (src/Node/IoScheduler.ts, src/Http/IoScheduler.ts before; a build from before it had Effect's
// `makeBatched` on `setImmediate`), counting steps as it is asked whether to yield.
const io = fs.existsSync(path.join(path.resolve(args.dist), "Node", "IoScheduler.js"))
  ? new (await load("Node/IoScheduler.js")).IoScheduler()
  : fs.existsSync(path.join(path.resolve(args.dist), "Http", "IoScheduler.js"))
  ? new (await load("Http/IoScheduler.js")).IoScheduler()
  : Scheduler.makeBatched((run) => setImmediate(run))
let steps = 0
const scheduler = {
  scheduleTask: (task, priority, fiber) => io.scheduleTask(task, priority, fiber),
  shouldYield: (fiber) => (steps++, io.shouldYield(fiber))
}

const label = (frame) =>
  `${frame.functionName || "(anonymous)"} ${
    frame.url.includes("node_modules/") ? frame.url.replace(/.*node_modules\//, "") : frame.url.replace(/.*\/dist\//, "dist/")
  }:${frame.lineNumber + 1}`
const top = (counts, divisor, unit) =>
  [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([k, v]) => `${(v / divisor).toFixed(1).padStart(9)} ${unit}  ${k}`).join("\n")

class StepCounter extends Supervisor.AbstractSupervisor {
  counts = new Map()
  get value() {
    return Effect.void
  }
  onEffect(_fiber, effect) {
    const fn = effect._op === "OnSuccess" || effect._op === "OnFailure" || effect._op === "UpdateRuntimeFlags"
      ? effect.effect_instruction_i1
      : effect._op === "OnSuccessAndFailure"
      ? effect.effect_instruction_i2
      : effect.effect_instruction_i0
    const what = effect._op === "Commit"
      ? `${effect.constructor?.name ?? "?"} ${String(effect.commit).replace(/\s+/g, " ").slice(0, 70)}`
      : typeof fn === "function"
      ? fn.toString().replace(/\s+/g, " ").slice(0, 80)
      : typeof fn
    const key = `${effect._op} ${what}`
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }
}

/** A stream body read to the end as the listener reads it (src/Http.ts): pulled chunk by chunk. */
const drain = (stream) =>
  Effect.scoped(Effect.flatMap(Stream.toPull(stream), (pull) => {
    const next = Effect.flatMap(pull, () => next)
    return next
  })).pipe(Effect.catchAll((end) => end._tag === "None" ? Effect.void : Effect.fail(end.value)))

/**
 * A Piped body run as the listener runs it, into a writable that drops what it gets: its source
 * piped into a sink over the writable (src/Bytes.ts; a build from before it wrote to the writable
 * itself, `run`).
 */
const pipe = (piped) =>
  Effect.async((resume) => {
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() })
    if (piped.run !== undefined) return void piped.run(sink, (defect) => resume(defect === undefined ? Effect.void : Effect.die(defect)))
    piped.source.pipe({
      write: (chunk) => sink.write(chunk),
      drained: (more) => sink.once("drain", more),
      end: () => {
        sink.end()
        resume(Effect.void)
      },
      fail: (cause) => resume(Effect.failCause(cause))
    })
  }).pipe(Effect.zipRight(piped.after(false)))

/**
 * `--report cold`: the request program as it runs one request at a time after an idle spell, when
 * the CPU's caches hold something else (on this VM every step then takes ~5x its time back to
 * back). The caches are flushed by writing over a buffer larger than the last-level cache, then the
 * clock runs from the request's start to undici's request being created and to its headers being
 * on the wire (undici's diagnostics channels). The reference is a bare undici request to the same
 * upstream, flushed the same way: the least a proxy does there.
 */
const cold = async (one, title) => {
  const FLUSH = Buffer.alloc(64 * 1024 * 1024)
  let salt = 0
  const flush = () => {
    salt++
    for (let i = 0; i < FLUSH.length; i += 64) FLUSH[i] = salt
  }
  let created = 0
  let sent = 0
  const onCreate = () => { if (created === 0) created = performance.now() }
  const onSend = () => { if (sent === 0) sent = performance.now() }
  diagnostics.subscribe("undici:request:create", onCreate)
  diagnostics.subscribe("undici:client:sendHeaders", onSend)
  const { Pool } = await import("undici")
  const pool = new Pool(base, { connections: 1 })
  const bare = () => pool.request({ method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json", ...(args.stream ? { "x-bench-chunk-delay-ms": args["chunk-delay"] } : {}) }, body }).then((r) => r.body.dump())
  for (let i = 0; i < 200; i++) await bare() // the bare pool's connection and undici's JIT
  // The four runs take turns in rounds of 25 requests each, so that a machine whose speed drifts
  // (this one does, within seconds) weighs on all four alike.
  const runs = [
    { name: "tollgate, caches flushed", send: one, flushed: true },
    { name: "bare undici, caches flushed", send: bare, flushed: true },
    { name: "tollgate, back to back", send: one, flushed: false },
    { name: "bare undici, back to back", send: bare, flushed: false }
  ]
  for (const run of runs) Object.assign(run, { toCreate: [], toSend: [] })
  const rounds = Math.max(1, Math.floor(Math.min(N, 400) / 25))
  for (let round = 0; round < rounds; round++) {
    for (const run of runs) {
      for (let i = 0; i < 25; i++) {
        if (run.flushed) flush()
        else await new Promise((resolve) => setImmediate(resolve))
        created = 0
        sent = 0
        const t0 = performance.now()
        await run.send()
        run.toCreate.push(created - t0)
        run.toSend.push(sent - t0)
      }
    }
  }
  const us = (ms) => `${(ms * 1000).toFixed(0).padStart(4)} us`
  console.log(`${title} in the warm-up; then one at a time, ${rounds * 25} requests each, in turns of 25, medians:`)
  for (const run of runs) console.log(`  ${run.name.padEnd(28)} to undici's request ${us(median(run.toCreate))}, to its headers sent ${us(median(run.toSend))}`)
  diagnostics.unsubscribe("undici:request:create", onCreate)
  diagnostics.unsubscribe("undici:client:sendHeaders", onSend)
  await pool.close()
}

// Telemetry only where the build's routes read it (/readyz: the ledger's health), so older builds still run.
// The composition root where the build has one; older builds wire the routes' services by hand.
const Services = await load("Services.js").catch(() => undefined)
const Models = await load("Models.js").catch(() => undefined)
const layers = Services !== undefined
  ? [Services.live]
  : [Proxy.layer, Pricing.layer, Circuit.layer, ...(Telemetry.layer === undefined ? [] : [Telemetry.layer]), ...(Models === undefined ? [] : [Models.layer.pipe(Layer.provide(Pricing.layer))])]
const layer = Layer.mergeAll(...layers).pipe(Layer.provideMerge(Config.layerFrom(config)))
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const app = yield* Routes.make
  let runtime = yield* Effect.runtime()
  let supervisor
  if (args.report === "steps") {
    supervisor = new StepCounter()
    runtime = Runtime.enableRuntimeFlag(runtime, RuntimeFlags.OpSupervision)
  }
  const fork = Runtime.runFork(runtime)
  const one = () =>
    new Promise((resolve, reject) => {
      const request = Effect.flatMap(
        // `body` is the request already read (this build: the listener reads it before the fiber
        // starts, a cost left out here); `source` is for older builds, which read it in the fiber.
        app({ method: "POST", url: "/v1/chat/completions", headers, body: Either.right(bodyFor()), source: incomingBody() }),
        (response) =>
          response.status !== 200
            ? Effect.die(new Error(`status ${response.status}`))
            : response.body._tag === "Stream"
            ? drain(response.body.stream)
            : response.body._tag === "Raw" // a Piped body (src/Bytes.ts), into a sink as the listener runs it
            ? pipe(response.body.body)
            : Effect.void
      )
      fork(supervisor ? Effect.supervised(request, supervisor) : request, { scheduler }).addObserver((exit) =>
        exit._tag === "Success" ? resolve() : reject(new Error(String(exit.cause)))
      )
    })
  const batch = (n) => {
    let sent = 0
    return Promise.all(Array.from({ length: Number(args.concurrency) }, async () => {
      while (sent++ < n) await one()
    }))
  }
  const run = (n) => Effect.promise(() => batch(n))

  yield* run(N) // warm-up: JIT, caches, pools
  const title = `${args.stream ? `streams (50 chunks, ${args["chunk-delay"]} ms apart)` : args.mode}${args.coalesce ? ", each through a flight of its own" : ""}${args["no-budget"] ? ", budget off" : ""}, ${args.concurrency} at a time`
  if (args.report === "cpu") {
    const rounds = []
    for (let r = 0; r < 5; r++) {
      steps = 0
      const before = process.cpuUsage()
      yield* run(N)
      const used = process.cpuUsage(before)
      rounds.push((used.user + used.system) / N)
    }
    rounds.sort((a, b) => a - b)
    console.log(`${title}: CPU per request min ${rounds[0].toFixed(1)} us, median ${rounds[2].toFixed(1)} us; ${(steps / N).toFixed(0)} scheduler checks per request`)
  } else if (args.report === "cold") {
    yield* Effect.promise(() => cold(one, title))
  } else if (args.report === "steps") {
    supervisor.counts.clear()
    yield* run(N)
    let total = 0
    for (const v of supervisor.counts.values()) total += v
    console.log(`${title}: ${(total / N).toFixed(1)} Effect steps per request`)
    console.log(top(supervisor.counts, N, "steps"))
  } else {
    const session = new Session()
    session.connect()
    const post = (method, params) => Effect.async((resume) => session.post(method, params, (e, r) => resume(e ? Effect.die(e) : Effect.succeed(r))))
    yield* post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: args.report === "alloc" })
    yield* run(N)
    const { profile } = yield* post("HeapProfiler.stopSampling", {})
    const counts = new Map()
    let total = 0
    const walk = (node, parent) => {
      const own = node.callFrame.url === "" && parent !== undefined ? `${label(node.callFrame)} <- ${label(parent.callFrame)}` : label(node.callFrame)
      if (node.selfSize > 0) {
        total += node.selfSize
        counts.set(own, (counts.get(own) ?? 0) + node.selfSize)
      }
      for (const child of node.children) walk(child, node)
    }
    walk(profile.head, undefined)
    console.log(`${title}: ~${(total / N / 1024).toFixed(1)} KB ${args.report === "alloc" ? "allocated" : "promoted (survived the young generation)"} per request`)
    console.log(top(counts, N, "B"))
  }
}).pipe(Effect.provide(layer))))
stop()
