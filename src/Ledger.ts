/**
 * Read side of the ledger: the aggregates behind `tollgate stats` (and the dashboard's, by bucket
 * of time, or read in pages so that no single read holds the serving thread long), and the paged
 * row stream behind `tollgate export`. Plain SQL that SQLite and Postgres both understand (the day of a row is the
 * one expression that differs, from `Store/Dialect.ts`); rows are read in pages of
 * `pageSize` by primary key, so an export of a million rows never holds them all in memory.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { COLUMNS, type LedgerRow } from "./Domain/LedgerEvent.js"
import { joined, type Percentile, percentileOf } from "./Ledger/Percentiles.js"
import * as Dialect from "./Store/Dialect.js"
import * as Losses from "./Telemetry/Losses.js"

export type { Losses } from "./Telemetry/Losses.js"
export type { Percentile } from "./Ledger/Percentiles.js"

/** Rows the writer could not write, as far as the ledger knows (the count is kept in `meta`). */
export const losses = Losses.read

export type GroupBy = "model" | "provider" | "route" | "project" | "session" | "day"

export interface StatsRow {
  readonly group: string
  readonly requests: number
  readonly errors: number
  readonly aborted: number
  /** Requests sent upstream more than once (a retry or a failover). */
  readonly retried: number
  /** Requests served by a target other than their route's first. */
  readonly failovers: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cachedInputTokens: number
  readonly reasoningTokens: number
  /** Sum over priced requests, USD. */
  readonly costUsd: number
  /** What cache hits and coalesced answers would have cost, USD. */
  readonly savedUsd: number
  /** Requests answered from the cache, or by sharing an identical request's call. */
  readonly cacheHits: number
  /** Requests with token counts but no price for their model. */
  readonly unpriced: number
  /** Requests whose tokens were estimated because the provider sent no usage. */
  readonly estimated: number
  readonly p50LatencyMs: number | null
  readonly p95LatencyMs: number | null
  /** Over the requests that had a first byte; null unless asked for (`Percentiles`). */
  readonly p50TtfbMs: number | null
  readonly p95TtfbMs: number | null
}

const GROUP_EXPRESSIONS: Record<Exclude<GroupBy, "day"> | "all", string> = {
  all: "'all'",
  model: "COALESCE(served_model, requested_model, '(none)')",
  provider: "COALESCE(provider, '(none)')",
  route: "COALESCE(route, '(default)')",
  project: "COALESCE(project, '(none)')",
  session: "COALESCE(session, '(none)')"
}

/** What a summary adds up per group, over `r` (rows of `requests` with their group as `grp`). */
const AGGREGATES = `
  COUNT(*) AS requests,
  SUM(CASE WHEN r.status >= 400 OR (r.error_type IS NOT NULL AND r.aborted = 0) THEN 1 ELSE 0 END) AS errors,
  SUM(r.aborted) AS aborted,
  SUM(CASE WHEN r.attempts > 1 THEN 1 ELSE 0 END) AS retried,
  SUM(r.failover) AS failovers,
  SUM(r.input_tokens) AS input_tokens,
  SUM(r.output_tokens) AS output_tokens,
  SUM(r.cached_input_tokens) AS cached_input_tokens,
  SUM(r.reasoning_tokens) AS reasoning_tokens,
  SUM(r.cost_usd) AS cost_usd,
  SUM(r.saved_usd) AS saved_usd,
  SUM(CASE WHEN r.cache_status IN ('hit', 'coalesced') THEN 1 ELSE 0 END) AS cache_hits,
  SUM(CASE WHEN r.priced = 0 AND r.input_tokens IS NOT NULL THEN 1 ELSE 0 END) AS unpriced,
  SUM(CASE WHEN r.usage_source = 'estimated' THEN 1 ELSE 0 END) AS estimated`

