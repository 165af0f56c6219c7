/**
 * One ledger row: what happened to one client request and what it cost. Metadata only: nothing
 * here can carry prompt or completion text, tool arguments, request bodies or keys.
 */
export interface LedgerEvent {
  /** Request start, unix milliseconds. */
  readonly ts: number
  readonly requestId: string
  readonly endpoint: string
  readonly route: string | null
  readonly rule: string | null
  readonly provider: string | null
  readonly requestedModel: string | null
  readonly servedModel: string | null
  readonly stream: boolean
  /** The HTTP status the client received. */
  readonly status: number
  readonly errorType: string | null
  /** Requests sent upstream, retries and failovers included. */
  readonly attempts: number
  /** Served by a target other than the route's first. */
  readonly failover: boolean
  /** `provider/model:error_type` of each failed attempt, comma-separated. */
  readonly attemptErrors: string | null
  /** `provider/model:circuit_open` of each target skipped by its breaker, comma-separated. */
  readonly skipped: string | null
  readonly cacheStatus: string | null
  readonly inputTokens: number | null
  readonly outputTokens: number | null
  readonly cachedInputTokens: number | null
  readonly cacheWriteTokens: number | null
  /** Part of `cacheWriteTokens` written with the 1-hour TTL (billed higher); absent where not reported. */
  readonly cacheWrite1hTokens?: number | null
  readonly reasoningTokens: number | null
  /** USD, or null when the model has no price. 0 for a cache hit or a shared (coalesced) answer. */
  readonly costUsd: number | null
  /** For a hit or a coalesced answer: what it would have cost. */
  readonly savedUsd: number | null
  readonly priced: boolean
  readonly usageSource: "reported" | "estimated" | null
  readonly latencyMs: number
  readonly ttfbMs: number | null
  /** The client went away before the response was complete. */
  readonly aborted: boolean
  /** Salted hash of the client's key; the key itself is never stored. */
  readonly clientHash: string | null
  readonly userAgent: string | null
  readonly project: string | null
  readonly session: string | null
  /** Earlier steps of a cascade, `model:outcome:usd`, comma-separated; `costUsd` is the total. */
  readonly cascade: string | null
  /** The budget swapped the routed model for a cheaper one: the model it replaced. */
  readonly downgradedFrom: string | null
}

/** The row as stored, snake_case, booleans as 0/1. */
export const toRow = (e: LedgerEvent) => ({
  ts: e.ts,
  request_id: e.requestId,
  endpoint: e.endpoint,
  route: e.route,
  rule: e.rule,
  provider: e.provider,
  requested_model: e.requestedModel,
  served_model: e.servedModel,
  stream: e.stream ? 1 : 0,
  status: e.status,
  error_type: e.errorType,
  attempts: e.attempts,
  failover: e.failover ? 1 : 0,
  attempt_errors: e.attemptErrors,
  skipped: e.skipped,
  cache_status: e.cacheStatus,
  input_tokens: e.inputTokens,
  output_tokens: e.outputTokens,
  cached_input_tokens: e.cachedInputTokens,
  cache_write_tokens: e.cacheWriteTokens,
  cache_write_1h_tokens: e.cacheWrite1hTokens ?? null,
  reasoning_tokens: e.reasoningTokens,
  cost_usd: e.costUsd,
  saved_usd: e.savedUsd,
  priced: e.priced ? 1 : 0,
  usage_source: e.usageSource,
  latency_ms: e.latencyMs,
  ttfb_ms: e.ttfbMs,
  aborted: e.aborted ? 1 : 0,
  client_hash: e.clientHash,
  user_agent: e.userAgent,
  project: e.project,
  session: e.session,
  cascade: e.cascade,
  downgraded_from: e.downgradedFrom
})

export type LedgerRow = ReturnType<typeof toRow>
export const COLUMNS = Object.keys(toRow({} as LedgerEvent)) as ReadonlyArray<keyof LedgerRow>

/** The rows' values, row after row, each in `COLUMNS` order: the parameters of a multi-row INSERT. */
export const rowParams = (events: ReadonlyArray<LedgerEvent>): Array<string | number | null> => {
  const params: Array<string | number | null> = []
  for (const event of events) {
    const row = toRow(event)
    for (const column of COLUMNS) params.push(row[column])
  }
  return params
}
