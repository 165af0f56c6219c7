/**
 * How the request program uses the cache: the per-request policy (from the request and its
 * headers), what a landed answer becomes in the cache, and how a cached answer is served.
 */
import type * as Headers from "@effect/platform/Headers"
import * as Effect from "effect/Effect"
import * as Cache from "../Cache.js"
import * as Response from "../Http/Response.js"
import type { Parsed } from "./Inbound.js"
import type { Outcome, RequestRecord } from "./Record.js"
import { type CachedAnswer, hasToolCalls, isCacheableRequest } from "../Cache.js"
import type { CacheSettings } from "../Config/Schema.js"
import { fromOpenAi, type Usage } from "../Domain/Usage.js"
import type { Landed } from "../Coalesce.js"
import * as Sse from "../Sse.js"

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

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/**
 * The cacheable form of a landed answer, or undefined when it must not be stored: not a 200, a
 * stream without its terminal [DONE], no usage, or (in deterministic mode) tool calls.
 */
export const toCached = (
  landed: Landed,
  settings: CacheSettings,
  costOf: (model: string, usage: Usage) => number | null
): CachedAnswer | undefined => {
  if (landed.head.status !== 200 || landed.head.target === undefined) return undefined
  const provider = landed.head.target.provider.name
  let answer: Omit<CachedAnswer, "usage" | "costUsd"> & { usage: Usage | undefined }
  if (landed.head.kind === "Bytes") {
    const json = decoder.decode(landed.chunks[0])
    let parsed: { model?: unknown; usage?: unknown }
    try {
      parsed = JSON.parse(json) as typeof parsed
    } catch {
      return undefined
    }
    answer = {
      kind: "json",
      json,
      events: [],
      provider,
      model: typeof parsed.model === "string" ? parsed.model : landed.head.target.model,
      usage: fromOpenAi(parsed.usage)
    }
  } else {
    const tap = new Sse.SseTap(false)
    for (const chunk of landed.chunks) tap.push(chunk)
    tap.end()
    if (!tap.done) return undefined
    answer = {
      kind: "stream",
      json: "",
      events: tap.payloads,
      provider,
      model: tap.model ?? landed.head.target.model,
      usage: fromOpenAi(tap.usage)
    }
  }
  if (answer.usage === undefined) return undefined
  if (settings.mode === "deterministic" && hasToolCalls(answer)) return undefined
  const { kind, json, events, model, usage } = answer
  // Written out, not `{ ...answer, costUsd }`: see `Http/Response.ts` on hidden classes.
  return { kind, json, events, provider, model, usage, costUsd: costOf(model, usage) }
}

/**
 * A hit's JSON body, encoded once per stored answer: the memory tier hands back the same answer
 * object on every hit, so repeats neither assemble nor encode it again (~1 KB per hit).
 */
const jsonBodies = new WeakMap<CachedAnswer, Uint8Array>()
const jsonBodyOf = (answer: CachedAnswer): Uint8Array => {
  let bytes = jsonBodies.get(answer)
  if (bytes === undefined) {
    bytes = encoder.encode(Cache.jsonBody(answer))
    jsonBodies.set(answer, bytes)
  }
  return bytes
}

/**
 * A hit's SSE body, every event in one piece, encoded once per stored answer and usage option.
 * The answer is complete, so nothing is gained by sending its events one by one, and an Effect
 * `Stream` of events cost CPU per event.
 */
const sseBodies = [new WeakMap<CachedAnswer, Uint8Array>(), new WeakMap<CachedAnswer, Uint8Array>()] as const
const sseBodyOf = (answer: CachedAnswer, includeUsage: boolean): Uint8Array => {
  const bodies = sseBodies[includeUsage ? 1 : 0]
  let bytes = bodies.get(answer)
  if (bytes === undefined) {
    bytes = encoder.encode(Cache.sseEvents(answer, includeUsage).join(""))
    bodies.set(answer, bytes)
  }
  return bytes
}

/** A stored answer, in the shape this client asked for. Costs nothing; saves what it cost. */
export const serveHit = (answer: Cache.CachedAnswer, record: RequestRecord, request: Parsed, book: (outcome: Outcome) => Effect.Effect<unknown>) =>
  Effect.map(book({ status: 200, errorType: null, usage: answer.usage, servedModel: answer.model, ttfbMs: null, aborted: false }), () => {
    // Filled in place, no spread: see `Http/Response.ts` on hidden classes.
    const headers: Record<string, string> = { "x-tollgate-request-id": record.context.requestId }
    if (record.route !== null) headers["x-tollgate-route"] = record.route
    headers["x-tollgate-provider"] = answer.provider
    headers["x-tollgate-model"] = answer.model
    headers["x-tollgate-attempts"] = "0"
    headers["x-tollgate-cache"] = "hit"
    headers["x-tollgate-cost"] = "0"
    if (!request.stream) return Response.bytes(jsonBodyOf(answer), 200, headers, "application/json")
    const includeUsage = (request.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true
    headers["cache-control"] = "no-cache"
    return Response.bytes(sseBodyOf(answer, includeUsage), 200, headers, "text/event-stream; charset=utf-8")
  })
