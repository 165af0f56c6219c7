/**
 * The public listener's routes. Services are captured when the layer is built, so a request
 * carries no requirements but itself. Unknown paths are 404, known paths with the wrong method
 * are 405 (with `Allow`), HEAD is answered as GET without the body (Node drops it), and every
 * error leaves through `Http/Errors.ts`.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { randomUUID } from "node:crypto"
import { Circuit } from "../Circuit.js"
import { TollgateConfig } from "../Config.js"
import { MethodNotAllowed, NotFound, type RequestError, Unauthorized } from "../Domain/Errors.js"
import { Pricing } from "../Pricing.js"
import { type Call, Proxy } from "../Proxy.js"
import { targetNameOf } from "../Router/Decision.js"
import { Telemetry } from "../Telemetry.js"
import type * as Body from "../Node/Body.js"
import { toAnthropicResponse, toResponse } from "./Errors.js"

/** A request as the listener hands it over: its line, its headers, and its body, read already. */
export interface Incoming {
  readonly method: string
  readonly url: string
  readonly headers: Headers.Headers
  /** The whole body, or why it could not be read (too large, broken off). */
  readonly body: Body.Body
}

type Handler = (
  request: Incoming,
  requestId: string
) => Effect.Effect<HttpServerResponse.HttpServerResponse, RequestError>

const CREATED = Math.floor(Date.parse("2025-01-01T00:00:00Z") / 1000)

/** Paths answered without a client key even when `server.apiKeys` is set: the health probes. */
const OPEN_PATHS = new Set(["/healthz", "/readyz"])