/** The columns `AGGREGATES` and the percentiles read: the rows are copied only this wide. */
const SUMMARY_COLUMNS = "status, error_type, aborted, attempts, failover, input_tokens, output_tokens, cached_input_tokens, " +
  "reasoning_tokens, cost_usd, saved_usd, cache_status, priced, usage_source, latency_ms, ttfb_ms"

interface Aggregated {
  grp: string | number
  requests: number
  errors: number
  aborted: number
  retried: number
  failovers: number
  input_tokens: number | null
  output_tokens: number | null
  cached_input_tokens: number | null
  reasoning_tokens: number | null
  cost_usd: number | null
  saved_usd: number | null
  cache_hits: number
  unpriced: number
  estimated: number
  p50: number | null
  p95: number | null
  t50: number | null
  t95: number | null
}

/** Which percentiles a summary computes: each is a sort of the window's rows. */
export type Percentiles = "none" | "latency" | "latency+ttfb"

/** The time to first byte's percentiles per group, joined in as `ttfb` when asked for. */
const TTFB_CTES = `,
      ttfb_ranked AS (
        SELECT grp, ttfb_ms,
               ROW_NUMBER() OVER (PARTITION BY grp ORDER BY ttfb_ms) AS rn,
               COUNT(*) OVER (PARTITION BY grp) AS n
        FROM r WHERE ttfb_ms IS NOT NULL
      ),
      ttfb AS (
        SELECT grp,
               MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN ttfb_ms END) AS t50,
               MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN ttfb_ms END) AS t95
        FROM ttfb_ranked GROUP BY grp
      )`

/**
 * The summary of the rows since `sinceMs` per value of `group` (SQL over a row of `requests`),
 * the costliest first, at most `limit` groups. Percentiles are nearest-rank; those not asked for
 * are null, and with none the query is one pass with no sort of the window.
 */
const aggregatedOf = (
  sql: SqlClient.SqlClient,
  options: {
    readonly group: string
    readonly sinceMs: number
    readonly limit: number | undefined
    readonly percentiles: Percentiles
    /** Only the rows with `after < id <= upTo` (without percentiles). */
    readonly ids?: readonly [after: number, upTo: number]
  }
) =>
  Effect.suspend(() => {
    const group = sql.literal(options.group)
    const aggregates = sql.literal(AGGREGATES)
    const columns = sql.literal(SUMMARY_COLUMNS)
    const limit = options.limit === undefined ? sql.literal("") : sql`LIMIT ${options.limit}`
    const ttfb = options.percentiles === "latency+ttfb"
    const ids = options.ids === undefined ? sql.literal("") : sql`AND id > ${options.ids[0]} AND id <= ${options.ids[1]}`
    return options.percentiles !== "none"
      ? sql<Aggregated>`
      WITH r AS (
        SELECT ${group} AS grp, ${columns} FROM requests WHERE ts >= ${options.sinceMs}
      ),
      ranked AS (
        SELECT grp, latency_ms,
               ROW_NUMBER() OVER (PARTITION BY grp ORDER BY latency_ms) AS rn,
               COUNT(*) OVER (PARTITION BY grp) AS n
        FROM r
      ),
      pct AS (
        SELECT grp,
               MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END) AS p50,
               MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END) AS p95
        FROM ranked GROUP BY grp
      )${sql.literal(ttfb ? TTFB_CTES : "")}
      SELECT r.grp AS grp, ${aggregates}, pct.p50 AS p50, pct.p95 AS p95,
             ${sql.literal(ttfb ? "ttfb.t50 AS t50, ttfb.t95 AS t95" : "NULL AS t50, NULL AS t95")}
      FROM r JOIN pct ON pct.grp = r.grp ${sql.literal(ttfb ? "LEFT JOIN ttfb ON ttfb.grp = r.grp" : "")}
      GROUP BY r.grp, pct.p50, pct.p95${sql.literal(ttfb ? ", ttfb.t50, ttfb.t95" : "")}
      ORDER BY cost_usd DESC NULLS LAST, requests DESC, r.grp
      ${limit}`
      : sql<Aggregated>`
      SELECT r.grp AS grp, ${aggregates}, NULL AS p50, NULL AS p95, NULL AS t50, NULL AS t95
      FROM (SELECT ${group} AS grp, ${columns} FROM requests WHERE ts >= ${options.sinceMs} ${ids}) r
      GROUP BY r.grp
      ORDER BY cost_usd DESC NULLS LAST, requests DESC, r.grp
      ${limit}`
  })

