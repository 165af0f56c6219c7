/**
 * Nearest-rank percentiles computed in memory, the figures `Ledger.stats`' query gives (its
 * `rn = (n * p + 99) / 100`), for a reading that holds the values itself (`Ledger.summaryPaged`).
 */

/** Nearest-rank percentiles of latency and TTFB, as `stats` computes them. */
export interface Percentile {
  readonly p50LatencyMs: number | null
  readonly p95LatencyMs: number | null
  readonly p50TtfbMs: number | null
  readonly p95TtfbMs: number | null
}

/**
 * The `k`-th smallest (0-based) of `values`, found by partitioning them in place (Hoare's
 * selection): linear on average, where a sort of a large window would hold the thread for longer.
 */
const select = (values: Float64Array, k: number): number => {
  let lo = 0
  let hi = values.length - 1
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1]!
    let i = lo
    let j = hi
    while (i <= j) {
      while (values[i]! < pivot) i++
      while (values[j]! > pivot) j--
      if (i <= j) {
        const swap = values[i]!
        values[i++] = values[j]!
        values[j--] = swap
      }
    }
    if (k <= j) hi = j
    else if (k >= i) lo = i
    else break
  }
  return values[k]!
}

/** The nearest-rank `p` of `values` (reordered): the query's `rn = (n * p + 99) / 100`. */
const rank = (values: Float64Array, p: number): number | null =>
  values.length === 0 ? null : select(values, Math.floor((values.length * p + 99) / 100) - 1)

export const percentileOf = (latency: Float64Array, ttfb: Float64Array): Percentile => ({
  p50LatencyMs: rank(latency, 50),
  p95LatencyMs: rank(latency, 95),
  p50TtfbMs: rank(ttfb, 50),
  p95TtfbMs: rank(ttfb, 95)
})

/** `parts` end to end. */
export const joined = (parts: ReadonlyArray<ReadonlyArray<number>>): Float64Array => {
  const out = new Float64Array(parts.reduce((n, part) => n + part.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}
