/**
 * What the dashboard charts, read from the ledger: spend, requests, cache hits and money saved,
 * errors, retries and failovers, p50/p95 latency and time to first byte, per bucket of time
 * (minute, hour, day) and in total; the same summary per model, provider, route, project and
 * session; and the latest rows (metadata only) for the live tail. `GET /admin/series` answers it
 * as JSON, and the dashboard's event stream (`Admin/Events.ts`) pushes it.
 *
 * Every figure is `Ledger.stats`'s (one query text, grouped by a time bucket or a column), so the
 * charts, `tollgate stats` and `/admin/stats` agree on every engine.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Money from "../Domain/Money.js"
import * as Ledger from "../Ledger.js"
import * as Stats from "../Stats.js"

/** The buckets a series can be cut into. */
export const STEPS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const
export type Step = keyof typeof STEPS

/** Most buckets one series may have: a week by minute is refused, a year by day is not. */
export const MAX_BUCKETS = 2_000

/** Groups shown per breakdown: the costliest, then the busiest. */
export const BREAKDOWN_LIMIT = 10

/** The breakdowns, in the order the page shows them. */
export const BREAKDOWNS = ["model", "provider", "route", "project", "session"] as const
type Breakdown = typeof BREAKDOWNS[number]

export interface Options {
  /** As written (`24h`, `7d`, a date): the key under which an answer is shared. */
  readonly since: string
  readonly sinceMs: number
  readonly step: Step
}

export interface OptionsProblem {
  readonly code: "invalid_since" | "invalid_step"
  readonly message: string
}

/** The step that keeps a window of `spanMs` readable: minutes up to 3 hours, hours up to 3 days, else days. */
const stepFor = (spanMs: number): Step => spanMs <= 3 * STEPS.hour ? "minute" : spanMs <= 3 * STEPS.day ? "hour" : "day"

/** The options of `?since=24h&step=hour` (`since` defaults to 24h, `step` to what suits the window), or what is wrong. */
export const optionsOf = (url: string, now: number): Options | OptionsProblem => {
  const query = new URL(url, "http://tollgate").searchParams
  const since = (query.get("since") ?? "24h").trim()
  const sinceMs = Stats.sinceOf(since, now)
  if (sinceMs === undefined) return { code: "invalid_since", message: Stats.sinceProblem(since) }
  const stepText = query.get("step")
  if (stepText !== null && !(stepText in STEPS)) {
    return { code: "invalid_step", message: `step: expected one of ${Object.keys(STEPS).join(", ")}; got "${stepText}"` }
  }
  // `all` starts at the epoch: its buckets are counted from the first row, not from 1970.
  const span = since === "all" ? STEPS.day * 365 : Math.max(0, now - sinceMs)
  const step = (stepText as Step | null) ?? stepFor(span)
  if (since !== "all" && span / STEPS[step] > MAX_BUCKETS) {
    return { code: "invalid_step", message: `step: ${since} by ${step} is more than ${MAX_BUCKETS} buckets; use a longer step or a shorter window` }
  }
  return { since, sinceMs, step }
}

const rounded = <R extends { readonly costUsd: number; readonly savedUsd: number }>(row: R): R => ({
  ...row,
  costUsd: Money.json(row.costUsd),
  savedUsd: Money.json(row.savedUsd)
})

/** A record of one value per breakdown. */
const perBreakdown = <A>(value: (by: Breakdown, i: number) => A): Record<Breakdown, A> =>
  BREAKDOWNS.reduce((out, by, i) => {
    out[by] = value(by, i)
    return out
  }, {} as Record<Breakdown, A>)

/** The shape of a window's charts, however they were read. */
const answer = (
  options: Options,
  read: { readonly total: Ledger.StatsRow | undefined; readonly buckets: ReadonlyArray<Ledger.BucketRow>; readonly groups: Record<Breakdown, ReadonlyArray<Ledger.StatsRow>> }
) => ({
  since: new Date(options.sinceMs).toISOString(),
  step: options.step,
  stepMs: STEPS[options.step],
  totals: read.total === undefined ? null : rounded((({ group: _, ...row }) => row)(read.total)),
  buckets: read.buckets.map(rounded),
  breakdowns: perBreakdown((by) => read.groups[by].map(rounded))
})

