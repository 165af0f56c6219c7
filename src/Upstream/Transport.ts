/**
 * What every HTTP adapter shares: the four timeouts, the header filters, and `Retry-After`. An
 * adapter only says which headers go out (auth differs per provider); the exchange itself is the
 * same for all, over undici (`Node/Undici.ts`, which maps what went wrong into typed upstream
 * errors).
 */
import type { AnswerLimits, Timeouts } from "../Config/Schema.js"
import type { UpstreamRequest } from "./Exchange.js"

/**
 * Request headers never forwarded: hop-by-hop (tollgate answers the client's connection itself:
 * `Expect: 100-continue` is Node's to answer, and undici refuses it), framing, credentials, and
 * the proxy's own.
 */
const DROP_REQUEST = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "http2-settings",
  "host",
  "content-length",
  "accept-encoding",
  "authorization",
  "x-api-key",
  "cookie"
])

/**
 * The headers a `Connection` header names (RFC 9110 7.6.1), which are hop-by-hop too; undefined
 * for the usual `keep-alive` / `close`, so the common request allocates nothing here.
 */
const connectionOptions = (connection: string): Set<string> | undefined => {
  const lower = connection.toLowerCase()
  if (lower === "keep-alive" || lower === "close") return undefined
  const named = new Set<string>()
  for (const token of lower.split(",")) named.add(token.trim())
  return named
}

/** Response headers never passed back: hop-by-hop and framing (the proxy frames its own). */
const DROP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "transfer-encoding",
  "trailer",
  "upgrade",
  "content-length",
  "content-encoding",
  "set-cookie",
  "date",
  "server"
])

/** The client's headers that may go upstream as they are (credentials are the adapter's call). */
export const forwardableHeaders = (request: UpstreamRequest): Record<string, string> => {
  const out: Record<string, string> = {}
  const headers = request.clientHeaders
  const connection = headers["connection"]
  const named = connection === undefined ? undefined : connectionOptions(connection)
  for (const name in headers) {
    if (DROP_REQUEST.has(name) || name.startsWith("x-tollgate-") || named?.has(name) === true) continue
    out[name] = headers[name]!
  }
  return out
}

/** A response's headers (Node's shape: repeated ones as arrays) without hop-by-hop and framing ones. */
export const responseHeaders = (headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || DROP_RESPONSE.has(name)) continue
    out[name] = typeof value === "string" ? value : value.join(", ")
  }
  return out
}

/** `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date, as milliseconds from `now`. */
export const retryAfterMs = (headers: Readonly<Record<string, string>>, now: number): number | undefined => {
  const ms = headers["retry-after-ms"]
  if (ms !== undefined && ms.trim() !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = headers["retry-after"]
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * Why a connection failed, in a word: the first `code` (`ECONNREFUSED`, undici's `UND_ERR_...`)
 * down an error's causes, else the innermost error's message, else `fallback`. Never the request
 * (its URL or headers may carry a key).
 */
export const failureReasonOf = (cause: unknown, fallback: string): string => {
  let message: string | undefined
  let current: unknown = cause
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    if (current instanceof Error) message = current.message
    current = (current as { cause?: unknown }).cause
  }
  return message ?? fallback
}

/** Connections per provider when `maxConnections` is not set. */
export const DEFAULT_MAX_CONNECTIONS = 128

export interface TransportOptions {
  /** Provider name, for errors. */
  readonly provider: string
  readonly baseUrl: string
  readonly timeouts: Timeouts
  /** Most connections open to the provider at once (`maxConnections`; undefined: the default). */
  readonly maxConnections: number | undefined
  readonly limits: AnswerLimits
  /** Every header of the outgoing request (computed per request: auth may come from the client). */
  readonly headersFor: (request: UpstreamRequest) => Record<string, string>
}

