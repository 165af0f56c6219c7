#!/usr/bin/env node
// Normal load with pathological requests in flight beside it (issue #29): does one client's
// request slow everyone else's? Rounds alternate a clean run and a run where a second client sends
// one pathological request at a time, one every `--every` ms (default 50): bodies of the size (~130 KB) whose
// content made tollgate's own work blow up (a prompt of spaces, of one letter, of CJK without a
// break, for the tokenizer: the context-window check counts a body larger than the window in
// bytes; JSON nested 60,000 deep). Reports the p99 of the normal requests in each, and their
// ratio; the target is <= 2x. (Bodies of megabytes cost their JSON parse, ~10 ms per MB, like any
// large prompt: that is size, not a pathology, and is left out.)
//
//   npm run build && node scripts/bench/pathological.mjs [--rounds 3] [--requests 3000] [--bin dist/bin.js]
//
// Everything runs on 127.0.0.1; every loop is bounded in count and time.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { request } from "undici"
import { CHAT, tollgateConfig } from "./fixtures.mjs"
import { median, pinningSupport, startMockUpstream, startTollgate, stopProcess } from "./lib.mjs"
import { runCannon } from "./load.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    requests: { type: "string", default: "3000" },
    connections: { type: "string", default: "10" },
    every: { type: "string", default: "50" },
    bin: { type: "string", default: path.join(HERE, "..", "..", "dist", "bin.js") }
  }
})
const ROUNDS = Number(args.rounds)
const REQUESTS = Number(args.requests)
const CONNECTIONS = Number(args.connections)
const EVERY = Number(args.every)

// gpt-4o's context window is 128,000 tokens: bodies past 128,000 bytes are tokenised to check it.
const prompt = (content) => JSON.stringify({ model: "gpt-4o", max_tokens: 5, messages: [{ role: "user", content }] })
const PATHOLOGICAL = [
  ["130 KB of spaces", prompt(" ".repeat(130_000))],
  ["130 KB of one letter", prompt("a".repeat(130_000))],
  ["130 KB of CJK", prompt("汉".repeat(45_000))],
  ["60,000-deep JSON", `{"model":"gpt-4o","messages":[{"role":"user","content":${"[".repeat(60_000)}${"]".repeat(60_000)}}]}`]
]

const pin = pinningSupport()
const work = mkdtempSync(path.join(os.tmpdir(), "tollgate-patho-"))
const upstream = await startMockUpstream({ pin })
const config = path.join(work, "tollgate.yaml")
writeFileSync(config, tollgateConfig({ upstreamBase: `${upstream.match[1]}/v1`, cache: false }))
const tollgate = await startTollgate({ name: "tollgate", bin: args.bin, config, db: path.join(work, "ledger.db"), cwd: work, pin })
const base = tollgate.match[1]

const normal = () =>
  runCannon({
    url: `${base}/chat/completions`,
    connections: CONNECTIONS,
    amount: REQUESTS,
    body: JSON.stringify(CHAT),
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    capMs: 120_000
  })

/** Keeps one pathological request in flight until `stop()`; counts what was sent and how each ended. */
const pathological = () => {
  let running = true
  const seen = { sent: 0, statuses: {} }
  const loop = (async () => {
    const deadline = performance.now() + 180_000
    for (let i = 0; running && performance.now() < deadline; i++) {
      const next = performance.now() + EVERY
      const [, body] = PATHOLOGICAL[i % PATHOLOGICAL.length]
      const response = await request(`${base}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body })
      await response.body.dump()
      seen.sent++
      seen.statuses[response.statusCode] = (seen.statuses[response.statusCode] ?? 0) + 1
      const wait = next - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  })()
  return { seen, stop: async () => (running = false, await loop) }
}

try {
  await normal() // warm-up
  const clean = []
  const loaded = []
  const worst = []
  let sent = 0
  const statuses = {}
  for (let round = 0; round < ROUNDS; round++) {
    const before = await normal()
    const side = pathological()
    const beside = await normal()
    await side.stop()
    clean.push(before.latencyMs.p99)
    loaded.push(beside.latencyMs.p99)
    worst.push([before.latencyMs.max, beside.latencyMs.max])
    sent += side.seen.sent
    for (const [status, n] of Object.entries(side.seen.statuses)) statuses[status] = (statuses[status] ?? 0) + n
    console.log(
      `round ${round + 1}: normal p99 ${clean.at(-1)} ms clean, ${loaded.at(-1)} ms beside pathological requests ` +
        `(max ${worst.at(-1)[0]} / ${worst.at(-1)[1]} ms; ${before.rps.toFixed(0)} / ${beside.rps.toFixed(0)} req/s)`
    )
  }
  const ratio = median(loaded) / median(clean)
  console.log(`pathological requests sent: ${sent} (status ${JSON.stringify(statuses)})`)
  console.log(`normal p99, median of ${ROUNDS}: ${median(clean)} ms clean, ${median(loaded)} ms beside them: ${ratio.toFixed(2)}x (target <= 2x) ${ratio <= 2 ? "PASS" : "FAIL"}`)
} finally {
  await stopProcess(tollgate)
  await stopProcess(upstream)
  rmSync(work, { recursive: true, force: true })
}
