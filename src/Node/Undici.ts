/**
 * The HTTP exchange with a provider, over undici: one keep-alive pool per provider, the timeouts,
 * and the mapping of what went wrong into typed upstream errors. A streamed body is handed over as
 * a `ByteSource` (`Node/Readable.ts`), so nothing outside this folder sees a Node stream.
 *
 * The two pieces of undici used here: its `Pool` (keep-alive connections to one origin) and its
 * callback `request`, imported from their own files rather than from the package's index.
 *
 * The index (`import { Pool } from "undici"`) also loads and runs fetch, WebSocket, EventSource,
 * the cache stores, the mock agents and the Node built-ins they use: several times the heap of
 * these two files, and it counts again at the peak under load. undici has no
 * `exports` map: these paths are as public as the index, and `Node/undici-files.d.ts` gives
 * them the index's types.
 */
import * as Effect from "effect/Effect"
import { EventEmitter } from "node:events"
import type { IncomingHttpHeaders } from "node:http"
import type { Readable } from "node:stream"
import request from "undici/lib/api/api-request.js"
import PoolClass from "undici/lib/dispatcher/pool.js"
import type { Dispatcher, Pool } from "undici"
import { fromStatus, UnsendableRequest, UpstreamTimeout, UpstreamUnreachable } from "../Domain/Errors.js"
import type { UpstreamError } from "../Domain/Errors.js"
import type { Adapter, UpstreamResponse } from "../Upstream/Exchange.js"
import { DEFAULT_MAX_CONNECTIONS, failureReasonOf, responseHeaders, retryAfterMs, type TransportOptions } from "../Upstream/Transport.js"
import { fromReadable, joined, readUpTo } from "./Readable.js"

/**
 * `new Pool(origin, options)`. (Its types are the index's, so no declaration here names these
 * files.) A provider has one origin, so its pool is dispatched to directly: an `Agent` in front
 * (a pool per origin) looked the origin up, and forwarded the pool's events, on every request.
 */
export const makePool = (origin: string, options: Pool.Options): Pool => new PoolClass(origin, options)

/**
 * `dispatcher.request(options, callback)`. The index adds `request` to every dispatcher's
 * prototype; without the index, it is called on the dispatcher.
 */
export const requestWith = (
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  callback: (error: Error | null, data: Dispatcher.ResponseData) => void
): void => request.call(dispatcher, options, callback)

/** undici's codes for a request it refused to send (checked before anything goes out). */
const REFUSED_BEFORE_SENDING = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"])

/** undici refused the request itself (a header it does not allow): the request's fault, not the provider's. */
const refusedBeforeSending = (provider: string, cause: unknown): UnsendableRequest | undefined => {
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined
  return typeof code === "string" && REFUSED_BEFORE_SENDING.has(code)
    ? new UnsendableRequest({ provider, reason: cause instanceof Error ? cause.message : code })
    : undefined
}

const ignore = () => {}

/**
 * A body handed over as a stream: whoever reads it cuts it off if it is dropped, its failures are
 * typed as this exchange's (`failed`), and the exchange's total timer runs until it closes.
 */
const streamed = (body: Readable, total: ReturnType<typeof setTimeout>, failed: (cause: unknown) => UpstreamUnreachable | UpstreamTimeout) => {
  body.on("error", ignore)
  if (body.closed) clearTimeout(total)
  else body.once("close", () => clearTimeout(total))
  return { _tag: "Stream" as const, source: fromReadable(body, failed) }
}