const statsRowOf = (row: Aggregated): StatsRow => ({
  group: String(row.grp),
  requests: row.requests,
  errors: row.errors,
  aborted: row.aborted,
  retried: row.retried,
  failovers: row.failovers,
  inputTokens: row.input_tokens ?? 0,
  outputTokens: row.output_tokens ?? 0,
  cachedInputTokens: row.cached_input_tokens ?? 0,
  reasoningTokens: row.reasoning_tokens ?? 0,
  costUsd: row.cost_usd ?? 0,
  savedUsd: row.saved_usd ?? 0,
  cacheHits: row.cache_hits,
  unpriced: row.unpriced,
  estimated: row.estimated,
  p50LatencyMs: row.p50,
  p95LatencyMs: row.p95,
  p50TtfbMs: row.t50,
  p95TtfbMs: row.t95
})

const statsOf = (sql: SqlClient.SqlClient, options: Parameters<typeof aggregatedOf>[1]) =>
  Effect.map(aggregatedOf(sql, options), (rows) => rows.map(statsRowOf))

/**
 * The summary since `sinceMs`, one row per group of `by` (one row, `all`, without), at most
 * `limit` rows, with the latency percentiles unless `percentiles` says otherwise.
 */
export const stats = (options: {
  readonly sinceMs: number
  readonly by: GroupBy | undefined
  readonly limit?: number
  readonly percentiles?: Percentiles
}) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const by = options.by ?? "all"
    return statsOf(sql, {
      group: by === "day" ? Dialect.of(sql).day : GROUP_EXPRESSIONS[by],
      sinceMs: options.sinceMs,
      limit: options.limit,
      percentiles: options.percentiles ?? "latency"
    })
  })

/** A `stats` row of the requests that arrived in one bucket of time. */
export interface BucketRow extends Omit<StatsRow, "group"> {
  /** The bucket's start, Unix ms. */
  readonly t: number
}

/** The summary since `sinceMs` per `stepMs`-long bucket of arrival time (from the epoch: UTC hours, days), oldest first; empty buckets absent. */
export const buckets = (options: { readonly sinceMs: number; readonly stepMs: number; readonly percentiles?: Percentiles }) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(statsOf(sql, { group: Dialect.of(sql).bucket(options.stepMs), sinceMs: options.sinceMs, limit: undefined, percentiles: options.percentiles ?? "latency+ttfb" }), (rows) =>
      rows.map(({ group, ...row }): BucketRow => ({ t: Number(group), ...row })).sort((a, b) => a.t - b.t)))

/** SQL's SUM across pages: NULL only while every page's was. */
const plus = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : a + b)

const merged = (a: Aggregated, b: Aggregated): Aggregated => ({
  grp: a.grp,
  requests: a.requests + b.requests,
  errors: a.errors + b.errors,
  aborted: a.aborted + b.aborted,
  retried: a.retried + b.retried,
  failovers: a.failovers + b.failovers,
  input_tokens: plus(a.input_tokens, b.input_tokens),
  output_tokens: plus(a.output_tokens, b.output_tokens),
  cached_input_tokens: plus(a.cached_input_tokens, b.cached_input_tokens),
  reasoning_tokens: plus(a.reasoning_tokens, b.reasoning_tokens),
  cost_usd: plus(a.cost_usd, b.cost_usd),
  saved_usd: plus(a.saved_usd, b.saved_usd),
  cache_hits: a.cache_hits + b.cache_hits,
  unpriced: a.unpriced + b.unpriced,
  estimated: a.estimated + b.estimated,
  p50: null,
  p95: null,
  t50: null,
  t95: null
})

