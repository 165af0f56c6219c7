/**
 * The terminal dashboard's screen, drawn from a snapshot: a pure function from what was read (and
 * the terminal's size) to lines of text, so a test renders a frame without a terminal. Every line
 * fits the width (measured without colour codes); the frame never has more lines than the height;
 * the recent requests take the rows left over.
 */
import * as Money from "../Domain/Money.js"
import type { RecentRow, Snapshot, StatsRow } from "./Snapshot.js"

export interface View {
  /** The last snapshot read; none before the first. */
  readonly snapshot: Snapshot | undefined
  /** Requests per second over the last refresh; none until two snapshots were read. */
  readonly rate: number | undefined
  /** Why the last refresh failed, shown over the last data until one succeeds. */
  readonly problem: string | undefined
  /** Log lines of the server in this process (`start --dash`), newest last. */
  readonly log: ReadonlyArray<string>
  readonly width: number
  readonly height: number
  readonly color: boolean
  /** Now (Unix ms): the clock in the title. */
  readonly now: number
}

type Style = "bold" | "dim" | "red" | "yellow" | "green" | "cyan" | "inverse"
const SGR: Record<Style, string> = { bold: "1", dim: "2", red: "31", yellow: "33", green: "32", cyan: "36", inverse: "7" }

/** A piece of a line: its text and, on a colour terminal, its style. */
interface Cell {
  readonly text: string
  readonly style?: Style | undefined
}

const cell = (text: string, style?: Style): Cell => ({ text, style })

/** The cells as one line of at most `width` columns (cut where it would overflow). */
const line = (cells: ReadonlyArray<Cell>, width: number, color: boolean): string => {
  let out = ""
  let left = width
  for (const c of cells) {
    if (left <= 0) break
    const text = c.text.length > left ? c.text.slice(0, left) : c.text
    left -= text.length
    out += color && c.style !== undefined && text.length > 0 ? `\u001b[${SGR[c.style]}m${text}\u001b[0m` : text
  }
  return out
}

const pad = (text: string, n: number): string => (text.length >= n ? text.slice(0, n) : text + " ".repeat(n - text.length))
const padLeft = (text: string, n: number): string => (text.length >= n ? text.slice(0, n) : " ".repeat(n - text.length) + text)

const COUNT = new Intl.NumberFormat("en-US")
/** A count with thousands separators. */
export const count = (n: number): string => COUNT.format(n)

const usdOrDash = (usd: number | null | undefined): string => (usd === null || usd === undefined ? "-" : Money.usd(usd))

