/**
 * The request program for `POST /v1/chat/completions`: parse what decisions need, route, answer
 * from the cache or share an identical request's upstream call when allowed, otherwise send
 * upstream (retries, breakers, failover), pass the answer back (bytes, or an SSE stream watched by
 * a tap), and offer one ledger event per request, whatever happened.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as ChatRequest from "./Domain/ChatRequest.js"
import { errorTypeOf, statusOf, type UpstreamTimeout, type UpstreamUnreachable } from "./Domain/Errors.js"
import type { LedgerEvent } from "./Domain/LedgerEvent.js"
import { fromOpenAi, type Usage } from "./Domain/Usage.js"
import type { Config } from "./Config.js"
import { layer as PricingLayer, Pricing } from "./Pricing.js"
import { Router, layer as RouterLayer, type Target } from "./Router.js"
import * as Sse from "./Sse.js"
import type { StoreError } from "./Store.js"
import { layer as TelemetryLayer, Telemetry } from "./Telemetry.js"
import * as Cache from "./Cache.js"
import { Coalesce, layer as CoalesceLayer, type Ticket } from "./Coalesce.js"
import { Failover, layer as FailoverLayer, targetName, Trail } from "./Failover.js"
import { policyOf, toCached } from "./Proxy/Caching.js"
import { estimateFromCompletion, estimateFromStream, readCompletion, usageOfLanded } from "./Proxy/Usage.js"
import { toResponse } from "./Http/Errors.js"
import type { UpstreamResponse } from "./Upstream.js"

export interface Call {
  readonly requestId: string
  readonly raw: Uint8Array
  readonly headers: Headers.Headers
}

export class Proxy extends Context.Tag("tollgate/Proxy")<Proxy, {
  /** Never fails: errors are answered (and recorded) here, mapped by `Http/Errors.ts`. */
  readonly chatCompletions: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>
}>() {}

const ENDPOINT = "/v1/chat/completions"

/** What the end of a request adds to its ledger row. */
interface EventFields {
  readonly status: number
  readonly errorType: string | null
  readonly usage: Usage | undefined
  readonly servedModel: string | null
  readonly ttfbMs: number | null
  readonly aborted: boolean
}
const encoder = new TextEncoder()

/** Headers every answer carries, success or not: what served it and how many tries it took. */
const tollgateHeaders = (requestId: string, route: string | null, trail: Trail) => {
  const headers: Record<string, string> = { "x-tollgate-request-id": requestId }
  if (route !== null) headers["x-tollgate-route"] = route
  const target = trail.target
  if (target !== undefined) {
    headers["x-tollgate-provider"] = target.provider.name
    headers["x-tollgate-model"] = target.model
    if (trail.failover) headers["x-tollgate-failover"] = targetName(target)
  }
  headers["x-tollgate-attempts"] = String(trail.attempts)
  return headers
}

