#!/usr/bin/env node
// Telemetry-writer micro-benchmark: how many ledger events per second the writer sustains into
// SQLite (or PostgreSQL, with --url), with zero loss.
//
//   node scripts/bench/telemetry.mjs [--quick] [--events N] [--db FILE | --url postgres://...] [--json-out FILE]
//
// With --url, a fresh database `tollgate_bench_<random>` is made on that server for the run (the
// URL names the database to connect to for that, e.g. postgres://postgres@127.0.0.1:5432/test)
// and dropped after; the rows are counted there after the layer closed.
//
// Builds `Telemetry.layerWith({})` on `Store.layerAt(FILE)` (from dist/, so `npm run build`
// first), offers N realistic `LedgerEvent`s through `record` (back-pressure included), waits
// until `written` reaches N, closes the layer, then counts the rows with better-sqlite3: the count
// must be exactly N. Events are built before the clock starts.
import Database from "better-sqlite3"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { Context, Effect, Exit, Layer, Scope, Stream, SubscriptionRef } from "effect"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** A realistic ledger event: mostly successes, some streams, a few errors and estimates. */
export const makeEvent = (i, base) => {
  const stream = i % 3 === 0
  const failed = i % 97 === 0
  const models = ["gpt-4o-mini", "gpt-4.1", "gpt-5-mini", "claude-sonnet-4"]
  const model = models[i % models.length]
  const inputTokens = failed ? null : 200 + (i % 1500)
  const outputTokens = failed ? null : 20 + (i % 700)
  const estimated = !failed && i % 11 === 0
  return {
    ts: base + i,
    requestId: `req_${randomBytes(16).toString("hex")}`,
    endpoint: "/v1/chat/completions",
    route: i % 2 === 0 ? "default" : "cheap",
    rule: i % 2 === 0 ? "model:*" : "model:gpt-4o-*",
    provider: i % 5 === 0 ? "backup" : "openai",
    requestedModel: model,
    servedModel: failed ? null : model,
    stream,
    status: failed ? 502 : 200,
    errorType: failed ? "upstream_unreachable" : null,
    attempts: failed ? 2 : 1,
    failover: failed,
    cacheStatus: i % 4 === 0 ? "hit" : "miss",
    inputTokens,
    outputTokens,
    cachedInputTokens: failed ? null : i % 7 === 0 ? 128 : 0,
    cacheWriteTokens: failed ? null : 0,
    reasoningTokens: failed ? null : i % 13 === 0 ? 64 : 0,
    costUsd: failed || model === "claude-sonnet-4" ? null : ((inputTokens ?? 0) * 0.15 + (outputTokens ?? 0) * 0.6) / 1e6,
    priced: !failed && model !== "claude-sonnet-4",
    usageSource: failed ? null : estimated ? "estimated" : "reported",
    latencyMs: 150 + (i % 2000) / 3,
    ttfbMs: failed ? null : stream ? 80 + (i % 300) / 7 : 150 + (i % 2000) / 3,
    aborted: false,
    clientHash: i % 10 === 0 ? null : `c${(i % 8).toString(16).padStart(15, "0")}`,
    userAgent: i % 2 === 0 ? "OpenAI/NodeJS 6.30.1" : "OpenAI/Python 1.99.0",
    project: i % 3 === 0 ? "search-backend" : null,
    session: i % 6 === 0 ? `sess_${i % 50}` : null
  }
}

