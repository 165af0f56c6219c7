// Shared helpers for the benchmark harness: child processes (pinned, waited on by their output),
// memory sampling from /proc, percentiles and table formatting. Plain ESM, no build step.
import { spawn, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"

const HERE = path.dirname(fileURLToPath(import.meta.url))

// ---------------------------------------------------------------------------------------------
// CPU pinning

let tasksetChecked
/**
 * Whether `taskset` exists and both core 0 and core 1 are in this process's allowed set.
 * Returns { ok, reason }.
 */
export const pinningSupport = () => {
  if (tasksetChecked !== undefined) return tasksetChecked
  const probe = spawnSync("taskset", ["-c", "0,1", "true"], { stdio: "ignore" })
  if (probe.error !== undefined) {
    tasksetChecked = { ok: false, reason: "taskset not found" }
  } else if (probe.status !== 0) {
    tasksetChecked = { ok: false, reason: "cores 0 and 1 are not both available" }
  } else {
    tasksetChecked = { ok: true, reason: "taskset" }
  }
  return tasksetChecked
}

/** Pin every thread of this process to `core` (best effort). */
export const pinSelf = (core) => {
  const result = spawnSync("taskset", ["-a", "-c", "-p", String(core), String(process.pid)], { stdio: "ignore" })
  return result.status === 0
}

// ---------------------------------------------------------------------------------------------
// Child processes

const started = new Set()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Whatever happens to the harness, the processes it started do not outlive it.
  process.on("exit", () => {
    for (const child of started) {
      try {
        child.kill("SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

/**
 * Starts `command args` (pinned to `core` when pinning is on) and resolves once a stdout line
 * matches `ready` (a RegExp); resolves with { child, pid, match, lines, stderr, exited }.
 * Rejects if the process exits or `timeoutMs` passes first.
 */
export const startProcess = ({ name, command, args, env, core, pin, ready, timeoutMs = 30_000, cwd }) =>
  new Promise((resolve, reject) => {
    installExitHook()
    const argv = pin && core !== undefined ? ["taskset", "-c", String(core), command, ...args] : [command, ...args]
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    started.add(child)
    const handle = {
      name,
      child,
      pid: child.pid,
      lines: [],
      stderr: "",
      match: undefined,
      exitCode: undefined,
      exitSignal: undefined,
      exited: undefined
    }
    handle.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        started.delete(child)
        handle.exitCode = code
        handle.exitSignal = signal
        resolveExit({ code, signal })
      })
    })
    let settled = false
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      child.kill("SIGKILL")
      reject(new Error(`${name} did not become ready within ${timeoutMs} ms\nstdout:\n${handle.lines.join("\n")}\nstderr:\n${handle.stderr}`))
    }, timeoutMs)
    const rl = readline.createInterface({ input: child.stdout })
    rl.on("line", (line) => {
      handle.lines.push(line)
      if (handle.lines.length > 200) handle.lines.shift()
      if (!settled) {
        const match = ready.exec(line)
        if (match !== null) {
          settled = true
          clearTimeout(timer)
          handle.match = match
          resolve(handle)
        }
      }
    })
    child.stderr.on("data", (chunk) => {
      handle.stderr += chunk.toString()
      if (handle.stderr.length > 20_000) handle.stderr = handle.stderr.slice(-20_000)
    })
    child.once("error", (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(new Error(`${name} could not be started: ${error.message}`))
    })
    child.once("exit", (code, signal) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready\nstdout:\n${handle.lines.join("\n")}\nstderr:\n${handle.stderr}`))
    })
  })

/**
 * The mock upstream (`upstream.mjs`, on core 1 unless told otherwise); `match[1]` is its origin
 * (`http://127.0.0.1:PORT`).
 */
export const startMockUpstream = ({ pin, core = 1, name = "mock upstream", args = [] }) =>
  startProcess({
    name,
    command: process.execPath,
    args: [path.join(HERE, "upstream.mjs"), "--port", "0", ...args],
    core,
    pin,
    ready: /upstream listening on (http:\/\/127\.0\.0\.1:\d+)/
  })

/**
 * The raw proxy (`rawproxy.mjs`, on core 0) in front of `upstreamBase` (the mock upstream's
 * origin); `match[1]` is its base URL (`http://127.0.0.1:PORT/v1`).
 */
export const startRawProxy = ({ upstreamBase, pin, nodeArgs = [], env = {} }) =>
  startProcess({
    name: "raw proxy",
    command: process.execPath,
    args: [...nodeArgs, path.join(HERE, "rawproxy.mjs"), "--port", "0", "--upstream", upstreamBase],
    env,
    core: 0,
    pin,
    ready: /rawproxy listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/
  })

/**
 * `node [nodeArgs] BIN start --config CONFIG` on a free port of 127.0.0.1, its ledger at `db`
 * (on core 0 unless told otherwise); `match[1]` is its base URL (`http://127.0.0.1:PORT/v1`).
 */
export const startTollgate = ({ name, bin, nodeArgs = [], config, db, cwd, pin, core = 0, env = {} }) =>
  startProcess({
    name,
    command: process.execPath,
    args: [...nodeArgs, bin, "start", "--config", config, "--port", "0", "--host", "127.0.0.1"],
    env: { ...env, TOLLGATE_DB: db },
    cwd,
    core,
    pin,
    ready: /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/
  })

/**
 * Sends `signal` and waits for the process to exit; after `timeoutMs` it is killed with SIGKILL.
 * Resolves with { code, signal, killed, ms }.
 */
export const stopProcess = async (handle, { signal = "SIGINT", timeoutMs = 30_000 } = {}) => {
  const t0 = performance.now()
  if (handle.exitCode !== undefined || handle.exitSignal !== undefined) {
    return { code: handle.exitCode, signal: handle.exitSignal, killed: false, ms: 0 }
  }
  handle.child.kill(signal)
  let timer
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs)
  })
  const first = await Promise.race([handle.exited, timedOut])
  clearTimeout(timer)
  if (first === "timeout") {
    handle.child.kill("SIGKILL")
    const exit = await handle.exited
    return { ...exit, killed: true, ms: performance.now() - t0 }
  }
  return { ...first, killed: false, ms: performance.now() - t0 }
}

