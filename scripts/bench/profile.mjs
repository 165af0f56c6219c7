#!/usr/bin/env node
// Summarises a V8 .cpuprofile (as written by `node --cpu-prof`): top functions by self time, and
// self time by package (node_modules/<pkg>, node: internals, the project's own dist/ files).
//
//   node scripts/bench/profile.mjs FILE.cpuprofile [--top 20]
import { existsSync, readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { renderTable } from "./lib.mjs"

const packageOf = (url) => {
  if (url === "") return "(native/vm)"
  if (url.startsWith("node:")) return "node:internals"
  const nm = url.lastIndexOf("node_modules/")
  if (nm !== -1) {
    const rest = url.slice(nm + "node_modules/".length).split("/")
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  if (url.includes("/dist/")) return "tollgate (dist)"
  return url
}

const shortUrl = (url) => {
  if (url === "") return ""
  const nm = url.lastIndexOf("node_modules/")
  if (nm !== -1) return url.slice(nm + "node_modules/".length)
  const dist = url.lastIndexOf("/dist/")
  if (dist !== -1) return url.slice(dist + 1)
  return url.replace(/^file:\/\//, "")
}

/**
 * A frame in a bundle (tollgate's dist/bin.js is one) mapped back through the bundle's linked
 * source map, when there is one beside it: the original file and line, so that packages and
 * functions are told apart as in an unbundled build.
 */
const sourceMaps = new Map()
const original = (frame) => {
  if (!frame.url.startsWith("file://") || frame.url.includes("node_modules/")) return frame
  let map = sourceMaps.get(frame.url)
  if (map === undefined) {
    const file = `${fileURLToPath(frame.url)}.map`
    map = existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, "utf8"))) : null
    sourceMaps.set(frame.url, map)
  }
  if (map === null) return frame
  const entry = map.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry.originalSource === undefined) return frame
  const source = entry.originalSource.replace(/^(\.\.\/)+/, "/")
  // tollgate's own modules are reported as their built files (dist/X.js), as in an unbundled build.
  const url = source.includes("node_modules/") ? source : source.replace(/^.*\/src\//, "/dist/").replace(/\.ts$/, ".js")
  return { ...frame, url, lineNumber: entry.originalLine }
}

/** { totalMs, idleMs, functions: [{name, where, selfMs, pct}], packages: [{name, selfMs, pct}] } */
export const summarizeProfile = (file, top = 20) => {
  const profile = JSON.parse(readFileSync(file, "utf8"))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map()
  const { samples, timeDeltas } = profile
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the following delta to sample i.
    const delta = timeDeltas[i + 1] ?? 0
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, delta))
  }
  let totalUs = 0
  let idleUs = 0
  const functions = new Map()
  const packages = new Map()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    const frame = original(node.callFrame)
    totalUs += us
    if (frame.functionName === "(idle)") {
      idleUs += us
      continue
    }
    const name = frame.functionName || "(anonymous)"
    const where = frame.url === "" ? "" : `${shortUrl(frame.url)}:${frame.lineNumber + 1}`
    const key = `${name}\u0000${where}`
    functions.set(key, { name, where, us: (functions.get(key)?.us ?? 0) + us })
    const pkg = name.startsWith("(") && frame.url === "" ? name : packageOf(frame.url)
    packages.set(pkg, (packages.get(pkg) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs
  const pct = (us) => (busyUs > 0 ? (100 * us) / busyUs : 0)
  return {
    file,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, pct: pct(f.us) })),
    packages: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: pct(us) }))
  }
}

export const renderProfile = (summary) =>
  [
    `profile ${summary.file}`,
    `  sampled ${summary.totalMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms, busy ${summary.busyMs.toFixed(0)} ms (percentages are of busy time)`,
    "",
    renderTable(
      ["SELF MS", "%", "FUNCTION", "WHERE"],
      summary.functions.map((f) => [f.selfMs.toFixed(1), f.pct.toFixed(1), f.name, f.where]),
      "rrll"
    ),
    "",
    renderTable(
      ["PACKAGE", "SELF MS", "%"],
      summary.packages.map((p) => [p.name, p.selfMs.toFixed(1), p.pct.toFixed(1)])
    )
  ].join("\n")

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "20" } }, allowPositionals: true })
  if (positionals.length === 0) {
    console.error("usage: node scripts/bench/profile.mjs FILE.cpuprofile [--top 20]")
    process.exit(2)
  }
  for (const file of positionals) console.log(renderProfile(summarizeProfile(file, Number(values.top))) + "\n")
}