/**
 * The charts' data for a window: `Ledger.stats` in total and per bucket with every percentile,
 * and per model, provider, route, project and session without (each would be another sort of the
 * window; `/admin/stats?by=` has them). On SQLite, whose queries run on the thread that serves
 * requests, the same figures are read in pages (`Ledger.summaryPaged`); elsewhere the database
 * does the work in its own process.
 */
export const series = (options: Options) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql.onDialectOrElse({
        sqlite: () => Ledger.summaryPaged({ sinceMs: options.sinceMs, stepMs: STEPS[options.step], by: BREAKDOWNS, limit: BREAKDOWN_LIMIT }),
        orElse: () =>
          Effect.all({
            total: Effect.map(Ledger.stats({ sinceMs: options.sinceMs, by: undefined, percentiles: "latency+ttfb" }), (rows) => rows[0]),
            buckets: Ledger.buckets({ sinceMs: options.sinceMs, stepMs: STEPS[options.step] }),
            groups: Effect.map(
              Effect.forEach(BREAKDOWNS, (by) => Ledger.stats({ sinceMs: options.sinceMs, by, limit: BREAKDOWN_LIMIT, percentiles: "none" })),
              (rows) => perBreakdown((_, i) => rows[i]!)
            )
          })
      }),
      (read) => answer(options, read)
    ))

export type Series = Effect.Effect.Success<ReturnType<typeof series>>

/** Rows in the live tail. */
export const TAIL_SIZE = 50

/** One row of the live tail: what a request was and cost, never what it said. */
export interface TailRow {
  readonly id: number
  readonly ts: number
  readonly requestId: string
  readonly endpoint: string
  readonly route: string | null
  readonly provider: string | null
  readonly model: string | null
  readonly stream: boolean
  readonly status: number
  readonly errorType: string | null
  readonly attempts: number
  readonly failover: boolean
  readonly cacheStatus: string | null
  readonly inputTokens: number | null
  readonly outputTokens: number | null
  readonly costUsd: number | null
  readonly savedUsd: number | null
  readonly latencyMs: number
  readonly ttfbMs: number | null
  readonly aborted: boolean
}

/** The latest `TAIL_SIZE` rows written, newest first (read by primary key: no scan). */
export const tail = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{
      id: number
      ts: number
      request_id: string
      endpoint: string
      route: string | null
      provider: string | null
      model: string | null
      stream: number
      status: number
      error_type: string | null
      attempts: number
      failover: number
      cache_status: string | null
      input_tokens: number | null
      output_tokens: number | null
      cost_usd: number | null
      saved_usd: number | null
      latency_ms: number
      ttfb_ms: number | null
      aborted: number
    }>`
      SELECT id, ts, request_id, endpoint, route, provider, COALESCE(served_model, requested_model) AS model, stream, status,
             error_type, attempts, failover, cache_status, input_tokens, output_tokens, cost_usd, saved_usd, latency_ms,
             ttfb_ms, aborted
      FROM requests ORDER BY id DESC LIMIT ${TAIL_SIZE}`,
    (rows) =>
      rows.map((r): TailRow => ({
        id: Number(r.id),
        ts: Number(r.ts),
        requestId: r.request_id,
        endpoint: r.endpoint,
        route: r.route,
        provider: r.provider,
        model: r.model,
        stream: r.stream === 1,
        status: r.status,
        errorType: r.error_type,
        attempts: r.attempts,
        failover: r.failover === 1,
        cacheStatus: r.cache_status,
        inputTokens: r.input_tokens,
        outputTokens: r.output_tokens,
        costUsd: Money.jsonOrNull(r.cost_usd),
        savedUsd: Money.jsonOrNull(r.saved_usd),
        latencyMs: r.latency_ms,
        ttfbMs: r.ttfb_ms,
        aborted: r.aborted === 1
      }))
  ))
