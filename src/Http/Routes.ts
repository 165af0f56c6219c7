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
import { BadRequest, MethodNotAllowed, NotFound, type RequestError, Unauthorized } from "../Domain/Errors.js"
import * as Models from "../Models.js"
import { OpenAiChat } from "../Dialect/OpenAiChat.js"
import { ownerOf, SERVED } from "../Dialect/Bridge.js"
import { type Call, Proxy } from "../Proxy.js"
import type { StoredOperation } from "../Proxy/StoredResponses.js"
import { targetNameOf } from "../Router/Decision.js"
import { Telemetry } from "../Telemetry.js"
import * as Stats from "../Stats.js"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as Body from "../Node/Body.js"

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

/** `GET /v1/models/{id}`: one model (ids may hold slashes, e.g. OpenRouter's `vendor/model`). */
const MODEL_PREFIX = "/v1/models/"

/** `/v1/responses/{id}`, `/{id}/cancel`, `/{id}/input_items`: a stored response, at its provider. */
const RESPONSES_PREFIX = "/v1/responses/"

/** Paths answered without a client key even when `server.apiKeys` is set: the health probes. */
const OPEN_PATHS = new Set(["/healthz", "/readyz"])

export const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** An error as the client's dialect says it: the shape of the dialect whose endpoint the path is under, else OpenAI's. */
export const errorResponse = (
  path: string,
  error: RequestError,
  headers: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse => (ownerOf(path) ?? OpenAiChat).errorResponse(error, headers)

/** The request program for one request, and what the listener asks before it reads a body. */
export interface App {
  (request: Incoming): Effect.Effect<HttpServerResponse.HttpServerResponse>
  /**
   * Why a request must be refused before its body is read (no valid key where one is needed);
   * undefined when nothing is ever refused that way (no `server.apiKeys`), so the listener pays
   * nothing per request then.
   */
  readonly refusedBeforeBody: ((url: string, headers: Headers.Headers) => Unauthorized | undefined) | undefined
  /** The paths it answers, as a router's patterns (for mounting them in another router). */
  readonly paths: ReadonlyArray<string>
}

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const proxy = yield* Proxy
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

  /** A Responses endpoint beside `POST /v1/responses`: authorised, with its body, its method and URL. */
  const stored = (operation: StoredOperation): Handler => (request, requestId) => {
    const refused = refusal(request.headers)
    if (refused !== undefined) return Effect.fail(refused)
    if (Either.isLeft(request.body)) return Effect.fail(request.body.left)
    return proxy.storedResponse(operation)({ requestId, raw: request.body.right, headers: request.headers, method: request.method, url: request.url })
  }
  const storedById: Record<string, Handler> = { GET: stored("retrieve"), DELETE: stored("delete") }
  const storedCancel: Record<string, Handler> = { POST: stored("cancel") }
  const storedInputItems: Record<string, Handler> = { GET: stored("inputItems") }
  /** The handlers of a path under `/v1/responses/` that names a stored response, if it is one. */
  const storedHandlers = (path: string): Record<string, Handler> | undefined => {
    const rest = path.slice(RESPONSES_PREFIX.length).split("/")
    const id = rest[0]!
    if (id === "" || id === "." || id === ".." || rest.length > 2) return undefined
    if (rest.length === 1) return storedById
    return rest[1] === "cancel" ? storedCancel : rest[1] === "input_items" ? storedInputItems : undefined
  }

  const models = yield* Models.Models
  /** `GET /v1/models` and `GET /v1/models/{id}`, in Anthropic's shape when the client sends `anthropic-version`. */
  const listModels: Handler = (request) => {
    const refused = refusal(request.headers)
    if (refused !== undefined) return Effect.fail(refused)
    const anthropic = request.headers["anthropic-version"] !== undefined
    return Effect.map(models.list, (all) => HttpServerResponse.unsafeJson(anthropic ? Models.anthropicList(all) : Models.openAiList(all)))
  }
  const oneModel = (id: string): Handler => (request) => {
    const refused = refusal(request.headers)
    if (refused !== undefined) return Effect.fail(refused)
    return Effect.flatMap(models.list, (all) => {
      const model = all.find((m) => m.id === id)
      if (model === undefined) {
        return Effect.fail(
          new NotFound({ method: request.method, path: pathOf(request.url), code: "model_not_found", message: `The model '${id}' does not exist here (GET /v1/models lists them)` })
        )
      }
      return Effect.succeed(HttpServerResponse.unsafeJson(request.headers["anthropic-version"] !== undefined ? Models.anthropicModel(model) : Models.openAiModel(model)))
    })
  }

  const health: Handler = () => Effect.succeed(HttpServerResponse.unsafeJson({ status: "ok" }))
  // `GET /stats`: the ledger's summary (as `tollgate stats --json`), behind `server.apiKeys` like the
  // API. Served where the ledger is in the graph (an app's own wiring may leave it out).
  const ledger = yield* Effect.serviceOption(SqlClient.SqlClient)
  const clock = yield* Effect.clock
  const stats: Handler | undefined = Option.isNone(ledger) ? undefined : (request) => {
    const refused = refusal(request.headers)
    if (refused !== undefined) return Effect.fail(refused)
    const options = Stats.optionsOf(request.url, clock.unsafeCurrentTimeMillis())
    if ("code" in options) return Effect.fail(new BadRequest({ code: options.code, message: options.message }))
    return Stats.summary({ ...options, ingest: config.cloud !== undefined }).pipe(
      Effect.provideService(SqlClient.SqlClient, ledger.value),
      Effect.catchTag("SqlError", Effect.die),
      Effect.map((summary) => HttpServerResponse.unsafeJson(summary))
    )
  }
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

  // Each dialect the proxy serves is `POST` on its endpoint.
  const routes: Record<string, Record<string, Handler>> = {}
  for (const dialect of SERVED) routes[dialect.endpoint] = { POST: proxied(proxy.serve(dialect)) }
  Object.assign(routes, {
    "/v1/messages/count_tokens": { POST: proxied(proxy.countTokens) },
    "/v1/responses/compact": { POST: stored("compact") },
    "/v1/responses/input_tokens": { POST: stored("inputTokens") },
    "/v1/models": { GET: listModels },
    "/healthz": { GET: health },
    "/readyz": { GET: ready }
  })
  if (stats !== undefined) routes["/stats"] = { GET: stats }

  const app = (request: Incoming): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const requestId = `req_${randomUUID().replaceAll("-", "")}`
    const path = pathOf(request.url)
    const handlers = routes[path] ??
      (path.startsWith(MODEL_PREFIX) && path.length > MODEL_PREFIX.length
        ? { GET: oneModel(decodeURIComponent(path.slice(MODEL_PREFIX.length))) }
        : path.startsWith(RESPONSES_PREFIX)
        ? storedHandlers(path)
        : undefined)
    const handler = handlers?.[request.method] ?? (request.method === "HEAD" ? handlers?.["GET"] : undefined)
    const run: Effect.Effect<HttpServerResponse.HttpServerResponse, RequestError> = handlers === undefined
      ? Effect.fail(notFound(request.method, path))
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
  /** An unknown path: what exists instead (a base URL without `/v1` is the usual mistake). */
  const served = Object.entries(routes).flatMap(([path, handlers]) => (path.startsWith("/v1/") ? Object.keys(handlers).map((m) => `${m} ${path}`) : []))
  const notFound = (method: string, path: string): NotFound => {
    const under = `/v1${path}`
    if (!path.startsWith("/v1/") && routes[under] !== undefined) {
      return new NotFound({
        method,
        path,
        message: `Unknown request URL: ${method} ${path}. Did you mean ${under}? Set the client's base URL to end in /v1 (e.g. http://127.0.0.1:4100/v1)`
      })
    }
    return new NotFound({
      method,
      path,
      message: `Unknown request URL: ${method} ${path}. tollgate serves ${served.join(", ")}, GET /v1/models/{id}, ` +
        "GET and DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items"
    })
  }

  const refusedBeforeBody = apiKeys.size === 0
    ? undefined
    : (url: string, headers: Headers.Headers) => (OPEN_PATHS.has(pathOf(url)) ? undefined : refusal(headers))
  const routed: App = Object.assign(app, { refusedBeforeBody, paths: [...Object.keys(routes), `${MODEL_PREFIX}*`, `${RESPONSES_PREFIX}*`] })
  return routed
})

/** The methods a path answers: HEAD wherever GET is. */
const allowed = (handlers: Record<string, Handler>): Array<string> => {
  const methods = Object.keys(handlers)
  return methods.includes("GET") ? [...methods, "HEAD"] : methods
}
