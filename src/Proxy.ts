/**
 * The request program, one for every endpoint: parse what decisions need, route, answer from the
 * cache or share an identical request's upstream call when allowed, otherwise send upstream
 * (retries, breakers, failover) in the target's shape, pass the answer back in the client's shape
 * (bytes, or an SSE stream watched as it passes), and offer one ledger event per request, whatever
 * happened.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { hash } from "node:crypto"
import { BadRequest, errorTypeOf, LedgerUnavailable, statusOf, UpstreamInvalidAnswer } from "./Domain/Errors.js"
import { Budget, type Admission } from "./Budget.js"
import { costAtFallback } from "./Budget/Settings.js"
import { Circuit } from "./Circuit.js"
import { TollgateConfig } from "./Config.js"
import type { LedgerEvent } from "./Domain/LedgerEvent.js"
import * as ClientHeaders from "./Domain/ClientHeaders.js"
import type { Usage } from "./Domain/Usage.js"
import * as Catalogue from "./Router/Catalogue.js"
import { Latency } from "./Router/Latency.js"
import { Pricing } from "./Pricing.js"
import { Router, type Target } from "./Router.js"
import type { CascadePlan } from "./Router/Decision.js"
import * as Response from "./Http/Response.js"
import { Telemetry } from "./Telemetry.js"
import { Metrics } from "./Metrics.js"
import { Recent } from "./Admin/Recent.js"
import { requestsRefused } from "./Telemetry/Metrics.js"
import * as Cache from "./Cache.js"
import { Coalesce, type Joined, type Ticket } from "./Coalesce.js"
import { ResponseItems } from "./Dialect/Items.js"
import { Failover, targetName } from "./Failover.js"
import { OFF, policyOf, serveHit, toCached } from "./Proxy/Caching.js"
import { dropBody, type StreamGuard, streamAnswer } from "./Proxy/Streaming.js"
import type { Dialect, DialectId, Parsed } from "./Dialect.js"
import { AnthropicMessages } from "./Dialect/AnthropicMessages.js"
import { bridgeFor, dialectFor, noBridge, SERVED, type Wire } from "./Dialect/Bridge.js"
import { OpenAiChat } from "./Dialect/OpenAiChat.js"
import { signalOf } from "./Proxy/Cascade.js"
import { countTokens } from "./Proxy/CountTokens.js"
import * as StoredResponses from "./Proxy/StoredResponses.js"
import { addTollgateHeaders, bearer, providerHeaders } from "./Proxy/Headers.js"
import { routeWith } from "./Proxy/Routing.js"
import { type Outcome, RequestRecord } from "./Proxy/Record.js"
import { estimate, estimateFromBytes, isEventStream, usageOfLanded } from "./Proxy/Usage.js"
import type { UpstreamResponse } from "./Upstream.js"
import { dialectsOf, isSimulated } from "./Upstream/Kinds.js"

export interface Call {
  readonly requestId: string
  readonly raw: Uint8Array
  readonly headers: Headers.Headers
}

export class Proxy extends Context.Tag("tollgate/Proxy")<Proxy, {
  /**
   * The request program for a client dialect's endpoint (one of `Dialect/Bridge.ts`'s `SERVED`),
   * to any provider. Never fails: errors are answered (and recorded) here, in that dialect's shape.
   */
  readonly serve: (dialect: Dialect) => (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** `POST /v1/chat/completions`: `serve(OpenAiChat)`. */
  readonly chatCompletions: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** `POST /v1/messages`: `serve(AnthropicMessages)`. */
  readonly messages: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** `POST /v1/messages/count_tokens`: the provider's count for Anthropic targets, else an estimate. Free: no ledger row. */
  readonly countTokens: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /**
   * The Responses API's other endpoints (a stored response read, deleted, cancelled or its input
   * listed; `compact`; `input_tokens`), passed through to a provider that speaks it
   * (`Proxy/StoredResponses.ts`). Only `compact` is booked.
   */
  readonly storedResponse: (
    operation: StoredResponses.StoredOperation
  ) => (call: StoredResponses.StoredCall) => Effect.Effect<HttpServerResponse.HttpServerResponse>
}>() {}