/** The query's order: the costliest first (no cost last), then the busiest, then by name. */
const costliestFirst = (a: Aggregated, b: Aggregated): number =>
  a.cost_usd === b.cost_usd
    ? b.requests - a.requests || (String(a.grp) < String(b.grp) ? -1 : String(a.grp) > String(b.grp) ? 1 : 0)
    : a.cost_usd === null
    ? 1
    : b.cost_usd === null
    ? -1
    : b.cost_usd - a.cost_usd

/**
 * `stats` over a window three ways at once (in total, per `stepMs` bucket, and per group of each
 * of `by`, at most `limit` groups each), with every percentile for the total and the buckets and
 * none for the groups, read `pageSize` ids at a time with a pause after each step. The same figures
 * as the queries', for an engine whose queries run on the thread that serves requests (SQLite):
 * one query over a large window holds that thread for all of it, a page only briefly. Rows written
 * after it starts are left for the next reading.
 */
export const summaryPaged = <G extends Exclude<GroupBy, "day">>(options: {
  readonly sinceMs: number
  readonly stepMs: number
  readonly by: ReadonlyArray<G>
  readonly limit: number
  readonly pageSize?: number
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pageSize = options.pageSize ?? 2_500
    const kinds: ReadonlyArray<readonly [string, string]> = [
      ["all", GROUP_EXPRESSIONS.all],
      ["bucket", Dialect.of(sql).bucket(options.stepMs)],
      ...options.by.map((by) => [by, GROUP_EXPRESSIONS[by]] as const)
    ]
    const sums = new Map(kinds.map(([kind]) => [kind, new Map<string, Aggregated>()]))
    const perBucket = new Map<number, { latency: Array<number>; ttfb: Array<number> }>()
    // Apart, each is one step down an index; together, a scan of the window's index entries.
    // After each step, the thread is left to requests for twice as long as the step held it: a
    // reading takes at most a third of it, and a macrotask lets waiting requests go first.
    const clock = yield* Effect.clock
    let stepStart = clock.unsafeCurrentTimeMillis()
    const pause = Effect.suspend(() => Effect.sleep(Math.max(1, 2 * (clock.unsafeCurrentTimeMillis() - stepStart)))).pipe(
      Effect.zipRight(Effect.sync(() => {
        stepStart = clock.unsafeCurrentTimeMillis()
      }))
    )
    const [first] = yield* sql<{ lo: number | null }>`SELECT MIN(id) AS lo FROM requests WHERE ts >= ${options.sinceMs}`
    const [last] = yield* sql<{ hi: number | null }>`SELECT MAX(id) AS hi FROM requests`
    const lo = first?.lo ?? null
    const hi = last?.hi ?? null
    for (let after = lo === null ? 0 : Number(lo) - 1; lo !== null && hi !== null && after < Number(hi); after += pageSize) {
      const ids = [after, Math.min(Number(hi), after + pageSize)] as const
      for (const [kind, group] of kinds) {
        const into = sums.get(kind)!
        for (const row of yield* aggregatedOf(sql, { group, sinceMs: options.sinceMs, limit: undefined, percentiles: "none", ids })) {
          const key = String(row.grp)
          const held = into.get(key)
          into.set(key, held === undefined ? row : merged(held, row))
        }
        yield* pause
      }
      const page = yield* sql<{ ts: number; latency_ms: number | null; ttfb_ms: number | null }>`
        SELECT ts, latency_ms, ttfb_ms FROM requests WHERE id > ${ids[0]} AND id <= ${ids[1]} AND ts >= ${options.sinceMs}`
      for (const row of page) {
        const t = Math.floor(Number(row.ts) / options.stepMs) * options.stepMs
        let bucket = perBucket.get(t)
        if (bucket === undefined) perBucket.set(t, bucket = { latency: [], ttfb: [] })
        if (row.latency_ms !== null) bucket.latency.push(row.latency_ms)
        if (row.ttfb_ms !== null) bucket.ttfb.push(row.ttfb_ms)
      }
      yield* pause
    }
    const rowsOf = (kind: string) => [...sums.get(kind)!.values()].sort(costliestFirst).map(statsRowOf)
    const total = rowsOf("all")[0]
    const values = [...perBucket.values()]
    const overall = percentileOf(joined(values.map((v) => v.latency)), joined(values.map((v) => v.ttfb)))
    const bucketPercentiles = new Map<number, Percentile>()
    for (const [t, bucket] of perBucket) {
      bucketPercentiles.set(t, percentileOf(Float64Array.from(bucket.latency), Float64Array.from(bucket.ttfb)))
      yield* pause
    }
    return {
      total: total === undefined ? undefined : { ...total, ...overall },
      buckets: rowsOf("bucket")
        .map(({ group, ...row }): BucketRow => {
          const t = Number(group)
          return { t, ...row, ...bucketPercentiles.get(t) }
        })
        .sort((a, b) => a.t - b.t),
      groups: options.by.reduce((groups, by) => {
        groups[by] = rowsOf(by).slice(0, options.limit)
        return groups
      }, {} as Record<G, ReadonlyArray<StatsRow>>)
    }
  })

