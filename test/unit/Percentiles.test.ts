/**
 * The dashboard's in-memory percentiles (`Ledger/Percentiles.ts`, found by selection in place)
 * against the definition `Ledger.stats`' query uses: sort, then the value at rank
 * `(n * p + 99) / 100` (nearest rank, 1-based), for any list of values, duplicates and all.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { joined, percentileOf } from "../../src/Ledger/Percentiles.js"

const byDefinition = (values: ReadonlyArray<number>, p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length * p + 99) / 100) - 1]!
}

const values = FastCheck.array(FastCheck.oneof(FastCheck.double({ min: 0, max: 1e6, noNaN: true }), FastCheck.integer({ min: 0, max: 5 })), {
  maxLength: 300
})

describe("in-memory percentiles", () => {
  it.prop("p50 and p95 are the query's nearest-rank values", [values, values], ([latency, ttfb]) => {
    const found = percentileOf(Float64Array.from(latency), Float64Array.from(ttfb))
    assert.deepStrictEqual(found, {
      p50LatencyMs: byDefinition(latency, 50),
      p95LatencyMs: byDefinition(latency, 95),
      p50TtfbMs: byDefinition(ttfb, 50),
      p95TtfbMs: byDefinition(ttfb, 95)
    })
  })

  it.prop("the parts of a window, joined, give the window's", [FastCheck.array(values, { maxLength: 6 })], ([parts]) => {
    const all = parts.flat()
    assert.deepStrictEqual(Array.from(joined(parts)), all)
    assert.strictEqual(percentileOf(joined(parts), new Float64Array(0)).p95LatencyMs, byDefinition(all, 95))
  })
})
