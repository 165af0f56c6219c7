/**
 * Past ledger rows at today's prices: `tollgate reprice` recomputes each row's cost from its stored
 * usage (after a model that was unpriced gets a price, or a price is corrected), and `tollgate
 * simulate` prices the same traffic as if other models had served it. Both read the ledger a page
 * at a time; only `reprice` writes, in one transaction.
 *
 * A row is priced as the request program prices it (`Proxy/Record.ts`): at the served model's price
 * in force when it was served, $0 when the simulated provider served it, and $0 with the price
 * recorded as saved for a cache hit or a shared answer. Cascade rows are left as they are: their
 * cost adds up earlier steps whose usage the ledger does not keep.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Money from "../Domain/Money.js"
import * as Ledger from "../Ledger.js"
import type { Usage } from "../Domain/Usage.js"
import type { Pricing } from "../Pricing.js"

/** The usage a ledger row stored, or `null` when it recorded no tokens. */
export const usageOf = (row: Ledger.ExportRow): Usage | null => {
  if (row.input_tokens === null && row.output_tokens === null) return null
  const write1h = row.cache_write_1h_tokens ?? 0
  return {
    inputTokens: row.input_tokens ?? 0,
    outputTokens: row.output_tokens ?? 0,
    cachedInputTokens: row.cached_input_tokens ?? 0,
    cacheWriteTokens: row.cache_write_tokens ?? 0,
    ...(write1h > 0 ? { cacheWrite1hTokens: write1h } : {}),
    reasoningTokens: row.reasoning_tokens ?? 0,
    source: row.usage_source === "estimated" ? "estimated" : "reported"
  }
}

export interface RepricedRow {
  readonly id: number
  readonly requestId: string
  readonly model: string
  readonly oldCostUsd: number | null
  readonly newCostUsd: number | null
  readonly savedUsd: number | null
}

export interface RepriceSummary {
  readonly since: string
  /** Rows with tokens, not cascades. */
  readonly examined: number
  readonly changed: number
  /** Cascade rows, left as they are. */
  readonly skippedCascades: number
  /** Rows that had no price and have one now. */
  readonly nowPriced: number
  /** Rows that had a price and have none now (a config override removed). */
  readonly nowUnpriced: number
  readonly oldTotalUsd: number
  readonly newTotalUsd: number
  /** Models of the changed rows: count and difference. */
  readonly byModel: ReadonlyArray<{ readonly model: string; readonly rows: number; readonly oldUsd: number; readonly newUsd: number }>
  readonly dryRun: boolean
}

const FREE_STATUSES = new Set(["hit", "coalesced"])

const sameCost = (a: number | null, b: number | null) => (a === null || b === null ? a === b : Math.abs(a - b) < 1e-12)

/** The row's cost at `pricing`'s prices, as the request program would book it now. */
export const repriceRow = (row: Ledger.ExportRow, pricing: Pricing["Type"]): RepricedRow | undefined => {
  const usage = usageOf(row)
  const model = row.served_model ?? row.requested_model
  if (usage === null || model === null || row.cascade !== null) return undefined
  const cost = pricing.costOf(model, usage, row.provider, row.ts)
  const free = row.cache_status !== null && FREE_STATUSES.has(row.cache_status)
  return {
    id: row.id,
    requestId: row.request_id,
    model,
    oldCostUsd: row.cost_usd,
    newCostUsd: free && cost !== null ? 0 : cost,
    savedUsd: free ? cost : null
  }
}

/** Recompute `cost_usd`, `priced` and `saved_usd` of the rows since `sinceMs`; writes nothing when `dryRun`. */
export const reprice = (pricing: Pricing["Type"], options: { readonly sinceMs: number; readonly dryRun: boolean }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let examined = 0
    let skippedCascades = 0
    let nowPriced = 0
    let nowUnpriced = 0
    let oldTotal = 0
    let newTotal = 0
    const changes: Array<RepricedRow> = []
    yield* Stream.runForEach(Ledger.rows({ sinceMs: options.sinceMs }), (row) =>
      Effect.sync(() => {
        if (row.cascade !== null) {
          skippedCascades++
          oldTotal += row.cost_usd ?? 0
          newTotal += row.cost_usd ?? 0
          return
        }
        const repriced = repriceRow(row, pricing)
        oldTotal += row.cost_usd ?? 0
        if (repriced === undefined) {
          newTotal += row.cost_usd ?? 0
          return
        }
        examined++
        newTotal += repriced.newCostUsd ?? 0
        if (!sameCost(repriced.oldCostUsd, repriced.newCostUsd) || !sameCost(row.saved_usd, repriced.savedUsd)) {
          changes.push(repriced)
          if (repriced.oldCostUsd === null && repriced.newCostUsd !== null) nowPriced++
          if (repriced.oldCostUsd !== null && repriced.newCostUsd === null) nowUnpriced++
        }
      }))
    if (!options.dryRun && changes.length > 0) {
      yield* sql.withTransaction(Effect.forEach(changes, (c) =>
        sql`UPDATE requests SET cost_usd = ${c.newCostUsd}, priced = ${c.newCostUsd === null ? 0 : 1}, saved_usd = ${c.savedUsd} WHERE id = ${c.id}`, { discard: true }))
    }
    const byModel = new Map<string, { rows: number; oldUsd: number; newUsd: number }>()
    for (const c of changes) {
      const m = byModel.get(c.model) ?? { rows: 0, oldUsd: 0, newUsd: 0 }
      m.rows++
      m.oldUsd += c.oldCostUsd ?? 0
      m.newUsd += c.newCostUsd ?? 0
      byModel.set(c.model, m)
    }
    return {
      since: new Date(options.sinceMs).toISOString(),
      examined,
      changed: changes.length,
      skippedCascades,
      nowPriced,
      nowUnpriced,
      oldTotalUsd: Money.json(oldTotal),
      newTotalUsd: Money.json(newTotal),
      byModel: [...byModel].map(([model, m]) => ({ model, rows: m.rows, oldUsd: Money.json(m.oldUsd), newUsd: Money.json(m.newUsd) }))
        .sort((a, b) => Math.abs(b.newUsd - b.oldUsd) - Math.abs(a.newUsd - a.oldUsd) || a.model.localeCompare(b.model)),
      dryRun: options.dryRun
    } satisfies RepriceSummary
  })

