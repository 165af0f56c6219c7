/**
 * How the request program uses the cache: the per-request policy (from the request and its
 * headers), what a landed answer becomes in the cache, and how a cached answer is served (the
 * dialect's codec says how its answers are stored and served; one without a codec is never cached).
 */
import type * as Headers from "@effect/platform/Headers"
import * as Effect from "effect/Effect"
import * as Response from "../Http/Response.js"
import type { Outcome, RequestRecord } from "./Record.js"
import { type CachedAnswer, isCacheableRequest } from "../Cache.js"
import type { CacheSettings } from "../Config/Schema.js"
import type { CacheCodec, Parsed } from "../Dialect.js"
import type { Usage } from "../Domain/Usage.js"
import type { Landed } from "../Coalesce.js"

/** What this request may do with the cache. `status` is what the ledger and the header say. */
export interface Policy {
  readonly status: "lookup" | "refresh" | "bypass" | "off"
  /** Look for a stored answer first. */
  readonly lookup: boolean
  /** Store the answer if it qualifies. */
  readonly store: boolean
  /** Share an identical request's upstream call. */
  readonly share: boolean
}

export const OFF: Policy = { status: "off", lookup: false, store: false, share: false }
const BYPASS: Policy = { status: "bypass", lookup: false, store: false, share: false }

export const policyOf = (settings: CacheSettings, headers: Headers.Headers, body: Readonly<Record<string, unknown>>): Policy => {
  const directive = headers["x-tollgate-cache"]?.toLowerCase()
  const cacheControl = headers["cache-control"]?.toLowerCase() ?? ""
  if (directive === "bypass" || /\bno-(store|cache)\b/.test(cacheControl)) return BYPASS
  if (!isCacheableRequest(body, settings.mode)) return OFF
  if (!settings.enabled && !settings.coalesce) return OFF
  if (directive === "refresh") return { status: "refresh", lookup: false, store: settings.enabled, share: false }
  return { status: "lookup", lookup: settings.enabled, store: settings.enabled, share: settings.coalesce }
}

/**
 * The cacheable form of a landed answer, or undefined when it must not be stored: not a 200, or
 * what the dialect's codec refuses (a stream without its terminal event, no usage, tool calls in
 * deterministic mode).
 */
export const toCached = (
  landed: Landed,
  codec: CacheCodec,
  settings: CacheSettings,
  costOf: (model: string, usage: Usage) => number | null
): CachedAnswer | undefined => {
  const target = landed.head.target
  if (landed.head.status !== 200 || target === undefined) return undefined
  const entry = codec.toCached(landed, target.model, settings.mode)
  if (entry === undefined) return undefined
  const { kind, json, events, model, usage } = entry
  // Written out, not `{ ...entry, provider, costUsd }`: see `Http/Response.ts` on hidden classes.
  return { kind, json, events, provider: target.provider.name, model, usage, costUsd: costOf(model, usage) }
}

/** A stored answer, in the dialect and the form (JSON or stream) this client asked for. Costs nothing; saves what it cost. */
export const serveHit = (
  answer: CachedAnswer,
  codec: CacheCodec,
  record: RequestRecord,
  request: Parsed,
  book: (outcome: Outcome) => Effect.Effect<unknown>
) =>
  Effect.map(book({ status: 200, errorType: null, usage: answer.usage, servedModel: answer.model, ttfbMs: null, aborted: false }), () => {
    // Filled in place, no spread: see `Http/Response.ts` on hidden classes.
    const headers: Record<string, string> = { "x-tollgate-request-id": record.context.requestId }
    if (record.route !== null) headers["x-tollgate-route"] = record.route
    headers["x-tollgate-provider"] = answer.provider
    headers["x-tollgate-model"] = answer.model
    headers["x-tollgate-attempts"] = "0"
    headers["x-tollgate-cache"] = "hit"
    headers["x-tollgate-cost"] = "0"
    const body = codec.serve(answer, request)
    if (!request.stream) return Response.bytes(body, 200, headers, "application/json")
    headers["cache-control"] = "no-cache"
    return Response.bytes(body, 200, headers, "text/event-stream; charset=utf-8")
  })