export const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** An error as the client's dialect says it: Anthropic's shape under `/v1/messages`, else OpenAI's. */
export const errorResponse = (
  path: string,
  error: RequestError,
  headers: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse => (path.startsWith("/v1/messages") ? toAnthropicResponse : toResponse)(error, headers)

/** The request program for one request, and what the listener asks before it reads a body. */
export interface App {
  (request: Incoming): Effect.Effect<HttpServerResponse.HttpServerResponse>
  /**
   * Why a request must be refused before its body is read (no valid key where one is needed);
   * undefined when nothing is ever refused that way (no `server.apiKeys`), so the listener pays
   * nothing per request then.
   */
  readonly refusedBeforeBody: ((url: string, headers: Headers.Headers) => Unauthorized | undefined) | undefined
  /** The paths it answers (for mounting them in another router). */
  readonly paths: ReadonlyArray<string>
}

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const proxy = yield* Proxy
  const pricing = yield* Pricing
  const circuit = yield* Circuit
  const telemetry = yield* Telemetry
  const apiKeys = new Set(config.server.apiKeys)

  /** Why this request may not use this tollgate, if it may not (a plain check: no step of its own per request). */
  const refusal = (headers: Headers.Headers): Unauthorized | undefined => {
    if (apiKeys.size === 0) return undefined
    const auth = headers["authorization"]
    const key = auth?.toLowerCase().startsWith("bearer ") ? auth.slice(7).trim() : headers["x-api-key"]
    return key !== undefined && apiKeys.has(key)
      ? undefined
      : new Unauthorized({ message: "Missing or unknown API key for this tollgate (server.apiKeys)" })
  }

  /** A proxied endpoint: authorised, with a body read within the limit, then the request program. */
  const proxied = (program: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>): Handler => (request, requestId) => {
    const refused = refusal(request.headers)
    if (refused !== undefined) return Effect.fail(refused)
    if (Either.isLeft(request.body)) return Effect.fail(request.body.left)
    return program({ requestId, raw: request.body.right, headers: request.headers })
  }

  // What a client may ask for: its aliases (configured and built-in) first, then every model a
  // route names, then the priced models of the configured provider kinds.
  const modelIds = [...new Set([
    ...Object.keys(config.models.aliases),
    "tollgate:fast",
    "tollgate:cheap",
    "tollgate:best",
    "tollgate:auto",
    ...config.routes.flatMap((r) => [
      ...r.targets.flatMap((t) => t.model ?? []),
      ...(r.cascade?.models ?? []),
      ...(r.cascade?.targets ?? []).flatMap((t) => t.model ?? [])
    ]),
    ...pricing.modelsFor(config.providers.map((p) => p.config))
  ])]
  const modelsBody = {
    object: "list",
    data: modelIds.map((id) => ({ id, object: "model", created: CREATED, owned_by: "tollgate" }))
  }
  const models: Handler = (request) => {
    const refused = refusal(request.headers)
    return refused === undefined ? Effect.succeed(HttpServerResponse.unsafeJson(modelsBody)) : Effect.fail(refused)
  }

  const health: Handler = () => Effect.succeed(HttpServerResponse.unsafeJson({ status: "ok" }))
  // Layers are built before the listener opens: once a request is served, the ledger is open and
  // migrated and the providers are resolved. What is left to know is whether anything can serve,
  // and whether the ledger can be written (when it cannot, `block` refuses requests).
  const routeTargets = config.routes.flatMap((r) => r.targets.flatMap((t) => (t.model === undefined ? [] : [targetNameOf(t.provider, t.model)])))
  const ready: Handler = () =>
    Effect.zipWith(circuit.snapshot(routeTargets), SubscriptionRef.get(telemetry.health), (targets, ledger) => {
      const unavailable = (targets.length > 0 && targets.every((t) => t.state === "open")) || telemetry.refusing()
      return HttpServerResponse.unsafeJson(
        { status: unavailable ? "unavailable" : "ready", providers: config.providers.map((p) => p.name), targets, ledger },
        { status: unavailable ? 503 : 200 }
      )
    })

  const routes: Record<string, Record<string, Handler>> = {
    "/v1/chat/completions": { POST: proxied(proxy.chatCompletions) },
    "/v1/messages": { POST: proxied(proxy.messages) },
    "/v1/messages/count_tokens": { POST: proxied(proxy.countTokens) },
    "/v1/models": { GET: models },
    "/healthz": { GET: health },
    "/readyz": { GET: ready }
  }

  const app = (request: Incoming): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const requestId = `req_${randomUUID().replaceAll("-", "")}`
    const path = pathOf(request.url)
    const handlers = routes[path]
    const handler = handlers?.[request.method] ?? (request.method === "HEAD" ? handlers?.["GET"] : undefined)
    const run: Effect.Effect<HttpServerResponse.HttpServerResponse, RequestError> = handlers === undefined
      ? Effect.fail(new NotFound({ method: request.method, path }))
      : handler === undefined
      ? Effect.fail(new MethodNotAllowed({ method: request.method, path, allow: allowed(handlers) }))
      : handler(request, requestId)
    // The listener forks each request on an interruptible fiber, so timeouts fire and a client
    // that goes away stops the work done for it. One handler for failures and defects (an
    // interruption passes through): each wrapper is a step on every request.
    return Effect.catchAllCause(run, (cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        return Effect.succeed(
          errorResponse(path, error, {
            "x-tollgate-request-id": requestId,
            // The unread rest of the body is discarded: do not reuse the connection.
            ...(error._tag === "PayloadTooLarge" || error._tag === "Overloaded" ? { connection: "close" } : {})
          })
        )
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(Cause.stripFailures(cause))
      return Effect.logError("unexpected failure while serving a request", cause).pipe(
        Effect.as(
          HttpServerResponse.unsafeJson(
            { error: { message: "tollgate hit an internal error; see its log", type: "server_error", code: "internal_error" } },
            { status: 500, headers: { "x-tollgate-request-id": requestId } }
          )
        )
      )
    })
  }
  const refusedBeforeBody = apiKeys.size === 0
    ? undefined
    : (url: string, headers: Headers.Headers) => (OPEN_PATHS.has(pathOf(url)) ? undefined : refusal(headers))
  const routed: App = Object.assign(app, { refusedBeforeBody, paths: Object.keys(routes) })
  return routed
})

/** The methods a path answers: HEAD wherever GET is. */
const allowed = (handlers: Record<string, Handler>): Array<string> => {
  const methods = Object.keys(handlers)
  return methods.includes("GET") ? [...methods, "HEAD"] : methods
}