export interface SimulatedModel {
  /** The model that served the traffic. */
  readonly model: string
  /** The model it is priced as (itself when not mapped). */
  readonly as: string
  readonly requests: number
  readonly inputTokens: number
  readonly outputTokens: number
  /** What the ledger booked for it. */
  readonly storedUsd: number
  /** At today's price of `model`; `null` when it has no price. */
  readonly currentUsd: number | null
  /** At today's price of `as`; `null` when it has no price. */
  readonly simulatedUsd: number | null
}

export interface SimulateSummary {
  readonly since: string
  readonly map: Readonly<Record<string, string>>
  readonly models: ReadonlyArray<SimulatedModel>
  readonly storedUsd: number
  readonly currentUsd: number
  readonly simulatedUsd: number
  /** Requests whose model (or mapped model) has no price: not in the totals. */
  readonly unpriced: number
  /** Cache hits and shared answers: no provider call, $0 on any model. */
  readonly free: number
}

/**
 * What the traffic since `sinceMs` would have cost had each model in `map` been served as the
 * model it maps to (same tokens, cache reads and writes included), at today's prices. Nothing is
 * sent anywhere; the simulated provider's rows are priced too, since the question is hypothetical.
 */
export const simulate = (pricing: Pricing["Type"], options: { readonly sinceMs: number; readonly map: Readonly<Record<string, string>> }) =>
  Effect.gen(function*() {
    const groups = new Map<string, { model: string; as: string; requests: number; input: number; output: number; stored: number; current: number | null; simulated: number | null }>()
    let unpriced = 0
    let free = 0
    yield* Stream.runForEach(Ledger.rows({ sinceMs: options.sinceMs }), (row) =>
      Effect.sync(() => {
        const usage = usageOf(row)
        const model = row.served_model ?? row.requested_model
        if (usage === null || model === null) return
        if (row.cache_status !== null && FREE_STATUSES.has(row.cache_status)) {
          free++
          return
        }
        const as = options.map[model] ?? model
        const key = `${model}\u0000${as}`
        const group = groups.get(key) ?? { model, as, requests: 0, input: 0, output: 0, stored: 0, current: 0, simulated: 0 }
        const current = pricing.costOf(model, usage, null, row.ts)
        const simulated = pricing.costOf(as, usage, null, row.ts)
        if (simulated === null || current === null) unpriced++
        group.requests++
        group.input += usage.inputTokens
        group.output += usage.outputTokens
        group.stored += row.cost_usd ?? 0
        group.current = current === null || group.current === null ? null : group.current + current
        group.simulated = simulated === null || group.simulated === null ? null : group.simulated + simulated
        groups.set(key, group)
      }))
    const models = [...groups.values()]
      .map((g): SimulatedModel => ({
        model: g.model,
        as: g.as,
        requests: g.requests,
        inputTokens: g.input,
        outputTokens: g.output,
        storedUsd: Money.json(g.stored),
        currentUsd: Money.jsonOrNull(g.current),
        simulatedUsd: Money.jsonOrNull(g.simulated)
      }))
      .sort((a, b) => (b.simulatedUsd ?? 0) - (a.simulatedUsd ?? 0) || a.model.localeCompare(b.model))
    const sum = (pick: (m: SimulatedModel) => number | null) => Money.json(models.reduce((n, m) => n + (pick(m) ?? 0), 0))
    return {
      since: new Date(options.sinceMs).toISOString(),
      map: options.map,
      models,
      storedUsd: sum((m) => m.storedUsd),
      currentUsd: sum((m) => (m.simulatedUsd === null ? null : m.currentUsd)),
      simulatedUsd: sum((m) => (m.currentUsd === null ? null : m.simulatedUsd)),
      unpriced,
      free
    } satisfies SimulateSummary
  })