export const runTelemetryBench = async ({ events, db, url, timeoutMs = 300_000 }) => {
  const distTelemetry = path.join(ROOT, "dist/Telemetry.js")
  const distStore = path.join(ROOT, "dist/Store.js")
  if (!existsSync(distTelemetry)) throw new Error("dist/Telemetry.js is missing: run `npm run build` first")
  const Telemetry = await import(pathToFileURL(distTelemetry).href)
  const Store = await import(pathToFileURL(distStore).href)

  const base = Date.now() - events
  const prepared = Array.from({ length: events }, (_, i) => makeEvent(i, base))
  const layer = Telemetry.layerWith({}).pipe(Layer.provide(url === undefined ? Store.layerAt(db) : Store.layerFor(url)))

  const program = Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope)
    const telemetry = Context.get(context, Telemetry.Telemetry)
    const t0 = performance.now()
    for (let i = 0; i < events; i++) yield* telemetry.record(prepared[i])
    const t1 = performance.now()
    yield* telemetry.written.changes.pipe(
      Stream.takeUntil((n) => n >= events),
      Stream.runDrain,
      Effect.timeoutFail({
        duration: timeoutMs,
        onTimeout: () => new Error(`written did not reach ${events} within ${timeoutMs} ms`)
      })
    )
    const t2 = performance.now()
    const written = yield* SubscriptionRef.get(telemetry.written)
    yield* Scope.close(scope, Exit.void)
    const t3 = performance.now()
    return { offerMs: t1 - t0, writtenMs: t2 - t0, closeMs: t3 - t2, written }
  })

  const timing = await Effect.runPromise(program)
  let rows
  if (url === undefined) {
    const sqlite = new Database(db, { readonly: true })
    rows = sqlite.prepare("SELECT COUNT(*) AS n FROM requests").get().n
    sqlite.close()
  } else {
    const { default: pg } = await import("pg")
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    rows = Number((await client.query("SELECT COUNT(*) AS n FROM requests")).rows[0].n)
    await client.end()
  }
  const round = (v) => Math.round(v * 10) / 10
  return {
    events,
    offerMs: round(timing.offerMs),
    writtenMs: round(timing.writtenMs),
    closeMs: round(timing.closeMs),
    eventsPerSecond: Math.round((events / timing.writtenMs) * 1000),
    writtenCounter: timing.written,
    rows,
    lossFree: rows === events && timing.written === events
  }
}

const main = async () => {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      events: { type: "string" },
      db: { type: "string" },
      url: { type: "string" },
      "json-out": { type: "string" },
      help: { type: "boolean", default: false }
    }
  })
  if (values.help) {
    console.log("usage: node scripts/bench/telemetry.mjs [--quick] [--events N] [--db FILE | --url postgres://...] [--json-out FILE]")
    return
  }
  const events = values.events !== undefined ? Number(values.events) : values.quick ? 20_000 : 100_000
  const dir = values.db === undefined ? mkdtempSync(path.join(tmpdir(), "tollgate-bench-tel-")) : undefined
  const db = values.db ?? path.join(dir, "telemetry.db")
  let url
  let dropDatabase = async () => {}
  if (values.url !== undefined) {
    const { default: pg } = await import("pg")
    const name = `tollgate_bench_${randomBytes(6).toString("hex")}`
    const admin = async (text) => {
      const client = new pg.Client({ connectionString: values.url })
      await client.connect()
      try {
        await client.query(text)
      } finally {
        await client.end()
      }
    }
    await admin(`CREATE DATABASE ${name}`)
    dropDatabase = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    const parsed = new URL(values.url)
    parsed.pathname = `/${name}`
    url = parsed.toString()
  }
  try {
    const result = await runTelemetryBench({ events, db, url })
    const memory = process.memoryUsage()
    result.peakRssMb = Math.round(memory.rss / 1e5) / 10
    console.log(
      `telemetry writer: ${result.events.toLocaleString("en-US")} events, ${result.eventsPerSecond.toLocaleString("en-US")} events/s ` +
        `(offered in ${result.offerMs} ms, all written after ${result.writtenMs} ms, layer closed in ${result.closeMs} ms); ` +
        `rows in ${url === undefined ? "SQLite" : "PostgreSQL"}: ${result.rows.toLocaleString("en-US")} ${result.lossFree ? "(no loss)" : "(LOSS!)"}`
    )
    if (values["json-out"] !== undefined) writeFileSync(values["json-out"], JSON.stringify(result, null, 2))
    if (!result.lossFree) process.exitCode = 1
  } finally {
    await dropDatabase()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
