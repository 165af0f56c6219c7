/**
 * The Prometheus text exposition format (version 0.0.4) of a snapshot of Effect's metric
 * registry: one `# HELP` and `# TYPE` per metric name, then its series. Counters, gauges and
 * histograms (`_bucket{le=...}` cumulative, `+Inf` last, `_sum`, `_count`) are written as such;
 * a summary as a summary (`{quantile=...}`, `_sum`, `_count`); a frequency as a counter per value.
 */
import type * as MetricKey from "effect/MetricKey"
import type * as MetricLabel from "effect/MetricLabel"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** A metric name Prometheus accepts: `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
const metricName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`
}

const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
}

/** A label value: backslash, double quote and newline escaped. */
const labelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** HELP text: backslash and newline escaped. */
const helpText = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const labels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, extra?: readonly [string, string]): string => {
  const parts = tags.map((t) => `${labelName(t.key)}="${labelValue(t.value)}"`)
  if (extra !== undefined) parts.push(`${extra[0]}="${labelValue(extra[1])}"`)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const number = (n: number | bigint): string =>
  typeof n === "bigint" ? n.toString() : Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)

type Kind = "counter" | "gauge" | "histogram" | "summary"

const kindOf = (state: MetricState.MetricState.Untyped): Kind | undefined =>
  MetricState.isCounterState(state) || MetricState.isFrequencyState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
    ? "gauge"
    : MetricState.isHistogramState(state)
    ? "histogram"
    : MetricState.isSummaryState(state)
    ? "summary"
    : undefined

const seriesOf = (name: string, key: MetricKey.MetricKey.Untyped, state: MetricState.MetricState.Untyped): Array<string> => {
  const tags = key.tags
  if (MetricState.isCounterState(state)) return [`${name}${labels(tags)} ${number(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labels(tags)} ${number(state.value)}`]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([value, count]) => `${name}${labels(tags, ["value", value])} ${count}`)
  }
  if (MetricState.isHistogramState(state)) {
    const lines: Array<string> = []
    let sawInf = false
    for (const [bound, count] of state.buckets) {
      if (bound === Infinity) sawInf = true
      lines.push(`${name}_bucket${labels(tags, ["le", number(bound)])} ${count}`)
    }
    if (!sawInf) lines.push(`${name}_bucket${labels(tags, ["le", "+Inf"])} ${state.count}`)
    lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    return lines
  }
  if (MetricState.isSummaryState(state)) {
    const lines = state.quantiles.map(([q, value]) => `${name}${labels(tags, ["quantile", number(q)])} ${value._tag === "Some" ? number(value.value) : "NaN"}`)
    lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    return lines
  }
  return []
}

/** The exposition text of `pairs` (from `Metric.unsafeSnapshot()`), metrics sorted by name. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const byName = new Map<string, { kind: Kind; help: string | undefined; series: Array<readonly [string, ReadonlyArray<string>]> }>()
  for (const pair of pairs) {
    const state = pair.metricState as MetricState.MetricState.Untyped
    const kind = kindOf(state)
    if (kind === undefined) continue
    const name = metricName(pair.metricKey.name)
    const description = Option.getOrUndefined(pair.metricKey.description)
    let entry = byName.get(name)
    if (entry === undefined) {
      entry = { kind, help: description, series: [] }
      byName.set(name, entry)
    }
    // One name, one type: a series of another type under the same name would not parse.
    if (entry.kind !== kind) continue
    entry.help ??= description
    entry.series.push([labels(pair.metricKey.tags), seriesOf(name, pair.metricKey, state)])
  }
  const out: Array<string> = []
  for (const name of [...byName.keys()].sort()) {
    const entry = byName.get(name)!
    const series = entry.series.filter(([, lines]) => lines.length > 0)
    if (series.length === 0) continue
    out.push(`# HELP ${name} ${helpText(entry.help ?? name)}`, `# TYPE ${name} ${entry.kind}`)
    // Series sorted by their labels, each one's lines (a histogram's buckets) kept in order.
    for (const [, lines] of series.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out.push(...lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}