/** The `content-length` the provider announced, if a valid one. */
const lengthOf = (headers: IncomingHttpHeaders): number | undefined => {
  const value = headers["content-length"]
  if (value === undefined) return undefined
  const length = Number(value)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** undici's timeout codes, as our phases. Everything else that fails is "unreachable". */
const TIMEOUT_PHASES: Record<string, "connect" | "firstByte" | "idle"> = {
  UND_ERR_CONNECT_TIMEOUT: "connect",
  UND_ERR_HEADERS_TIMEOUT: "firstByte",
  UND_ERR_BODY_TIMEOUT: "idle"
}

/**
 * One keep-alive connection pool per provider (so each has its own connect timeout), released
 * with the layer.
 *
 * Requests go straight to undici's `Dispatcher.request` inside one `Effect.async`, not through
 * `@effect/platform`'s HttpClient: its wrapper (request/URL/headers objects, tracer checks,
 * response registry) cost more CPU per request than the HTTP exchange itself. undici's own timers enforce the first-byte and idle limits, so no fiber race is paid per
 * request either. Interruption (client gone, retry cancelled) aborts the exchange.
 */
export const transport = (options: TransportOptions) =>
  Effect.gen(function*() {
    const { provider, timeouts, limits, headersFor } = options
    const base = new URL(options.baseUrl)
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(() =>
        makePool(base.origin, {
          connect: { timeout: timeouts.connect },
          keepAliveTimeout: 30_000,
          // undici's own default is no limit: 10,000 clients at once would open as many sockets.
          // Beyond the cap requests wait in the pool's queue (their total timeout runs meanwhile).
          connections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
        })
      ),
      (pool) => Effect.promise(() => pool.destroy())
    )
    const basePath = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname

    const failed = (cause: unknown, totalExpired = false): UpstreamUnreachable | UpstreamTimeout => {
      if (totalExpired) return new UpstreamTimeout({ provider, phase: "total", afterMs: timeouts.total })
      const reason = failureReasonOf(cause, "connection failed")
      const phase = TIMEOUT_PHASES[reason]
      return phase === undefined
        ? new UpstreamUnreachable({ provider, reason })
        : new UpstreamTimeout({ provider, phase, afterMs: timeouts[phase] })
    }

    const adapter: Adapter = (request) =>
      Effect.withFiberRuntime((fiber) =>
        Effect.async<UpstreamResponse, UpstreamError>((resume) => {
          // undici takes an EventEmitter as the abort signal: much cheaper to make than an
          // AbortController and its EventTarget signal (~2% of a request's CPU here).
          const abort = new EventEmitter()
          // The exchange is cut off if the fiber it runs on ends first: interrupted because the
          // client left, or a shared flight was dropped. (A fiber observer rather than a canceler
          // returned from here: a canceler wraps the wait in an uninterruptible region, ~10
          // steps per request.) Nothing here is raced or timed out by an effect, so the fiber
          // ending is the only way the wait is given up.
          const onFiberEnd = () => abort.emit("abort")
          fiber.addObserver(onFiberEnd)
          let totalExpired = false
          // The whole exchange, a streamed body included: it runs until the body has been read to
          // its end or dropped (its `close`), whoever reads it, and then aborts it.
          const total = setTimeout(() => {
            totalExpired = true
            abort.emit("abort")
          }, timeouts.total)
          const done = (effect: Effect.Effect<UpstreamResponse, UpstreamError>) => {
            fiber.removeObserver(onFiberEnd)
            resume(effect)
          }
          const fail = (cause: unknown) => {
            clearTimeout(total)
            done(Effect.fail(failed(cause, totalExpired)))
          }
          requestWith(dispatcher, {
            path: basePath + request.path,
            method: request.method ?? "POST",
            headers: headersFor(request),
            body: request.method === undefined || request.method === "POST" ? request.body : null,
            signal: abort,
            headersTimeout: timeouts.firstByte,
            bodyTimeout: timeouts.idle
          }, (error, response) => {
            if (error !== null) {
              const refused = refusedBeforeSending(provider, error)
              return refused === undefined ? fail(error) : done(Effect.fail(refused))
            }
            const headers = responseHeaders(response.headers)
            const status = response.statusCode
            const body = response.body
            const length = lengthOf(response.headers)
            // Closures are made only in the branch that needs them: a normal JSON answer makes
            // only its `then` callback, as before.
            if (status >= 400 || status < 200) {
              // An error answer goes back to the client whole, up to `limits.errorBytes`; the rest is dropped.
              // An HTTP-date Retry-After is measured on the fiber's Clock, the one the retry sleeps on.
              const answered = (bytes: Uint8Array) => {
                clearTimeout(total)
                done(Effect.clockWith((clock): Effect.Effect<never, UpstreamError> =>
                  fromStatus({ provider, status, headers, body: bytes, retryAfterMs: retryAfterMs(headers, clock.unsafeCurrentTimeMillis()) })
                ))
              }
              if (length !== undefined && length <= limits.errorBytes) {
                body.arrayBuffer().then((bytes) => answered(new Uint8Array(bytes)), fail)
              } else {
                readUpTo(body, limits.errorBytes, (chunks, size, over) => {
                  if (over) body.on("error", ignore).destroy()
                  answered(joined(chunks, Math.min(size, limits.errorBytes)))
                }, fail)
              }
            } else if (request.stream && (headers["content-type"] ?? "").includes("text/event-stream")) {
              // Answer only once the first chunk is here (or the body ended): a stream that dies
              // before its first byte fails this attempt, so it can still be retried or failed
              // over.
              body.on("error", ignore)
              const settle = (error?: unknown) => {
                body.off("readable", ready)
                body.off("end", ready)
                body.off("error", broke)
                if (error !== undefined) return fail(error)
                done(Effect.succeed({ status, headers, body: streamed(body, total, (cause) => failed(cause, totalExpired)) }))
              }
              const ready = () => settle()
              const broke = (error: unknown) => settle(error ?? new Error("stream failed"))
              body.once("readable", ready)
              body.once("end", ready)
              body.once("error", broke)
            } else if (length !== undefined && length <= limits.bufferBytes) {
              body.arrayBuffer().then((bytes) => {
                clearTimeout(total)
                done(Effect.succeed({ status, headers, body: { _tag: "Bytes", bytes: new Uint8Array(bytes) } }))
              }, fail)
            } else {
              const handOver = () =>
                done(Effect.succeed({ status, headers, body: streamed(body, total, (cause) => failed(cause, totalExpired)) }))
              // Too large to hold: passed through as it comes (`Proxy/Whole.ts` reads its usage).
              if (length !== undefined) return handOver()
              // No length said: read until it ends, or until it is too large to hold, and then
              // passed through from its start (what was read is put back in front of the rest).
              readUpTo(body, limits.bufferBytes, (chunks, size, over) => {
                if (over) {
                  body.unshift(joined(chunks, size))
                  return handOver()
                }
                clearTimeout(total)
                done(Effect.succeed({ status, headers, body: { _tag: "Bytes", bytes: joined(chunks, size) } }))
              }, fail)
            }
          })
        })
      )
    return adapter
  })
