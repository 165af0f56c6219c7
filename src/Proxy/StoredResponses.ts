/**
 * The Responses API's endpoints beside `POST /v1/responses`: a stored response read, deleted or
 * cancelled (`GET` / `DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`,
 * `GET /v1/responses/{id}/input_items`), a conversation compacted (`POST /v1/responses/compact`)
 * and input tokens counted (`POST /v1/responses/input_tokens`). They pass through to a provider
 * that speaks `openai-responses`, and the answer comes back as the provider sent it (its status,
 * its bytes; a `?stream=true` read as its event stream).
 *
 * Which provider: a body that names a `model` goes to that model's routed targets that speak the
 * Responses API (as `count_tokens` keeps the Anthropic ones), the model rewritten when the route
 * serves another; a request with no model (an id only) goes to the first configured provider
 * that speaks it, where the response was stored. The ledger: `compact` generates output and is
 * billed, so an answer with `usage` is booked like any request; the others cost nothing and leave
 * no row.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { Piped } from "../Bytes.js"
import { missingKeyOf, type ResolvedProvider } from "../Config/Provider.js"
import { OpenAiResponses } from "../Dialect/OpenAiResponses.js"
import { BadRequest, ProviderKeyMissing, type RequestError } from "../Domain/Errors.js"
import type { Usage } from "../Domain/Usage.js"
import { type Failover, Trail } from "../Failover.js"
import type { Router, Target } from "../Router.js"
import { readResponse } from "../Sse/Responses.js"
import type { Telemetry } from "../Telemetry.js"
import type { UpstreamRequest, UpstreamResponse } from "../Upstream/Exchange.js"
import { dialectsOf } from "../Upstream/Kinds.js"
import { bearer, providerHeaders } from "./Headers.js"
import { RequestRecord } from "./Record.js"

export type StoredOperation = "retrieve" | "delete" | "cancel" | "inputItems" | "compact" | "inputTokens"

/** What the handler gets of a request: the proxy's `Call`, with its method and URL. */
export interface StoredCall {
  readonly requestId: string
  readonly raw: Uint8Array
  readonly headers: Headers.Headers
  readonly method: string
  /** The client's URL (`/v1/responses/...`, with its query string). */
  readonly url: string
}

const METHODS: Record<StoredOperation, "GET" | "POST" | "DELETE"> = {
  retrieve: "GET",
  delete: "DELETE",
  cancel: "POST",
  inputItems: "GET",
  compact: "POST",
  inputTokens: "POST"
}

/**
 * The "model" of a target that only names a provider (an id-only request): breakers and the
 * failover trail key targets by `provider/model`, and these requests have no model.
 */
const STORED = "(stored-responses)"

const V1 = "/v1"

export interface Deps {
  readonly providers: ReadonlyArray<ResolvedProvider>
  readonly router: Router["Type"]
  readonly failover: Failover["Type"]
  readonly telemetry: Telemetry["Type"]
  readonly clock: Clock.Clock
  readonly costOf: (model: string, usage: Usage, provider?: string | null, atMs?: number) => number | null
  readonly fallbackCostOf: ((usage: Usage) => number) | undefined
}

const speaksResponses = (provider: ResolvedProvider): boolean => dialectsOf(provider.config).includes(OpenAiResponses.id)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const NOT_SERVED = "set `responsesApi: true` on an OpenAI provider that serves the Responses API (it is on by default for api.openai.com)"

