/**
 * The request program for `POST /v1/chat/completions`: parse what decisions need, route, send
 * upstream, pass the answer back (bytes, or an SSE stream watched by a tap), and offer one ledger
 * event per request, whatever happened. Errors stay typed; the HTTP edge maps them.
 */
import { type Headers, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Either, Exit, Layer, Stream } from "effect"
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
import * as Tokens from "./Tokens.js"
import { Failover, layer as FailoverLayer, targetName, Trail } from "./Failover.js"
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

      const event = (fields: {
        status: number
        errorType: string | null
        usage: Usage | undefined
        servedModel: string | null
        ttfbMs: number | null
        aborted: boolean
      }): LedgerEvent => {
        const cost = fields.usage !== undefined && fields.servedModel !== null
          ? pricing.costOf(fields.servedModel, fields.usage)
          : null
        return {
          ts,
          requestId: call.requestId,
          endpoint: ENDPOINT,
          route,
          rule,
          provider: trail.target?.provider.name ?? null,
          requestedModel,
          servedModel: fields.servedModel,
          stream,
          status: fields.status,
          errorType: fields.errorType,
          attempts: trail.attempts,
          failover: trail.failover,
          attemptErrors: trail.failures.length === 0 ? null : trail.failures.join(","),
          skipped: trail.skipped.length === 0 ? null : trail.skipped.join(","),
          cacheStatus: null,
          inputTokens: fields.usage?.inputTokens ?? null,
          outputTokens: fields.usage?.outputTokens ?? null,
          cachedInputTokens: fields.usage?.cachedInputTokens ?? null,
          cacheWriteTokens: fields.usage?.cacheWriteTokens ?? null,
          reasoningTokens: fields.usage?.reasoningTokens ?? null,
          costUsd: cost,
          priced: cost !== null,
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

        const response = yield* failover.send({
          route,
          targets: decision.targets,
          requestFor: (target) => ({
            path: "/chat/completions",
            body: bodyFor(target.model),
            stream,
            clientHeaders: call.headers
          })
        }, trail)
        const served = trail.target!
        const headers = { ...response.headers, ...tollgateHeaders(call.requestId, route, trail) }

        if (response.body._tag === "Stream") {
          return yield* streamResponse(response, response.body.stream, headers, injectUsage, parsed, served, event)
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
          ).pipe(Effect.as(toResponse(error, tollgateHeaders(call.requestId, route, trail))))
        ),
        Effect.onInterrupt(() =>
          telemetry.record(
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
    event: (fields: {
      status: number
      errorType: string | null
      usage: Usage | undefined
      servedModel: string | null
      ttfbMs: number | null
      aborted: boolean
    }) => LedgerEvent
  ) =>
    Effect.sync(() => {
      const tap = new Sse.SseTap(injectedUsage)
      const started = clock.unsafeCurrentTimeNanos()
      let ttfbMs: number | null = null
      let failure: UpstreamUnreachable | UpstreamTimeout | undefined

      const body = upstreamStream.pipe(
        Stream.map((chunk) => {
          if (ttfbMs === null) ttfbMs = Number(clock.unsafeCurrentTimeNanos() - started) / 1e6
          return tap.push(chunk)
        }),
        Stream.concat(Stream.sync(() => tap.end())),
        Stream.catchAll((error) => {
          // Headers are gone already: the client learns of the failure from a final error event,
          // which the official SDKs raise as an error.
          failure = error
          const reason = error._tag === "UpstreamTimeout" ? `no data for ${error.afterMs} ms` : error.reason
          return Stream.make(encoder.encode(Sse.event(JSON.stringify({
            error: { message: `Provider "${error.provider}" stream failed: ${reason}`, type: "upstream_error", code: "upstream_stream_error" }
          }))))
        }),
        Stream.filter((chunk) => chunk.byteLength > 0),
        Stream.ensuringWith((exit) =>
          Effect.gen(function*() {
            const aborted = Exit.isInterrupted(exit)
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

  return Proxy.of({ chatCompletions })
})

/** `model` and `usage` of a non-streaming completion; both optional. */
const readCompletion = (bytes: Uint8Array): { model: string | undefined; usage: Usage | undefined } => {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { model?: unknown; usage?: unknown }
    return { model: typeof json.model === "string" ? json.model : undefined, usage: fromOpenAi(json.usage) }
  } catch {
    return { model: undefined, usage: undefined }
  }
}

const estimated = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "estimated"
})

const estimateFromStream = (parsed: ChatRequest.ChatRequest, tap: Sse.SseTap) =>
  Effect.zipWith(
    Tokens.countChatInput(parsed.json as { messages: ReadonlyArray<unknown> }),
    Tokens.countText(tap.completionText()),
    estimated
  )

const estimateFromCompletion = (parsed: ChatRequest.ChatRequest, bytes: Uint8Array) =>
  Effect.zipWith(
    Tokens.countChatInput(parsed.json as { messages: ReadonlyArray<unknown> }),
    Tokens.countText(completionTextOf(bytes)),
    estimated
  )

const completionTextOf = (bytes: Uint8Array): string => {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as {
      choices?: Array<{ message?: { content?: unknown; tool_calls?: unknown } }>
    }
    return (json.choices ?? [])
      .map((c) => `${typeof c.message?.content === "string" ? c.message.content : ""}${c.message?.tool_calls === undefined ? "" : JSON.stringify(c.message.tool_calls)}`)
      .join("")
  } catch {
    return ""
  }
}

export const layerWithoutDependencies: Layer.Layer<Proxy, never, Router | Failover | Pricing | Telemetry> = Layer.effect(
  Proxy,
  make
)

export const layer: Layer.Layer<Proxy, StoreError, Config> = layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(RouterLayer, FailoverLayer, PricingLayer, TelemetryLayer))
)
