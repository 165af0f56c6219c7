#!/usr/bin/env node
// The CLI's start time: `node dist/bin.js --version` and `node dist/bin.js stats` on an empty
// temporary ledger, N runs each (10 by default), wall-clock median and range. Run after
// `npm run build`. A command's start is mostly module loading, so this is what `--version` and a
// read command cost a user before they see anything.
//
//   node scripts/bench/cli.mjs [--runs N] [--bin FILE]
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "10" },
    bin: { type: "string", default: path.join(ROOT, "dist/bin.js") }
  }
})
const runs = Math.max(1, Number(args.runs))

const home = mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-cli-"))
const env = { ...process.env, HOME: home, TOLLGATE_HOME: path.join(home, ".tollgate"), TOLLGATE_CONFIG: "", NO_COLOR: "1" }
const db = path.join(home, "ledger.db")
// Read commands refuse a ledger that does not exist; an empty file is an empty SQLite database,
// which stats migrates on its first (untimed) run.
writeFileSync(db, "")

const time = (argv) => {
  const samples = []
  // One untimed run first: it creates the ledger (for stats) and warms the file cache.
  for (let i = 0; i <= runs; i++) {
    const t0 = process.hrtime.bigint()
    const result = spawnSync(process.execPath, [args.bin, ...argv], { cwd: home, env, stdio: ["ignore", "ignore", "pipe"] })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}: ${result.stderr}`)
    if (i > 0) samples.push(ms)
  }
  samples.sort((a, b) => a - b)
  const mid = Math.floor(samples.length / 2)
  const median = samples.length % 2 === 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2
  return { median, min: samples[0], max: samples[samples.length - 1] }
}

try {
  const rows = [
    ["tollgate --version", time(["--version"])],
    ["tollgate stats (empty ledger)", time(["stats", "--db", db])]
  ]
  console.log(`CLI start time, ${runs} runs each (node ${process.version}, ${path.relative(process.cwd(), args.bin) || args.bin})`)
  console.log("")
  console.log(`${"command".padEnd(32)}${"median ms".padStart(10)}${"min".padStart(8)}${"max".padStart(8)}`)
  for (const [name, t] of rows) {
    console.log(`${name.padEnd(32)}${t.median.toFixed(0).padStart(10)}${t.min.toFixed(0).padStart(8)}${t.max.toFixed(0).padStart(8)}`)
  }
} finally {
  rmSync(home, { recursive: true, force: true })
}