// ---------------------------------------------------------------------------------------------
// Memory

/** { rssKb, hwmKb } from /proc/PID/status, or undefined where /proc is not available. */
export const readMemory = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(text)
    const hwm = /VmHWM:\s+(\d+)\s+kB/.exec(text)
    return { rssKb: rss ? Number(rss[1]) : undefined, hwmKb: hwm ? Number(hwm[1]) : undefined }
  } catch {
    return undefined
  }
}

/**
 * Polls VmRSS of `pid` every `intervalMs` and keeps the highest value; `peak()` also reads VmHWM
 * (the kernel's own high-water mark), so a spike between polls is not missed. Values in kB.
 */
export const memorySampler = (pid, intervalMs = 100) => {
  let maxRssKb = 0
  let hwmKb = 0
  let available = false
  const sample = () => {
    const memory = readMemory(pid)
    if (memory === undefined) return
    available = true
    if (memory.rssKb !== undefined && memory.rssKb > maxRssKb) maxRssKb = memory.rssKb
    if (memory.hwmKb !== undefined && memory.hwmKb > hwmKb) hwmKb = memory.hwmKb
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    /** Call while the process is still alive (before stopping it). */
    peak: () => {
      sample()
      clearInterval(timer)
      return available ? { peakKb: Math.max(maxRssKb, hwmKb), polledMaxRssKb: maxRssKb, hwmKb } : undefined
    },
    stop: () => clearInterval(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// CPU time

let clockTicks
/** User + system CPU time of `pid` so far, in ms (from /proc/PID/stat), or undefined. */
export const readCpuMs = (pid) => {
  try {
    if (clockTicks === undefined) {
      const probe = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" })
      clockTicks = Number(probe.stdout) > 0 ? Number(probe.stdout) : 100
    }
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** The middle value of `xs` (the upper of the two middle ones for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** p50/p90/p99/max/mean of an array of milliseconds, rounded to microseconds. */
export const summarize = (values) => {
  if (values.length === 0) return { count: 0 }
  const sorted = Float64Array.from(values).sort()
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  const round = (v) => Math.round(v * 1000) / 1000
  return {
    count: sorted.length,
    min: round(sorted[0]),
    p50: round(at(50)),
    p90: round(at(90)),
    p99: round(at(99)),
    max: round(sorted[sorted.length - 1]),
    mean: round(sum / sorted.length)
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/**
 * A plain aligned table. By default the first column is left-aligned and the rest right-aligned;
 * `align` (a string such as "lrrl") sets each column.
 */
export const renderTable = (header, rows, align) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r?.[i] ?? "").length)))
  const left = (i) => (align === undefined ? i === 0 : align[i] === "l")
  const line = (cells) =>
    cells
      .map((cell, i) => (left(i) ? String(cell ?? "").padEnd(widths[i]) : String(cell ?? "").padStart(widths[i])))
      .join("  ")
      .trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map((r) => (r === null ? "" : line(r)))].join("\n")
}

/** A number with a fixed number of decimals, or "-" when missing. */
export const fmt = (value, decimals = 2) =>
  value === undefined || value === null || Number.isNaN(value) ? "-" : Number(value).toFixed(decimals)

export const fmtInt = (value) =>
  value === undefined || value === null || Number.isNaN(value) ? "-" : Math.round(value).toLocaleString("en-US")

/** Compact timestamp usable in a file name: 2025-01-31T12-00-00Z. */
export const stamp = (date = new Date()) => date.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-")

/** The admin listener's base URL a started tollgate printed (`admin on http://127.0.0.1:PORT ...`), if it serves one. */
export const adminUrlOf = (handle) => /admin on (http:\/\/127\.0\.0\.1:\d+)/.exec(handle.lines.join("\n"))?.[1]
