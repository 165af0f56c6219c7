/**
 * Read side of the ledger: the aggregates behind `tollgate stats` and the paged row stream behind
 * `tollgate export`. Plain SQL that SQLite and Postgres both understand (the day of a row is the
 * one expression that differs, from `Store/Dialect.ts`); rows are read in pages of
 * `pageSize` by primary key, so an export of a million rows never holds them all in memory.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { COLUMNS, type LedgerRow } from "./Domain/LedgerEvent.js"
import * as Dialect from "./Store/Dialect.js"
import * as Losses from "./Telemetry/Losses.js"

export type { Losses } from "./Telemetry/Losses.js"

/** Rows the writer could not write, as far as the ledger knows (the count is kept in `meta`). */
export const losses = Losses.read

export type GroupBy = "model" | "provider" | "route" | "day"

export interface StatsRow {
  readonly group: string
  readonly requests: number
  readonly errors: number
  readonly aborted: number
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
}

const GROUP_EXPRESSIONS: Record<Exclude<GroupBy, "day"> | "all", string> = {
  all: "'all'",
  model: "COALESCE(served_model, requested_model, '(none)')",
  provider: "COALESCE(provider, '(none)')",
  route: "COALESCE(route, '(default)')"
}

export const stats = (options: { readonly sinceMs: number; readonly by: GroupBy | undefined }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const by = options.by ?? "all"
    const group = sql.literal(by === "day" ? Dialect.of(sql).day : GROUP_EXPRESSIONS[by])
    const rows = yield* sql<{
      grp: string
      requests: number
      errors: number
      aborted: number
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
    }>`
      WITH r AS (
        SELECT ${group} AS grp, * FROM requests WHERE ts >= ${options.sinceMs}
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
      )
      SELECT r.grp AS grp,
             COUNT(*) AS requests,
             SUM(CASE WHEN r.status >= 400 OR (r.error_type IS NOT NULL AND r.aborted = 0) THEN 1 ELSE 0 END) AS errors,
             SUM(r.aborted) AS aborted,
             SUM(r.input_tokens) AS input_tokens,
             SUM(r.output_tokens) AS output_tokens,
             SUM(r.cached_input_tokens) AS cached_input_tokens,
             SUM(r.reasoning_tokens) AS reasoning_tokens,
             SUM(r.cost_usd) AS cost_usd,
             SUM(r.saved_usd) AS saved_usd,
             SUM(CASE WHEN r.cache_status IN ('hit', 'coalesced') THEN 1 ELSE 0 END) AS cache_hits,
             SUM(CASE WHEN r.priced = 0 AND r.input_tokens IS NOT NULL THEN 1 ELSE 0 END) AS unpriced,
             SUM(CASE WHEN r.usage_source = 'estimated' THEN 1 ELSE 0 END) AS estimated,
             pct.p50 AS p50, pct.p95 AS p95
      FROM r JOIN pct ON pct.grp = r.grp
      GROUP BY r.grp, pct.p50, pct.p95
      ORDER BY cost_usd DESC NULLS LAST, requests DESC, r.grp`
    return rows.map((row): StatsRow => ({
      group: row.grp,
      requests: row.requests,
      errors: row.errors,
      aborted: row.aborted,
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
      p95LatencyMs: row.p95
    }))
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
