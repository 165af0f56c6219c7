/** Ledger events for the suites that write rows without a request (the Postgres ones). */
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"

/** A plain successful, priced chat request: `req_<i>`, at 1,750,000,000,000 + i ms. */
export const sampleEvent = (i: number): LedgerEvent => ({
  ts: 1_750_000_000_000 + i,
  requestId: `req_${i}`,
  endpoint: "/v1/chat/completions",
  route: null,
  rule: "default",
  provider: "openai",
  requestedModel: "gpt-4o-mini",
  servedModel: "gpt-4o-mini",
  stream: i % 2 === 0,
  status: 200,
  errorType: null,
  attempts: 1,
  failover: false,
  attemptErrors: null,
  skipped: null,
  cacheStatus: null,
  inputTokens: 100,
  outputTokens: 20,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  costUsd: 0.000027,
  savedUsd: null,
  priced: true,
  usageSource: "reported",
  latencyMs: 12.5,
  ttfbMs: 3.25,
  aborted: false,
  clientHash: null,
  userAgent: "test",
  project: null,
  session: null,
  cascade: null,
  downgradedFrom: null
})

const MODELS = ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4", "local-llama"]

/**
 * A varied day of rows: four models and three providers over three days, errors, aborts, cache
 * hits and coalesced answers, unpriced and estimated rows, projects, sessions and client hashes,
 * a cascade and a downgrade. Deterministic in `i`.
 */
export const variedEvent = (i: number, base = Date.UTC(2026, 10, 3, 22)): LedgerEvent => {
  const model = MODELS[i % MODELS.length]!
  const failed = i % 17 === 0
  const unpriced = model === "local-llama"
  const cached = i % 7 === 0 ? "hit" : i % 11 === 0 ? "coalesced" : i % 5 === 0 ? "miss" : null
  const input = failed ? null : 100 + (i * 37) % 900
  const output = failed ? null : 10 + (i * 13) % 400
  const cost = failed || unpriced ? null : cached === "hit" || cached === "coalesced" ? 0 : ((input ?? 0) * 0.15 + (output ?? 0) * 0.6) / 1e6
  return {
    ...sampleEvent(i),
    ts: base + i * 97_000,
    requestId: `req_v_${i}`,
    route: i % 3 === 0 ? null : i % 3 === 1 ? "default" : "cheap",
    provider: i % 9 === 0 ? null : i % 2 === 0 ? "openai" : unpriced ? "local" : "anthropic",
    requestedModel: model,
    servedModel: failed ? null : model,
    status: failed ? 502 : 200,
    errorType: failed ? "upstream_error" : i % 23 === 0 ? "client_closed" : null,
    attempts: failed ? 3 : 1,
    failover: i % 13 === 0,
    attemptErrors: failed ? "openai/gpt-4o-mini:upstream_error" : null,
    cacheStatus: cached,
    inputTokens: input,
    outputTokens: output,
    cachedInputTokens: failed ? null : i % 4,
    cacheWriteTokens: failed ? null : 0,
    cacheWrite1hTokens: i % 6 === 0 ? 3 : null,
    reasoningTokens: failed ? null : i % 3,
    costUsd: cost,
    savedUsd: cached === "hit" || cached === "coalesced" ? 0.0001 * (i % 5) : null,
    priced: !unpriced && !failed,
    usageSource: failed ? null : i % 8 === 0 ? "estimated" : "reported",
    latencyMs: 5 + (i * 7919) % 1000 / 3,
    ttfbMs: i % 2 === 0 ? 1 + (i % 50) / 4 : null,
    aborted: i % 23 === 0,
    clientHash: i % 4 === 0 ? null : `client${i % 3}`,
    project: i % 5 === 0 ? null : `proj${i % 2}`,
    session: i % 6 === 0 ? null : `sess${i % 4}`,
    cascade: i === 40 ? "gpt-4o-mini:rejected:0.0001" : null,
    downgradedFrom: i === 41 ? "gpt-4.1" : null
  }
}
