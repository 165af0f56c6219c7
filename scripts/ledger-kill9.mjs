// The kill -9 window of the ledger (docs/ledger.md): `tollgate start` (dist/, so `npm run build`
// first) on a fresh ledger with the simulated provider, N clients sending one request after
// another, SIGKILL after ~2 s; then which answered requests have no row, and how long before the
// kill their answers came.
//
//   node scripts/ledger-kill9.mjs [clients=8] [trials=6]
import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import Database from "better-sqlite3"
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/bin.js")
const concurrency = Number(process.argv[2] ?? 8)
const trial = async (port) => {
  const dir = mkdtempSync(path.join(tmpdir(), "k9-"))
  const db = path.join(dir, "l.db")
  const child = spawn(process.execPath, [BIN, "start", "--port", String(port)], { env: { ...process.env, TOLLGATE_DB: db, HOME: dir }, cwd: dir, stdio: ["ignore", "pipe", "inherit"] })
  await new Promise((r) => child.stdout.on("data", (d) => String(d).includes("listening") && r()))
  const answered = []
  let stop = false
  const worker = async () => {
    while (!stop) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }) })
        await r.arrayBuffer()
        if (r.status === 200) answered.push({ id: r.headers.get("x-tollgate-request-id"), at: performance.now() })
      } catch { return }
    }
  }
  const startedAt = performance.now()
  const workers = Array.from({ length: concurrency }, worker)
  await new Promise((r) => setTimeout(r, 1500 + Math.random() * 500))
  const killedAt = performance.now()
  child.kill("SIGKILL")
  stop = true
  await Promise.all(workers)
  await new Promise((r) => child.on("exit", r))
  const sqlite = new Database(db, { readonly: true })
  const ids = new Set(sqlite.prepare("SELECT request_id FROM requests").all().map((r) => r.request_id))
  // Answered requests without a row; their age is how long before the SIGKILL the client had its
  // answer (negative: it arrived while the kill was under way).
  const missing = answered.filter((a) => !ids.has(a.id))
  const ages = missing.map((m) => killedAt - m.at)
  const writtenAges = answered.filter((a) => ids.has(a.id)).map((a) => killedAt - a.at)
  return {
    answered: answered.length,
    withoutRow: missing.length,
    oldestWithoutRowMs: ages.length ? Math.max(...ages).toFixed(1) : "-",
    youngestWithRowMs: writtenAges.length ? Math.min(...writtenAges).toFixed(1) : "-",
    requestsPerSecond: Math.round(answered.length / ((killedAt - startedAt) / 1000))
  }
}
const trials = Number(process.argv[3] ?? 6)
for (let i = 0; i < trials; i++) console.log(JSON.stringify(await trial(47100 + i)))