export const make = (deps: Deps) => {
  const { failover, router, telemetry, clock } = deps
  const home = deps.providers.find(speaksResponses)

  /** The first configured provider that speaks Responses: where an id-only request goes. */
  const homeTarget = (path: string): Target | RequestError => {
    if (home === undefined) {
      return new BadRequest({
        code: "no_responses_provider",
        message: `No configured provider serves the Responses API, so ${path} cannot be answered: ${NOT_SERVED}`
      })
    }
    if (home.missingKeyEnv !== undefined) return new ProviderKeyMissing({ missing: [{ provider: home.name, variable: home.missingKeyEnv }] })
    return { provider: home, model: STORED }
  }

  /** The targets for a body's model that speak Responses (keys missing: refused, naming the variables). */
  const routedTargets = (model: string, path: string): { readonly route: string | null; readonly targets: ReadonlyArray<Target> } | RequestError => {
    const decision = router.decide({ model })
    const speaking = decision.targets.filter((t) => speaksResponses(t.provider))
    if (speaking.length === 0) {
      return new BadRequest({
        code: "no_routable_target",
        message: `The model '${model}' is routed to ${decision.targets.map((t) => t.provider.name).join(", ")}, which do not serve the Responses API, so ${path} cannot be answered: ${NOT_SERVED}`
      })
    }
    const keyed = speaking.filter((t) => missingKeyOf(t.provider, t.model) === undefined)
    if (keyed.length === 0) {
      return new ProviderKeyMissing({ missing: speaking.map((t) => ({ provider: t.provider.name, variable: missingKeyOf(t.provider, t.model)! })) })
    }
    return { route: decision.route, targets: keyed }
  }

  /** The provider's answer as it came: bytes, or its stream piped through. */
  const passOn = (response: UpstreamResponse, headers: Record<string, string>): HttpServerResponse.HttpServerResponse => {
    const body = response.body
    if (body._tag === "Bytes") return HttpServerResponse.uint8Array(body.bytes, { status: response.status, headers })
    const source = body.source
    const release = source.release
    return HttpServerResponse.raw(new Piped(source, () => release ?? Effect.void), { status: response.status, headers })
  }

  const answerHeaders = (response: UpstreamResponse, requestId: string, trail: Trail): Record<string, string> => {
    const headers = providerHeaders(response.headers, true, response.body._tag === "Stream")
    headers["x-tollgate-request-id"] = requestId
    if (trail.target !== undefined) {
      headers["x-tollgate-provider"] = trail.target.provider.name
      if (trail.target.model !== STORED) headers["x-tollgate-model"] = trail.target.model
    }
    headers["x-tollgate-attempts"] = String(trail.attempts)
    return headers
  }

  /** `compact`'s row: what it generated and cost, like any request (only when the answer says its usage). */
  const book = (record: RequestRecord, response: UpstreamResponse, headers: Record<string, string>): Effect.Effect<void> => {
    if (response.body._tag !== "Bytes" || response.status >= 300) return Effect.void
    const facts = readResponse(response.body.bytes)
    if (facts.usage === undefined) return Effect.void
    const row = record.event({
      status: response.status,
      errorType: null,
      usage: facts.usage,
      servedModel: facts.model ?? record.trail.target?.model ?? null,
      ttfbMs: record.context.elapsedMs(),
      aborted: false
    })
    headers["x-tollgate-cost"] = row.costUsd === null ? "unpriced" : row.costUsd.toFixed(8)
    return telemetry.record(row)
  }

  const handle = (operation: StoredOperation, call: StoredCall) =>
    Effect.gen(function*() {
      const method = METHODS[operation]
      const path = call.url.startsWith(V1) ? call.url.slice(V1.length) : call.url
      const shownPath = `${call.method} ${call.url.split("?")[0]}`
      let json: Record<string, unknown> | undefined
      if (method === "POST" && call.raw.byteLength > 0) {
        let parsed: unknown
        try {
          parsed = JSON.parse(decoder.decode(call.raw))
        } catch {
          return yield* new BadRequest({ code: "invalid_json", message: `The body of ${shownPath} is not valid JSON` })
        }
        if (!isRecord(parsed)) return yield* new BadRequest({ code: "invalid_request", message: `The body of ${shownPath} must be a JSON object` })
        json = parsed
      }
      const model = typeof json?.model === "string" && json.model !== "" ? json.model : undefined
      let route: string | null = null
      let targets: ReadonlyArray<Target>
      if (model === undefined) {
        const target = homeTarget(shownPath)
        if ("_tag" in target) return yield* Effect.fail(target)
        targets = [target]
      } else {
        const routed = routedTargets(model, shownPath)
        if ("_tag" in routed) return yield* Effect.fail(routed)
        route = routed.route
        targets = routed.targets
      }
      const started = clock.unsafeCurrentTimeNanos()
      const booked = operation === "compact"
      const clientKey = booked ? bearer(call.headers) : undefined
      const record = new RequestRecord({
        ts: clock.unsafeCurrentTimeMillis(),
        requestId: call.requestId,
        endpoint: `${OpenAiResponses.endpoint}/compact`,
        headers: call.headers,
        clientHash: clientKey === undefined ? null : telemetry.hashClient(clientKey),
        elapsedMs: () => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6,
        costOf: deps.costOf,
        fallbackCostOf: deps.fallbackCostOf
      })
      record.route = route
      record.requestedModel = model ?? null
      const trail = record.trail
      const stream = method === "GET" ? /[?&]stream=true(&|$)/.test(call.url) : json?.stream === true
      const requestFor = (target: Target): UpstreamRequest => ({
        provider: target.provider,
        path,
        method,
        // The served model, when the route serves another than the client named.
        body: json === undefined || model === undefined || target.model === model ? call.raw : encoder.encode(JSON.stringify({ ...json, model: target.model })),
        model: target.model === STORED ? undefined : target.model,
        stream,
        clientHeaders: call.headers
      })
      const response = yield* failover.send({ route, targets, requestFor }, trail)
      const headers = answerHeaders(response, call.requestId, trail)
      if (booked) yield* book(record, response, headers)
      return passOn(response, headers)
    }).pipe(Effect.catchAll((error: RequestError) => Effect.succeed(OpenAiResponses.errorResponse(error, { "x-tollgate-request-id": call.requestId }))))

  return (operation: StoredOperation) => (call: StoredCall) => handle(operation, call)
}
