/**
 * The headers of the proxy's answers: tollgate's own (what served it, how many tries) and which
 * of the provider's a client gets.
 */
import type * as Headers from "@effect/platform/Headers"
import { targetName } from "../Failover.js"
import type { RequestRecord } from "./Record.js"

/** Headers every answer carries, success or not: what served it and how many tries it took. Added to `into`. */
export const addTollgateHeaders = (into: Record<string, string>, record: RequestRecord): Record<string, string> => {
  into["x-tollgate-request-id"] = record.context.requestId
  if (record.route !== null) into["x-tollgate-route"] = record.route
  const trail = record.trail
  const target = trail.target
  if (target !== undefined) {
    into["x-tollgate-provider"] = target.provider.name
    into["x-tollgate-model"] = target.model
    if (trail.failover) into["x-tollgate-failover"] = targetName(target)
  }
  into["x-tollgate-attempts"] = String(trail.attempts)
  into["x-tollgate-cache"] = record.cacheStatus
  return into
}

/** The provider's headers a client gets: all of them when its answer passes through, else only those that mean the same in any shape. */
export const providerHeaders = (headers: Readonly<Record<string, string>>, passthrough: boolean, stream: boolean): Record<string, string> => {
  // One object, filled in place (spreading a dozen headers into a literal, twice, was ~3% of the
  // request's CPU).
  const kept: Record<string, string> = {}
  if (!passthrough) kept["content-type"] = stream ? "text/event-stream; charset=utf-8" : "application/json"
  for (const name in headers) {
    if (passthrough || name.startsWith("x-ratelimit-") || name === "retry-after" || name === "request-id" || name === "x-request-id") {
      kept[name] = headers[name]!
    }
  }
  return kept
}

/** The client's key (bearer token or `x-api-key`), if it sent one. */
export const bearer = (headers: Headers.Headers): string | undefined => {
  const auth = headers["authorization"]
  if (auth !== undefined && auth.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim() || undefined
  return headers["x-api-key"]
}