/** Seconds as `42s`, `3m12s`, `5h03m`, `2d04h`. */
export const uptime = (seconds: number): string => {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`
}

/** `HH:MM:SS` in this machine's time zone. */
const clock = (ms: number): string => {
  const d = new Date(ms)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":")
}

const rateText = (rate: number | undefined): string => (rate === undefined ? "-" : rate >= 100 ? String(Math.round(rate)) : rate.toFixed(1))

/** The totals line: what the issue asks the dashboard to show first. */
const summary = (view: View, s: Snapshot): Array<Cell> => {
  const t = s.today
  return [
    cell("requests/s "), cell(rateText(view.rate), "bold"),
    cell("   today "), cell(`${count(t?.requests ?? 0)} requests`, "bold"),
    cell("   spend "), cell(Money.usd(t?.costUsd ?? 0), "bold"),
    cell(`   saved ${Money.usd(t?.savedUsd ?? 0)}`),
    cell("   errors "), cell(count(t?.errors ?? 0), (t?.errors ?? 0) > 0 ? "red" : undefined),
    cell(`   cache hits ${count(t?.cacheHits ?? 0)}`)
  ]
}

const MODEL_COLUMNS = [
  { title: "model", width: 28, left: true },
  { title: "requests", width: 9 },
  { title: "errors", width: 7 },
  { title: "tokens in", width: 12 },
  { title: "tokens out", width: 11 },
  { title: "spend", width: 12 },
  { title: "p50 ms", width: 8 },
  { title: "p95 ms", width: 8 }
] as const

const row = (values: ReadonlyArray<string>, columns: ReadonlyArray<{ readonly width: number; readonly left?: boolean }>): string =>
  values.map((v, i) => (columns[i]!.left === true ? pad(v, columns[i]!.width) : padLeft(v, columns[i]!.width))).join(" ")

const modelRow = (m: StatsRow): string =>
  row([
    m.group,
    count(m.requests),
    count(m.errors),
    count(m.inputTokens),
    count(m.outputTokens),
    usdOrDash(m.costUsd),
    m.p50LatencyMs === null ? "-" : String(Math.round(m.p50LatencyMs)),
    m.p95LatencyMs === null ? "-" : String(Math.round(m.p95LatencyMs))
  ], MODEL_COLUMNS)

const RECENT_COLUMNS = [
  { title: "time", width: 8, left: true },
  { title: "model", width: 24, left: true },
  { title: "provider", width: 12, left: true },
  { title: "route", width: 10, left: true },
  { title: "status", width: 6 },
  { title: "in/out tokens", width: 14 },
  { title: "cost", width: 11 },
  { title: "latency", width: 9 },
  { title: "cache", width: 9, left: false }
] as const

const recentRow = (r: RecentRow): string =>
  row([
    clock(Date.parse(r.time)),
    r.model ?? "-",
    r.provider ?? "-",
    r.route ?? "-",
    String(r.status),
    r.inputTokens === null && r.outputTokens === null ? "-" : `${r.inputTokens ?? "-"}/${r.outputTokens ?? "-"}`,
    usdOrDash(r.costUsd),
    `${Math.round(r.latencyMs)} ms`,
    r.cache ?? ""
  ], RECENT_COLUMNS)

const heading = (title: string): Array<Cell> => [cell(title, "bold")]

const columnTitles = (columns: ReadonlyArray<{ readonly title: string; readonly width: number; readonly left?: boolean }>): Array<Cell> => [
  cell(row(columns.map((c) => c.title), columns), "dim")
]

const BREAKER_STYLE = { closed: "green", "half-open": "yellow", open: "red" } as const

/** Breakers as `target state` pieces, open ones first, wrapped to the width (at most `max` lines). */
const breakerLines = (s: Snapshot, width: number, max: number): Array<Array<Cell>> => {
  if (s.breakers.length === 0) return [[cell("  none yet (a breaker appears with its target's first request)", "dim")]]
  const order = { open: 0, "half-open": 1, closed: 2 } as const
  const sorted = [...s.breakers].sort((a, b) => order[a.state] - order[b.state] || a.target.localeCompare(b.target))
  const lines: Array<Array<Cell>> = []
  let current: Array<Cell> = [cell("  ")]
  let used = 2
  for (const b of sorted) {
    const label = b.state === "open" ? `OPEN ${Math.ceil(b.retryAfterMs / 1000)}s` : b.state
    const piece = `${b.target} ${label}`
    if (used > 2 && used + 3 + piece.length > width) {
      lines.push(current)
      current = [cell("  ")]
      used = 2
    }
    if (used > 2) current.push(cell("   "))
    current.push(cell(`${b.target} `), cell(label, BREAKER_STYLE[b.state]))
    used += (used > 2 ? 3 : 0) + piece.length
  }
  lines.push(current)
  if (lines.length > max) return [...lines.slice(0, max - 1), [cell(`  ... and more (${s.breakers.length} breakers)`, "dim")]]
  return lines
}

const BAR = 20

const budgetLines = (s: Snapshot, now: number): Array<Array<Cell>> => {
  if (!s.budget.enabled) return [[cell("  budgets off (budget.enabled)", "dim")]]
  if (s.budget.limits.length === 0) return [[cell("  no limits set", "dim")]]
  const lines = s.budget.limits.map((l) => {
    const used = l.limitUsd > 0 ? (l.spentUsd + l.reservedUsd) / l.limitUsd : 0
    const filled = Math.max(0, Math.min(BAR, Math.round(used * BAR)))
    const style: Style = used >= 1 ? "red" : used >= 0.8 ? "yellow" : "green"
    const who = `${l.scope}${l.key === null ? "" : ` ${l.key}`} ${l.window}`
    const resets = l.resetsAt === null ? "" : `   resets in ${uptime((Date.parse(l.resetsAt) - now) / 1000)}`
    return [
      cell(`  ${pad(who, 26)} `),
      cell("#".repeat(filled), style),
      cell(`${".".repeat(BAR - filled)} ${padLeft(String(Math.round(used * 100)), 3)}%   ${Money.usd(l.spentUsd)} of ${Money.usd(l.limitUsd)}`),
      cell(l.reservedUsd > 0 ? ` (+${Money.usd(l.reservedUsd)} reserved)` : ""),
      cell(resets, "dim")
    ]
  })
  if (s.budget.blocks.length > 0) lines.push([cell(`  ${s.budget.blocks.length} session(s) blocked by anomaly`, "red")])
  return lines
}

/** The frame: at most `height` lines of at most `width` columns. */
export const render = (view: View): Array<string> => {
  const { color, height, width } = view
  const out: Array<Array<Cell>> = []
  const s = view.snapshot
  const title = s === undefined ? "tollgate dash" : `tollgate dash  ${s.admin}  v${s.version}  up ${uptime(s.uptimeSeconds)}`
  const right = `${clock(view.now)}  q quit`
  out.push([cell(pad(title, Math.max(0, width - right.length - 1)), "bold"), cell(" "), cell(right, "dim")])
  if (view.problem !== undefined) out.push([cell(`! ${view.problem} (retrying)`, "red")])
  if (s === undefined) {
    out.push([cell("reading the admin listener...", "dim")])
    return out.slice(0, height).map((c) => line(c, width, color))
  }
  out.push(summary(view, s))
  out.push([cell(`ledger ${s.ledger.status}, queue ${count(s.ledger.queueDepth)}`, s.ledger.status === "ok" ? "dim" : "red")])

  const tail: Array<Array<Cell>> = []
  tail.push([])
  tail.push(heading("BREAKERS"))
  tail.push(...breakerLines(s, width, 3))
  tail.push([])
  tail.push(heading("BUDGETS"))
  tail.push(...budgetLines(s, view.now).slice(0, 6))
  if (view.log.length > 0) {
    tail.push([])
    tail.push(heading("LOG"))
    for (const l of view.log.slice(-3)) tail.push([cell(`  ${l}`, "dim")])
  }

  // Models get what is left after the fixed parts and a few recent requests, at most 10 rows.
  const models: Array<Array<Cell>> = [[], heading("MODELS (today)"), columnTitles(MODEL_COLUMNS)]
  const recentMin = 4
  const room = height - out.length - tail.length - recentMin - models.length - 2
  const shown = Math.max(1, Math.min(10, room, Math.max(1, s.models.length)))
  if (s.models.length === 0) models.push([cell("no requests today", "dim")])
  for (const m of s.models.slice(0, shown)) models.push([cell(modelRow(m))])
  if (s.models.length > shown) models.push([cell(`... ${s.models.length - shown} more`, "dim")])
  out.push(...models, ...tail)

  out.push([], heading("RECENT REQUESTS"), columnTitles(RECENT_COLUMNS))
  const left = height - out.length
  if (s.recent.length === 0) out.push([cell("none since the server started", "dim")])
  for (const r of s.recent.slice(0, Math.max(0, left))) {
    out.push([cell(recentRow(r), r.status >= 400 ? "red" : undefined)])
  }
  return out.slice(0, height).map((c) => line(c, width, color))
}
