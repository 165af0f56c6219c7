/**
 * The last requests, for the admin listener's `GET /admin/recent` (and the terminal dashboard that
 * reads it): a bounded ring of the ledger rows as they are booked, held in memory only, so the
 * feed shows what just happened without a query on the ledger.
 *
 * On the request path this is one array slot written: `push` keeps the row object the proxy made
 * (rows are immutable), and the metadata shown is picked out only when the feed is read.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type { LedgerEvent } from "../Domain/LedgerEvent.js"
import * as Money from "../Domain/Money.js"

/** How many rows the feed keeps: a screenful or two for the dashboards, a bounded amount of memory. */
export const CAPACITY = 200

/** What `?limit=` gives when it is absent. */
export const DEFAULT_LIMIT = 50

/** One request as the feed shows it: metadata only (no prompt, completion, key or client hash). */
export interface RecentRequest {
  readonly time: string
  readonly requestId: string
  readonly endpoint: string
  readonly model: string | null
  readonly provider: string | null
  readonly route: string | null
  readonly status: number
  readonly errorType: string | null
  readonly stream: boolean
  readonly inputTokens: number | null
  readonly outputTokens: number | null
  /** USD; null when the model has no price. */
  readonly costUsd: number | null
  readonly latencyMs: number
  readonly ttfbMs: number | null
  readonly cache: string | null
  readonly attempts: number
  readonly failover: boolean
  readonly aborted: boolean
}

export class Recent extends Context.Tag("tollgate/Recent")<Recent, {
  /** Keeps a booked row (the oldest is dropped when full). Plain and synchronous: it is on the request path. */
  readonly push: (row: LedgerEvent) => void
  /** The last `limit` rows, newest first. */
  readonly latest: (limit: number) => ReadonlyArray<RecentRequest>
  readonly capacity: number
}>() {}

const round = (ms: number): number => Math.round(ms * 10) / 10

/** A row's feed entry: the fields picked out, amounts rounded as JSON shows them. */
export const entryOf = (row: LedgerEvent): RecentRequest => ({
  time: new Date(row.ts).toISOString(),
  requestId: row.requestId,
  endpoint: row.endpoint,
  model: row.servedModel ?? row.requestedModel,
  provider: row.provider,
  route: row.route,
  status: row.status,
  errorType: row.errorType,
  stream: row.stream,
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costUsd: Money.jsonOrNull(row.costUsd),
  latencyMs: round(row.latencyMs),
  ttfbMs: row.ttfbMs === null ? null : round(row.ttfbMs),
  cache: row.cacheStatus,
  attempts: row.attempts,
  failover: row.failover,
  aborted: row.aborted
})

export const make = (capacity: number = CAPACITY): Recent["Type"] => {
  const ring: Array<LedgerEvent | undefined> = new Array(capacity)
  let next = 0
  let size = 0
  return Recent.of({
    capacity,
    push: (row) => {
      ring[next] = row
      next = next + 1 === capacity ? 0 : next + 1
      if (size < capacity) size++
    },
    latest: (limit) => {
      const n = Math.max(0, Math.min(limit, size))
      const out: Array<RecentRequest> = []
      for (let i = 1; i <= n; i++) out.push(entryOf(ring[(next - i + capacity) % capacity]!))
      return out
    }
  })
}

export const layer: Layer.Layer<Recent> = Layer.sync(Recent, () => make())

/** `?limit=N` of a feed URL: 1 to the ring's capacity, `DEFAULT_LIMIT` when absent; else what is wrong. */
export const limitOf = (url: string, capacity: number): number | { readonly code: "invalid_limit"; readonly message: string } => {
  const text = new URL(url, "http://admin").searchParams.get("limit")
  if (text === null) return Math.min(DEFAULT_LIMIT, capacity)
  const n = Number(text)
  return /^\d+$/.test(text.trim()) && n >= 1 && n <= capacity
    ? n
    : { code: "invalid_limit", message: `limit: expected a whole number from 1 to ${capacity}; got "${text}"` }
}