const bearer = (headers: Headers.Headers): string | undefined => {
  const auth = headers["authorization"]
  if (auth !== undefined && auth.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim() || undefined
  return headers["x-api-key"]
}

export const make = Effect.gen(function*() {
  const router = yield* Router
  const failover = yield* Failover
  const pricing = yield* Pricing
  const telemetry = yield* Telemetry
  const cache = yield* Cache.Cache
  const coalesce = yield* Coalesce
  const clock = yield* Effect.clock

  const chatCompletions = (call: Call) =>
    Effect.suspend(() => {
      const ts = clock.unsafeCurrentTimeMillis()
      const started = clock.unsafeCurrentTimeNanos()
      const elapsedMs = () => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6
      const clientKey = bearer(call.headers)

      // Fields filled in as the request moves along; `event` turns them into a ledger row.
      let route: string | null = null
      let rule: string | null = null
      let requestedModel: string | null = null
      let stream = false
      const trail = new Trail()
      // If this request leads a shared flight and leaves before it ends, the flight writes this
      // row when the call ends, with what it really cost (the others got it for free).
      const ticket: Ticket = {
        handedOver: false,
        bill: (outcome) =>
          Effect.gen(function*() {
            const answered = Option.isSome(outcome) ? yield* usageOfLanded(outcome.value, parsedBody) : undefined
            yield* telemetry.record(event({
              status: Option.isSome(outcome) ? outcome.value.head.status : 499,
              errorType: "client_aborted",
              usage: answered?.usage,
              servedModel: answered?.model ?? trail.target?.model ?? null,
              ttfbMs: null,
              aborted: true
            }))
          })
      }
      let parsedBody: ChatRequest.ChatRequest | undefined
      /** hit | miss | coalesced | refresh | bypass | off */
      let cacheStatus = "off"
      /** A cache hit was bought from this provider, earlier. */
      let hitProvider: string | null = null

      const event = (fields: EventFields): LedgerEvent => {
        const cost = fields.usage !== undefined && fields.servedModel !== null
          ? pricing.costOf(fields.servedModel, fields.usage)
          : null
        // A hit or a shared answer cost nothing more: what it would have cost was saved.
        const free = cacheStatus === "hit" || cacheStatus === "coalesced"
        return {
          ts,
          requestId: call.requestId,
          endpoint: ENDPOINT,
          route,
          rule,
          provider: hitProvider ?? trail.target?.provider.name ?? null,
          requestedModel,
          servedModel: fields.servedModel,
          stream,
          status: fields.status,
          errorType: fields.errorType,
          attempts: trail.attempts,
          failover: trail.failover,
          attemptErrors: trail.failures.length === 0 ? null : trail.failures.join(","),
          skipped: trail.skipped.length === 0 ? null : trail.skipped.join(","),
          cacheStatus,
          inputTokens: fields.usage?.inputTokens ?? null,
          outputTokens: fields.usage?.outputTokens ?? null,
          cachedInputTokens: fields.usage?.cachedInputTokens ?? null,
          cacheWriteTokens: fields.usage?.cacheWriteTokens ?? null,
          reasoningTokens: fields.usage?.reasoningTokens ?? null,
          costUsd: free && cost !== null ? 0 : cost,
          priced: cost !== null,
          savedUsd: free ? cost : null,
          usageSource: fields.usage?.source ?? null,
          latencyMs: elapsedMs(),
          ttfbMs: fields.ttfbMs,
          aborted: fields.aborted,
          clientHash: clientKey === undefined ? null : telemetry.hashClient(clientKey),
          userAgent: call.headers["user-agent"] ?? null,
          project: call.headers["x-tollgate-project"] ?? null,
          session: call.headers["x-tollgate-session"] ?? null
        }
      }

      const program = Effect.gen(function*() {
        const parsed = yield* Either.match(ChatRequest.parse(call.raw), { onLeft: Effect.fail, onRight: Effect.succeed })
        const body = parsed.body
        parsedBody = parsed
        requestedModel = body.model
        stream = body.stream === true
        const decision = router.decide({ model: body.model })
        route = decision.route
        rule = decision.rule

        // Forward the client's bytes as they are, unless a field must change: the served model,
        // or usage reporting on a stream the client did not ask usage for.
        const injectUsage = stream && body.stream_options?.include_usage !== true
        const bodyFor = (model: string) =>
          injectUsage || model !== body.model
            ? encoder.encode(JSON.stringify({
              ...parsed.json,
              model,
              ...(injectUsage ? { stream_options: { ...(body.stream_options ?? {}), include_usage: true } } : {})
            }))
            : call.raw

        const dispatch = {
          route,
          targets: decision.targets,
          requestFor: (target: Target) => ({ path: "/chat/completions", body: bodyFor(target.model), stream, clientHeaders: call.headers })
        }
        const send = failover.send(dispatch, trail)

        const policy = policyOf(cache.settings, call.headers, parsed.json)
        cacheStatus = policy.status
        let response: UpstreamResponse
        if (policy.status === "lookup" || policy.status === "refresh") {
          const project = call.headers["x-tollgate-project"] ?? ""
          const key = Cache.cacheKey({
            endpoint: ENDPOINT,
            body: parsed.json,
            tenant: `${project}|${clientKey === undefined ? "" : telemetry.hashClient(clientKey)}`,
            target: targetName(decision.targets[0])
          })
          if (policy.lookup) {
            const hit = yield* cache.get(key)
            if (Option.isSome(hit)) {
              cacheStatus = "hit"
              hitProvider = hit.value.provider
              return yield* serveHit(hit.value, call.requestId, route, body.stream_options?.include_usage === true, stream, event)
            }
          }
          cacheStatus = policy.status === "refresh" ? "refresh" : "miss"
          const joined = yield* coalesce.join(
            // Requests that may not share still go through a flight of their own (for storage).
            policy.share ? `${key}:${stream}` : `${key}:${call.requestId}`,
            Effect.map(send, (r) => ({ ...r, target: trail.target })),
            (landed) => {
              const answer = policy.store ? toCached(landed, cache.settings, pricing.costOf) : undefined
              return answer === undefined ? Effect.void : cache.set(key, answer)
            },
            ticket
          )
          if (!joined.leader) {
            cacheStatus = "coalesced"
            trail.target = joined.target
          }
          response = joined.response
        } else {
          response = yield* send
        }
        const served = trail.target!
        const headers: Record<string, string> = {
          ...response.headers,
          ...tollgateHeaders(call.requestId, route, trail),
          "x-tollgate-cache": cacheStatus
        }

        if (response.body._tag === "Stream") {
          return yield* streamResponse(response, response.body.stream, headers, injectUsage, parsed, served, event, ticket)
        }
        const bytes = response.body.bytes
        const { model, usage } = readCompletion(bytes)
        const finalUsage = usage ?? (yield* estimateFromCompletion(parsed, bytes))
        const servedModel = model ?? served.model
        const row = event({ status: response.status, errorType: null, usage: finalUsage, servedModel, ttfbMs: elapsedMs(), aborted: false })
        yield* telemetry.record(row)
        headers["x-tollgate-cost"] = row.costUsd === null ? "unpriced" : row.costUsd.toFixed(8)
        return HttpServerResponse.uint8Array(bytes, { status: response.status, headers })
      })

      return program.pipe(
        Effect.catchAll((error) =>
          telemetry.record(
            event({ status: statusOf(error), errorType: errorTypeOf(error), usage: undefined, servedModel: null, ttfbMs: null, aborted: false })
          ).pipe(Effect.as(toResponse(error, { ...tollgateHeaders(call.requestId, route, trail), "x-tollgate-cache": cacheStatus })))
        ),
        Effect.onInterrupt(() =>
          ticket.handedOver ? Effect.void : telemetry.record(
            event({ status: 499, errorType: "client_aborted", usage: undefined, servedModel: null, ttfbMs: null, aborted: true })
          )
        )
      )
    })

  /**
   * The SSE answer: upstream bytes pass straight through the tap (never buffered past an event
   * boundary); when the stream ends, fails or the client goes away, one ledger event is offered.
   */
  const streamResponse = (
    response: UpstreamResponse,
    upstreamStream: Stream.Stream<Uint8Array, UpstreamUnreachable | UpstreamTimeout>,
    headers: Record<string, string>,
    injectedUsage: boolean,
    parsed: ChatRequest.ChatRequest,
    served: Target,
    event: (fields: EventFields) => LedgerEvent,
    ticket: Ticket
  ) =>
    Effect.sync(() => {
      const tap = new Sse.SseTap(injectedUsage)
      const started = clock.unsafeCurrentTimeNanos()
      let ttfbMs: number | null = null
      let failure: UpstreamUnreachable | UpstreamTimeout | undefined

      // One stage per chunk batch (not per chunk): the tap's output, empty pieces dropped.
      const body = upstreamStream.pipe(
        Stream.mapChunks((chunks) => {
          if (ttfbMs === null) ttfbMs = Number(clock.unsafeCurrentTimeNanos() - started) / 1e6
          const out: Array<Uint8Array> = []
          for (const chunk of chunks) {
            const forward = tap.push(chunk)
            if (forward.byteLength > 0) out.push(forward)
          }
          return Chunk.unsafeFromArray(out)
        }),
        Stream.concat(Stream.suspend(() => {
          const rest = tap.end()
          return rest.byteLength > 0 ? Stream.succeed(rest) : Stream.empty
        })),
        Stream.catchAll((error) => {
          // Headers are gone already: the client learns of the failure from a final error event,
          // which the official SDKs raise as an error.
          failure = error
          const reason = error._tag === "UpstreamTimeout" ? `no data for ${error.afterMs} ms` : error.reason
          return Stream.make(encoder.encode(Sse.event(JSON.stringify({
            error: { message: `Provider "${error.provider}" stream failed: ${reason}`, type: "upstream_error", code: "upstream_stream_error" }
          }))))
        }),
        Stream.ensuringWith((exit) =>
          Effect.gen(function*() {
            const aborted = Exit.isInterrupted(exit)
            if (ticket.handedOver) return // the flight writes this row when the call ends
            const reported = fromOpenAi(tap.usage)
            const usage = reported ?? (yield* estimateFromStream(parsed, tap))
            yield* telemetry.record(event({
              status: response.status,
              errorType: aborted
                ? "client_aborted"
                : failure !== undefined
                ? `stream_${errorTypeOf(failure)}`
                : tap.done
                ? null
                : "incomplete_stream",
              usage,
              servedModel: tap.model ?? served.model,
              ttfbMs,
              aborted
            }))
          })
        )
      )
      return HttpServerResponse.stream(body, {
        status: response.status,
        headers: { ...headers, "cache-control": "no-cache" }
      })
    })

  /** A stored answer, in the shape this client asked for. Costs nothing; saves what it cost. */
  const serveHit = (
    answer: Cache.CachedAnswer,
    requestId: string,
    route: string | null,
    includeUsage: boolean,
    asStream: boolean,
    event: (fields: EventFields) => LedgerEvent
  ) =>
    Effect.gen(function*() {
      const row = event({ status: 200, errorType: null, usage: answer.usage, servedModel: answer.model, ttfbMs: null, aborted: false })
      yield* telemetry.record(row)
      const headers: Record<string, string> = {
        "x-tollgate-request-id": requestId,
        ...(route === null ? {} : { "x-tollgate-route": route }),
        "x-tollgate-provider": answer.provider,
        "x-tollgate-model": answer.model,
        "x-tollgate-attempts": "0",
        "x-tollgate-cache": "hit",
        "x-tollgate-cost": "0"
      }
      if (!asStream) {
        return HttpServerResponse.text(Cache.jsonBody(answer), { headers, contentType: "application/json" })
      }
      const events = Cache.sseEvents(answer, includeUsage).map((e) => encoder.encode(e))
      return HttpServerResponse.stream(Stream.fromIterable(events), {
        headers: { ...headers, "cache-control": "no-cache" },
        contentType: "text/event-stream; charset=utf-8"
      })
    })

  return Proxy.of({ chatCompletions })
})

export const layerWithoutDependencies: Layer.Layer<
  Proxy,
  never,
  Router | Failover | Pricing | Telemetry | Cache.Cache | Coalesce
> = Layer.effect(
  Proxy,
  make
)

export const layer: Layer.Layer<Proxy, StoreError, Config> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(RouterLayer, FailoverLayer, PricingLayer, TelemetryLayer, Cache.layer, CoalesceLayer))
)