export type ExportRow = { readonly id: number } & LedgerRow

/** A row's id and its ledger fields: not the bookkeeping columns beside them (cloud ingest's `ingested_at`). */
const EXPORTED = ["id", ...COLUMNS].join(", ")

/** Every row since `sinceMs`, oldest first, read `pageSize` at a time. */
export const rows = (options: { readonly sinceMs: number; readonly pageSize?: number }) =>
  Stream.unwrap(
    Effect.map(SqlClient.SqlClient, (sql) => {
      const pageSize = options.pageSize ?? 1000
      return Stream.paginateChunkEffect(0, (afterId: number) =>
        sql<ExportRow>`
          SELECT ${sql.literal(EXPORTED)} FROM requests WHERE id > ${afterId} AND ts >= ${options.sinceMs} ORDER BY id LIMIT ${pageSize}`.pipe(
          Effect.map((page) => {
            const last = page[page.length - 1]
            return [
              Chunk.unsafeFromArray(page),
              last === undefined || page.length < pageSize ? Option.none() : Option.some(last.id)
            ] as const
          })
        ))
    })
  )

export interface UnpricedRow {
  readonly model: string
  readonly requests: number
  readonly inputTokens: number
  readonly outputTokens: number
}

/** Requests that carried tokens but whose model had no price, per model: the cost `stats` cannot show. */
export const unpriced = (options: { readonly sinceMs: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ model: string; requests: number; input_tokens: number | null; output_tokens: number | null }>`
      SELECT COALESCE(served_model, requested_model, '(none)') AS model,
             COUNT(*) AS requests,
             SUM(input_tokens) AS input_tokens,
             SUM(output_tokens) AS output_tokens
      FROM requests
      WHERE ts >= ${options.sinceMs} AND priced = 0 AND input_tokens IS NOT NULL
      GROUP BY COALESCE(served_model, requested_model, '(none)')
      ORDER BY requests DESC, model`
    return rows.map((row): UnpricedRow => ({
      model: row.model,
      requests: row.requests,
      inputTokens: row.input_tokens ?? 0,
      outputTokens: row.output_tokens ?? 0
    }))
  })

/** The ledger row of one request, by its `x-tollgate-request-id`. */
export const findRequest = (requestId: string) =>
  Effect.map(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql<ExportRow>`SELECT ${sql.literal(EXPORTED)} FROM requests WHERE request_id = ${requestId} ORDER BY id LIMIT 1`),
    (rows) => Option.fromNullable(rows[0])
  )
