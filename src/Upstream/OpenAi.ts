/**
 * Adapter for any OpenAI-compatible API. The client's body bytes go out unchanged; hop-by-hop
 * headers are dropped, the client's `Authorization` is replaced by the provider's key (unless the
 * provider is `passthroughAuth`), and the answer comes back typed.
 */
import { type Headers, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Clock, Effect, Option, Redacted, Stream } from "effect"
import { Agent } from "undici"
import type { ResolvedProvider } from "../Config.js"
import { fromStatus, UpstreamTimeout, UpstreamUnreachable } from "../Domain/Errors.js"
import type { Adapter, UpstreamRequest } from "../Upstream.js"

/** Request headers never forwarded: hop-by-hop, framing, and the proxy's own. */
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
  "host",
  "content-length",
  "accept-encoding",
  "authorization",
  "x-api-key",
  "cookie"
])

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

export const forwardHeaders = (request: UpstreamRequest): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.clientHeaders)) {
    if (DROP_REQUEST.has(name) || name.startsWith("x-tollgate-")) continue
    out[name] = value
  }
  const provider = request.provider
  if (provider.config.kind === "openai") Object.assign(out, provider.config.headers)
  if (provider.config.kind === "openai" && provider.config.passthroughAuth) {
    const auth = request.clientHeaders["authorization"]
    if (auth !== undefined) out["authorization"] = auth
  } else if (Option.isSome(provider.apiKey)) {
    out["authorization"] = `Bearer ${Redacted.value(provider.apiKey.value)}`
  }
  // Plain bytes back, so the proxy can read usage without inflating.
  out["accept-encoding"] = "identity"
  out["content-type"] = request.clientHeaders["content-type"] ?? "application/json"
  return out
}

export const responseHeaders = (headers: Headers.Headers): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!DROP_RESPONSE.has(name)) out[name] = value
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

const reasonOf = (cause: unknown): string => {
  let current: unknown = cause
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return cause instanceof Error ? cause.message : "connection failed"
}

/** undici's codes for a connect timeout; everything else that fails to connect is "unreachable". */
const CONNECT_TIMEOUT = new Set(["UND_ERR_CONNECT_TIMEOUT"])

/**
 * One keep-alive connection pool per provider (so each has its own connect timeout), released
 * with the layer.
 */
export const make = (provider: ResolvedProvider) =>
  Effect.gen(function*() {
    if (provider.config.kind !== "openai") return yield* Effect.dieMessage(`not an openai provider: ${provider.name}`)
    const { baseUrl, timeouts } = provider.config
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent({ connect: { timeout: timeouts.connect }, keepAliveTimeout: 30_000 })),
      (agent) => Effect.promise(() => agent.destroy())
    )
    // No span per upstream call: tracing is off on the hot path unless asked for.
    const client = NodeHttpClient.makeUndici(dispatcher).pipe(HttpClient.withTracerDisabledWhen(() => true))
    const url = (path: string) => (baseUrl.endsWith("/") ? baseUrl.slice(0, -1) : baseUrl) + path

    const failed = (cause: unknown): UpstreamUnreachable | UpstreamTimeout => {
      const reason = reasonOf(cause)
      return CONNECT_TIMEOUT.has(reason)
        ? new UpstreamTimeout({ provider: provider.name, phase: "connect", afterMs: timeouts.connect })
        : new UpstreamUnreachable({ provider: provider.name, reason })
    }
    const timedOut = (phase: "firstByte" | "idle" | "total") => () =>
      new UpstreamTimeout({ provider: provider.name, phase, afterMs: timeouts[phase] })

    const adapter: Adapter = (request) => {
      const httpRequest = HttpClientRequest.post(url(request.path)).pipe(
        HttpClientRequest.setHeaders(forwardHeaders(request)),
        HttpClientRequest.bodyUint8Array(request.body, request.clientHeaders["content-type"] ?? "application/json")
      )
      return Effect.gen(function*() {
        const response = yield* client.execute(httpRequest).pipe(
          Effect.mapError(failed),
          Effect.timeoutFail({ duration: timeouts.firstByte, onTimeout: timedOut("firstByte") })
        )
        const headers = responseHeaders(response.headers)
        if (response.status >= 400 || response.status < 200) {
          const body = yield* response.arrayBuffer.pipe(Effect.mapError(failed))
          const now = yield* Clock.currentTimeMillis
          return yield* fromStatus({
            provider: provider.name,
            status: response.status,
            headers,
            body: new Uint8Array(body),
            retryAfterMs: retryAfterMs(headers, now)
          })
        }
        if (request.stream && (headers["content-type"] ?? "").includes("text/event-stream")) {
          const stream = response.stream.pipe(
            Stream.mapError(failed),
            Stream.timeoutFail(timedOut("idle"), timeouts.idle)
          )
          return { status: response.status, headers, body: { _tag: "Stream", stream } } as const
        }
        const bytes = yield* response.arrayBuffer.pipe(Effect.mapError(failed))
        return { status: response.status, headers, body: { _tag: "Bytes", bytes: new Uint8Array(bytes) } } as const
      }).pipe(
        // The whole exchange for JSON; for a stream, until its headers (the idle limit guards the rest).
        Effect.timeoutFail({ duration: timeouts.total, onTimeout: timedOut("total") })
      )
    }
    return adapter
  })