/**
 * One request as its program and its bookkeeping share it: the record, the booking of its row
 * and the ticket a shared flight bills, with what the program has got so far (its parse, its
 * budget admission), which the booking needs whenever the request ends.
 */
interface RequestState {
  readonly record: RequestRecord
  readonly book: (outcome: Outcome) => Effect.Effect<LedgerEvent>
  readonly ticket: Ticket
  parsed: Parsed | undefined
  admission: Admission | undefined
}

const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "estimated" }

/** Clients are told to come back after this long while the ledger cannot be written. */
const LEDGER_UNAVAILABLE = new LedgerUnavailable({ retryAfterSeconds: 5 })

/** A success answer that cannot be passed on: answered as the error it is, booked with what it is estimated to cost. */
const refuse = (
  inbound: Dialect,
  record: RequestRecord,
  book: (outcome: Outcome) => Effect.Effect<LedgerEvent>,
  served: Target,
  error: UpstreamInvalidAnswer,
  usage: Effect.Effect<Usage>
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.flatMap(usage, (usage) =>
    Effect.as(
      book({ status: statusOf(error), errorType: errorTypeOf(error), usage, servedModel: served.model, ttfbMs: record.context.elapsedMs(), aborted: false }),
      inbound.errorResponse(error, addTollgateHeaders({}, record))
    ))

/** Worst-case output for a budget reservation when neither the request nor the catalogue says. */
const DEFAULT_MAX_OUTPUT = 4096

const modelOf = (target: Target): string => target.model

/** The last step a cascade may reach (its first answer plus its escalations). */
const lastStepOf = (cascade: CascadePlan): number => Math.min(cascade.steps.length - 1, cascade.maxEscalations)

/** The same request body, the same fingerprint: how the budget spots an agent in a loop. */
const fingerprintOf = (raw: Uint8Array): string => hash("sha1", raw, "base64url")

/** The dialect a target's provider speaks. */
/** The dialect a request of this client dialect goes to this target in (undefined: none can reach it). */
const dialectOfTarget = (client: DialectId, target: Target): DialectId | undefined => dialectFor(client, dialectsOf(target.provider.config))

/** Whose stored things (cache entries, translated items) a request may see: its project and client key. */
const tenantOf = (call: Call, record: RequestRecord): string => `${call.headers["x-tollgate-project"] ?? ""}|${record.context.clientHash ?? ""}`

export const make = Effect.gen(function*() {
  const router = yield* Router
  const failover = yield* Failover
  const pricing = yield* Pricing
  const telemetry = yield* Telemetry
  const cache = yield* Cache.Cache
  const coalesce = yield* Coalesce
  const items = yield* ResponseItems
  const circuit = yield* Circuit
  const latency = yield* Latency
  const budget = yield* Budget
  const clock = yield* Effect.clock
  const random = yield* Effect.random
  const config = yield* TollgateConfig
  // Optional: a graph without it (a test's own wiring) serves the same, uncounted.
  const observe = Option.match(yield* Effect.serviceOption(Metrics), { onNone: () => undefined, onSome: (m) => m.observe })
  const remember = Option.match(yield* Effect.serviceOption(Recent), { onNone: () => undefined, onSome: (r) => r.push })
  // What sees each booked row besides the ledger: one function, made once, so booking adds no closure.
  const booked: ((row: LedgerEvent) => void) | undefined = observe === undefined
    ? remember
    : remember === undefined
    ? observe
    : (row) => {
      observe(row)
      remember(row)
    }
  const catalogue = Catalogue.make(config.models.catalogue, config.models.quality)
  const fallbackPrice = config.budget.unpricedPrice
  const fallbackCostOf = config.budget.unpriced === "estimate" ? (usage: Usage) => costAtFallback(fallbackPrice, usage) : undefined

  /** Worst-case output when the client set no cap: the largest any of these targets may give. */
  const maxOutputOf = (reach: ReadonlyArray<Target>): number => {
    let most = 0
    for (const t of reach) most = Math.max(most, catalogue.lookup(t.model)?.maxOutput ?? DEFAULT_MAX_OUTPUT)
    return most
  }

  /** The models among these targets that have no price (the simulated provider's are free, not unpriced). */
  const unpricedOf = (reach: ReadonlyArray<Target>): ReadonlyArray<string> | undefined => {
    let unpriced: Array<string> | undefined
    for (const t of reach) {
      if (!isSimulated(t.provider.config) && pricing.priceOf(t.model) === undefined) (unpriced ??= []).push(t.model)
    }
    return unpriced
  }

  const route = routeWith(router, circuit, latency, random)

  /**
   * The request program. One generator function for every request (`fnUntraced`), not one made
   * per request: V8 gives each new generator function a prototype of its own, made into a
   * prototype map when its generator starts (three new hidden classes, and a dictionary
   * normalised and copied, on every request).
   */
  const run = Effect.fnUntraced(function*(inbound: Dialect, call: Call, state: RequestState) {
    const { record, book, ticket } = state
    const trail = record.trail
    const parsedOrError = inbound.parse(call.raw, call.headers)
    if (Either.isLeft(parsedOrError)) return yield* Effect.fail(parsedOrError.left)
    const refused = ClientHeaders.problemOf(call.headers)
    if (refused !== undefined) return yield* Effect.fail(refused)
    const request = parsedOrError.right
    state.parsed = request
    record.requestedModel = request.model
    record.stream = request.stream
    const decision = yield* route(request.facts, record)
    // A target skipped for its open breaker makes whoever serves instead a failover.
    trail.failover = decision.skipped.some((s) => s.code === "circuit_open")
    let targets = decision.targets
    let cascade = decision.cascade !== undefined && !request.stream ? decision.cascade : undefined

    let admission: Admission | undefined
    if (budget.active()) {
      // Whatever may serve it (failover), or be paid for on the way (a cascade's steps), is reserved.
      const reach = cascade === undefined ? targets : cascade.steps.slice(0, lastStepOf(cascade) + 1)
      admission = state.admission = yield* budget.admit({
        requestId: call.requestId,
        clientHash: record.context.clientHash,
        project: call.headers["x-tollgate-project"] ?? null,
        session: ClientHeaders.sessionOf(call.headers) ?? null,
        model: reach[0]!.model,
        alternatives: reach.length === 1 ? undefined : { models: reach.slice(1).map(modelOf), cumulative: cascade !== undefined },
        unpriced: unpricedOf(reach),
        estimatedInputTokens: request.facts.inputTokensAtMost,
        inputTokensUpperBound: request.facts.byteLength,
        maxOutputTokens: request.facts.maxTokens ?? maxOutputOf(reach),
        fingerprint: () => fingerprintOf(call.raw)
      })
      const from = admission.downgradedFrom
      if (from !== null) {
        record.downgradedFrom = from
        const to = admission.model
        const swap = (t: Target) => (t.model === from ? { ...t, model: to } : t)
        targets = Arr.map(targets, swap)
        if (cascade !== undefined) cascade = { ...cascade, steps: Arr.map(cascade.steps, swap) }
      }
    }

    // One wire per provider dialect, built when first needed.
    const wires = new Map<DialectId | undefined, Wire>()
    const wireOf = (target: Target): Wire | BadRequest => {
      const dialect = dialectOfTarget(inbound.id, target)
      if (dialect === undefined) return noBridge(inbound, dialectsOf(target.provider.config)[0]!)
      const known = wires.get(dialect)
      if (known !== undefined) return known
      const bridge = bridgeFor(inbound.id, dialect)
      const wire = bridge === undefined
        ? noBridge(inbound, dialect)
        : bridge(request, inbound.needsContext === true ? { items: items.scope(tenantOf(call, record)) } : undefined)
      if (!(wire instanceof BadRequest)) wires.set(dialect, wire)
      return wire
    }
    // Requests that cannot be put in a target's dialect fail here, before anything is sent.
    for (const target of cascade?.steps ?? targets) {
      const wire = wireOf(target)
      if (wire instanceof BadRequest) return yield* Effect.fail(wire)
    }
    const sendTo = (to: ReadonlyArray<Target>) =>
      failover.send({
        route: decision.route,
        targets: to,
        requestFor: (target: Target) => {
          const wire = wires.get(dialectOfTarget(inbound.id, target))!
          return { provider: target.provider, path: wire.path, body: wire.body(target.model), model: target.model, stream: request.stream, clientHeaders: call.headers }
        }
      }, trail)

    /** The answer to the client: a stream passed through as it comes, or the whole body. (A chain, not a generator: every request takes it.) */
    const respond = (response: UpstreamResponse): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
      const served = trail.target!
      const wire = wires.get(dialectOfTarget(inbound.id, served))!
      const headers = addTollgateHeaders(providerHeaders(response.headers, wire.passthrough, response.body._tag === "Stream"), record)
      if (admission !== undefined) for (const name in admission.headers) headers[name] = admission.headers[name]!
      if (wire.dropped !== undefined && wire.dropped.length > 0) headers["x-tollgate-dropped"] = wire.dropped.join(", ")
      if (response.body._tag === "Stream") {
        // A streamed body that is not an event stream is a whole answer too large to hold (Proxy/Whole.ts).
        const whole = !isEventStream(response.headers)
        if (whole && !wire.passthrough) {
          const error = new UpstreamInvalidAnswer({
            provider: served.provider.name,
            problem: "too_large",
            message: `Provider "${served.provider.name}" answered more than its limits.bufferBytes, too much to translate`
          })
          return Effect.zipRight(dropBody(response.body), refuse(inbound, record, book, served, error, estimate(request.estimateInput, "")))
        }
        const guard: StreamGuard | undefined = budget.enforceMidStream && admission !== undefined && admission.reservedUsd > 0
          ? {
            reservedUsd: admission.reservedUsd,
            costOf: (outputTokens) =>
              pricing.costOf(served.model, { ...ZERO_USAGE, inputTokens: request.facts.estimatedInputTokens(), outputTokens })
          }
          : undefined
        return streamAnswer({ clock, latency, durable: config.durable }, response.status, response.body, headers, whole ? wire.watchWhole() : wire.watch(), request, served, book, ticket, guard)
      }
      const answer = wire.read(response.body.bytes)
      if (!answer.valid) {
        // Cut off, or not JSON at all: not a success with no tokens. A 502 the client's SDK raises
        // (and retries), and a row with what the bytes that came would cost.
        const error = new UpstreamInvalidAnswer({
          provider: served.provider.name,
          problem: "invalid_json",
          message: `Provider "${served.provider.name}" answered ${response.status} with a body that is not valid JSON (${response.body.bytes.byteLength} bytes)`
        })
        return refuse(inbound, record, book, served, error, estimateFromBytes(request.estimateInput, response.body.bytes))
      }
      const answered = (usage: Usage) => {
        const ttfbMs = record.context.elapsedMs()
        return Effect.zipRight(
          latency.observe(targetName(served), ttfbMs),
          Effect.map(book({ status: response.status, errorType: null, usage, servedModel: answer.model ?? served.model, ttfbMs, aborted: false }), (row) => {
            headers["x-tollgate-cost"] = row.costUsd === null ? "unpriced" : row.costUsd.toFixed(8)
            return Response.bytes(answer.bytes, response.status, headers)
          })
        )
      }
      return answer.usage !== undefined
        ? answered(answer.usage)
        : Effect.flatMap(estimate(request.estimateInput, answer.completionText()), answered)
    }

    if (cascade !== undefined) {
      // Each step is sent alone; an answer showing a signal is paid for, noted, and the next
      // step is asked. The client gets the last answer; the row's cost is the sum.
      const last = lastStepOf(cascade)
      for (let i = 0;; i++) {
        const step = cascade.steps[i]!
        const sent = yield* Effect.either(sendTo([step]))
        if (i === last) return yield* respond(yield* sent)
        if (Either.isLeft(sent)) {
          if (!cascade.signals.error) return yield* Effect.fail(sent.left)
          record.cascadeSteps.push(`${step.model}:error:0`)
          continue
        }
        const response = sent.right
        if (response.body._tag === "Stream") return yield* respond(response)
        const answer = wires.get(dialectOfTarget(inbound.id, step))!.read(response.body.bytes)
        const signal = signalOf(inbound.cascadeReading(answer.bytes), cascade.signals)
        if (signal === undefined) return yield* respond({ ...response, body: response.body })
        const usage = answer.usage ?? (yield* estimate(request.estimateInput, answer.completionText()))
        const model = answer.model ?? step.model
        const cost = record.costOf(model, usage, step.provider.name)
        if (cost === null) record.cascadeUnpriced = true
        record.cascadeCostUsd += cost ?? 0
        record.cascadeSteps.push(`${model}:${signal}:${cost === null ? "unpriced" : cost.toFixed(8)}`)
      }
    }

    // Only answers that reach the client as the provider sent them are cached or shared, and only
    // in a dialect that says how to store them.
    const codec = inbound.cache
    const shareable = codec !== undefined && targets.every((t) => wires.get(dialectOfTarget(inbound.id, t))!.passthrough)
    const policy = shareable ? policyOf(cache.settings, call.headers, request.json, codec) : OFF
    record.cacheStatus = policy.status
    if (policy.status !== "lookup" && policy.status !== "refresh") return yield* respond(yield* sendTo(targets))
    const key = Cache.cacheKey({
      endpoint: codec!.byStream && request.stream ? `${inbound.endpoint} stream` : inbound.endpoint,
      body: request.json,
      tenant: tenantOf(call, record),
      target: targetName(targets[0])
    })
    if (policy.lookup) {
      const hit = yield* cache.get(key)
      if (Option.isSome(hit)) {
        record.cacheStatus = "hit"
        record.hitProvider = hit.value.provider
        return yield* serveHit(hit.value, codec!, record, request, book)
      }
    }
    record.cacheStatus = policy.status === "refresh" ? "refresh" : "miss"
    const send = Effect.map(sendTo(targets), (r) => ({ status: r.status, headers: r.headers, body: r.body, target: trail.target }))
    // Across replicas (`cache.redis`), a JSON request's flight first waits for, or leads, the
    // identical call of every replica (what it waits for is the stored answer: with the cache on);
    // a stream follows its own call live, and shares its answer once complete, as every answer is shared.
    const leases = policy.share && policy.lookup && !request.stream ? Option.getOrUndefined(cache.leases) : undefined
    const flight = coalesce.join(
      // Requests that may not share still go through a flight of their own (for storage).
      policy.share ? `${key}:${request.stream}` : `${key}:${call.requestId}`,
      leases === undefined ? send : Effect.zipRight(leases.lead(key), send),
      (landed) => {
        const answer = policy.store ? toCached(landed, codec!, cache.settings, pricing.costOf) : undefined
        return answer === undefined ? Effect.void : cache.set(key, answer)
      },
      ticket,
      leases?.release(key)
    )
    // Only a flight that leads across replicas is answered elsewhere, and only requests that may
    // lead share its key (`${key}:false` with a shared tier): the others' flights never fail so.
    const joined = leases === undefined
      ? yield* (flight as Effect.Effect<Joined, Exclude<Effect.Effect.Error<typeof flight>, Cache.AnsweredElsewhere>>)
      : yield* Effect.catchTag(flight, "AnsweredElsewhere", Effect.succeed)
    if (joined instanceof Cache.AnsweredElsewhere) {
      record.cacheStatus = "hit"
      record.hitProvider = joined.answer.provider
      return yield* serveHit(joined.answer, codec!, record, request, book)
    }
    if (!joined.leader) {
      record.cacheStatus = "coalesced"
      trail.target = joined.target
    }
    return yield* respond(joined.response)
  })

  const handle = (inbound: Dialect, call: Call) =>
    Effect.suspend(() => {
      // The ledger cannot be written (`database.onWriteFailure: block`): refused before anything
      // is sent, so nothing is spent that the ledger and the budget cannot see. No row: the
      // ledger is what fails; the refusals are counted.
      if (telemetry.refusing()) {
        return Effect.as(
          Metric.increment(requestsRefused),
          inbound.errorResponse(LEDGER_UNAVAILABLE, { "x-tollgate-request-id": call.requestId })
        )
      }
      const started = clock.unsafeCurrentTimeNanos()
      const clientKey = bearer(call.headers)
      const record = new RequestRecord({
        ts: clock.unsafeCurrentTimeMillis(),
        requestId: call.requestId,
        endpoint: inbound.endpoint,
        headers: call.headers,
        clientHash: clientKey === undefined ? null : telemetry.hashClient(clientKey),
        elapsedMs: () => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6,
        costOf: pricing.costOf,
        fallbackCostOf
      })
      const trail = record.trail
      /** The request's one ledger row, and its budget reservation settled to what it cost. */
      const book = (outcome: Outcome): Effect.Effect<LedgerEvent> => {
        const row = record.event(outcome)
        // Counted in the step that offers the row (the `map` that `as` would be): no step of its own.
        const recorded = booked === undefined
          ? Effect.as(telemetry.record(row), row)
          : Effect.map(telemetry.record(row), () => {
            booked(row)
            return row
          })
        const admission = state.admission
        return admission === undefined ? recorded : Effect.zipRight(admission.settle(row.costUsd), recorded)
      }
      // If this request leads a shared flight and leaves before it ends, the flight writes this
      // row when the call ends, with what it really cost (the others got it for free).
      const ticket: Ticket = {
        handedOver: false,
        bill: (outcome) =>
          Effect.gen(function*() {
            const answered = Option.isSome(outcome) ? yield* usageOfLanded(outcome.value, inbound, state.parsed?.estimateInput) : undefined
            yield* book({
              status: Option.isSome(outcome) ? outcome.value.head.status : 499,
              errorType: "client_aborted",
              usage: answered?.usage,
              servedModel: answered?.model ?? trail.target?.model ?? null,
              ttfbMs: null,
              aborted: true
            })
          })
      }

      const state: RequestState = { record, parsed: undefined, admission: undefined, book, ticket }
      const program = run(inbound, call, state)

      // Every way the program ends leaves its row: a failure it can name is answered and booked;
      // a client gone (interrupted) is booked as aborted, unless a shared flight took the bill; a
      // defect is booked as a 500 and passes on to the routes, which log it and answer. One
      // handler in one uninterruptible region (catchAll inside onInterrupt was two frames and two
      // more steps on every request).
      return Effect.uninterruptibleMask((restore) =>
        Effect.matchCauseEffect(restore(program), {
          onSuccess: Effect.succeed,
          onFailure: (cause) => {
            if (Cause.isInterruptedOnly(cause)) {
              const interrupted = Effect.failCause(Cause.stripFailures(cause))
              return ticket.handedOver
                ? interrupted
                : Effect.zipRight(
                  book({ status: 499, errorType: "client_aborted", usage: undefined, servedModel: null, ttfbMs: null, aborted: true }),
                  interrupted
                )
            }
            const failure = Cause.isDie(cause) ? Option.none() : Cause.failureOption(cause)
            if (Option.isNone(failure)) {
              // A bug: the routes log it and answer 500, and the row says so too (failures
              // beside a defect become defects, as `catchAll` would leave them).
              return Effect.zipRight(
                book({ status: 500, errorType: "internal_error", usage: undefined, servedModel: null, ttfbMs: null, aborted: false }),
                Effect.failCause(Cause.flatMap(cause, (error) => Cause.die(error)))
              )
            }
            const error = failure.value
            return Effect.as(
              book({ status: statusOf(error), errorType: errorTypeOf(error), usage: undefined, servedModel: null, ttfbMs: null, aborted: false }),
              inbound.errorResponse(error, addTollgateHeaders({}, record))
            )
          }
        })
      )
    })

  // One handler per served dialect, made once (not a closure per request).
  const handlers = new Map<Dialect, (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse>>()
  for (const dialect of SERVED) handlers.set(dialect, (call) => handle(dialect, call))
  const serve = (dialect: Dialect) => handlers.get(dialect) ?? ((call: Call) => handle(dialect, call))
  return Proxy.of({
    serve,
    chatCompletions: serve(OpenAiChat),
    messages: serve(AnthropicMessages),
    countTokens: countTokens(router, failover),
    storedResponse: StoredResponses.make({
      providers: config.providers,
      router,
      failover,
      telemetry,
      clock,
      costOf: pricing.costOf,
      fallbackCostOf
    })
  })
})

/** The request program on the services it reads; `Services.ts` wires them (the composition root). */
export const layerWithoutDependencies: Layer.Layer<
  Proxy,
  never,
  TollgateConfig | Router | Failover | Pricing | Telemetry | Cache.Cache | Coalesce | Circuit | Latency | Budget | ResponseItems
> = Layer.effect(
  Proxy,
  make
)
