/**
 * OpenTelemetry, opted into with the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (and
 * `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, the sampler's and the batch processor's). Each request becomes one
 * span, made from its ledger row when the row is booked (`OtlpSpans`): the request program itself
 * carries no tracing. The rows wait in a bounded buffer and go out in batches from a fiber of the
 * layer's scope, as the specification's batch span processor sends them; Effect's metrics
 * (requests, tokens, cost, latency) go out with `@effect/opentelemetry`'s exporter. Never a prompt,
 * a completion or a key: a span holds what the row holds.
 *
 * `@effect/opentelemetry` is an optional peer, imported only when the variable is set: npm would
 * install the OpenTelemetry SDK beside it (its own peers), which tollgate never uses. The `tollgate`
 * command has it bundled.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type { LedgerEvent } from "../Domain/LedgerEvent.js"
import * as Logging from "../Logging.js"
import { Telemetry } from "../Telemetry.js"
import { failureReasonOf, retryAfterMs } from "../Upstream/Transport.js"
import { batch, ID_BYTES, type KeyValue, type Protocol } from "./OtlpSpans.js"

export interface OtelSettings {
  /** The collector's base URL; traces go to `/v1/traces`, metrics to `/v1/metrics`. */
  readonly endpoint: string
  readonly headers: Readonly<Record<string, string>>
  readonly serviceName: string
  /** `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the specification's default) or `http/json`. */
  readonly protocol: Protocol
  /** The share of requests exported as spans, 0 to 1 (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`). */
  readonly sampleRatio: number
  /** The batch span processor's `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. */
  readonly scheduleDelayMs: number
  readonly maxQueueSize: number
  readonly maxExportBatchSize: number
  /** `OTEL_EXPORTER_OTLP_TIMEOUT` (ms): one export's limit. */
  readonly timeoutMs: number
}

/**
 * The specification's sampler variables, as far as a span with no parent needs them:
 * `always_on` (the default), `always_off`, `traceidratio` with its ratio in `_ARG`, and their
 * `parentbased_` forms (every tollgate span is a root). Anything else is refused at start.
 */
export const sampleRatioOf = (sampler: string, arg: string | undefined): number | { readonly problem: string } => {
  const name = sampler.trim().toLowerCase().replace(/^parentbased_/, "")
  if (name === "" || name === "always_on") return 1
  if (name === "always_off") return 0
  if (name === "traceidratio") {
    const ratio = arg === undefined || arg.trim() === "" ? 1 : Number(arg)
    return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1
      ? ratio
      : { problem: `OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1; got "${arg}"` }
  }
  return { problem: `OTEL_TRACES_SAMPLER: expected always_on, always_off, traceidratio or their parentbased_ forms; got "${sampler}"` }
}

/** `k1=v1,k2=v2`, values URL-encoded, as the OTLP exporter specification writes headers. */
export const parseHeaders = (text: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=")
    if (at <= 0) continue
    out[decodeURIComponent(pair.slice(0, at).trim()).toLowerCase()] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return out
}

/** `OTEL_EXPORTER_OTLP_PROTOCOL`; gRPC is not spoken (the same collector takes HTTP on its port 4318). */
export const protocolOf = (text: string): Protocol | { readonly problem: string } => {
  const name = text.trim().toLowerCase()
  if (name === "" || name === "http/protobuf") return "http/protobuf"
  if (name === "http/json") return "http/json"
  return { problem: `OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json; got "${text}"` }
}

/** OpenTelemetry is on: an endpoint is set. */
export const enabledFromEnv: Effect.Effect<boolean> = Effect.orDie(
  Effect.map(Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")), Option.isSome)
)

/** A whole number above 0 from `text`, or the default and a problem to say (as the specification's SDKs do). */
export const positiveOf = (name: string, text: string, fallback: number): { readonly value: number; readonly problem?: string } => {
  if (text.trim() === "") return { value: fallback }
  const value = Number(text)
  return Number.isSafeInteger(value) && value > 0
    ? { value }
    : { value: fallback, problem: `${name}: expected a whole number above 0; got "${text}"; using ${fallback}` }
}

const BATCH_DEFAULTS = {
  OTEL_BSP_SCHEDULE_DELAY: 5000,
  OTEL_BSP_MAX_QUEUE_SIZE: 2048,
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 512,
  OTEL_EXPORTER_OTLP_TIMEOUT: 10_000
} as const

/**
 * The settings from the environment, or none when no endpoint is set (OpenTelemetry off). As the
 * specification's SDKs do, an unknown sampler or protocol is said and the default used.
 */
export const settingsFromEnv: Effect.Effect<Option.Option<OtelSettings>> = Effect.orDie(
  Effect.flatMap(
    Config.all({
      endpoint: Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")),
      headers: Config.withDefault(Config.string("OTEL_EXPORTER_OTLP_HEADERS"), ""),
      protocol: Config.withDefault(Config.string("OTEL_EXPORTER_OTLP_PROTOCOL"), ""),
      serviceName: Config.withDefault(Config.nonEmptyString("OTEL_SERVICE_NAME"), "tollgate"),
      sampler: Config.withDefault(Config.string("OTEL_TRACES_SAMPLER"), ""),
      samplerArg: Config.option(Config.string("OTEL_TRACES_SAMPLER_ARG")),
      scheduleDelay: Config.withDefault(Config.string("OTEL_BSP_SCHEDULE_DELAY"), ""),
      queueSize: Config.withDefault(Config.string("OTEL_BSP_MAX_QUEUE_SIZE"), ""),
      batchSize: Config.withDefault(Config.string("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), ""),
      timeout: Config.withDefault(Config.string("OTEL_EXPORTER_OTLP_TIMEOUT"), "")
    }),
    ({ batchSize, endpoint, headers, protocol, queueSize, sampler, samplerArg, scheduleDelay, serviceName, timeout }) =>
      Effect.gen(function*() {
        if (Option.isNone(endpoint)) return Option.none()
        const number = (name: keyof typeof BATCH_DEFAULTS, text: string) =>
          Effect.gen(function*() {
            const read = positiveOf(name, text, BATCH_DEFAULTS[name])
            if (read.problem !== undefined) yield* Effect.logWarning(read.problem)
            return read.value
          })
        const scheduleDelayMs = yield* number("OTEL_BSP_SCHEDULE_DELAY", scheduleDelay)
        const maxQueueSize = yield* number("OTEL_BSP_MAX_QUEUE_SIZE", queueSize)
        const maxExportBatchSize = yield* number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batchSize)
        const timeoutMs = yield* number("OTEL_EXPORTER_OTLP_TIMEOUT", timeout)
        let sampleRatio = sampleRatioOf(sampler, Option.getOrUndefined(samplerArg))
        if (typeof sampleRatio !== "number") {
          yield* Effect.logWarning(`${sampleRatio.problem}; exporting every request's span`)
          sampleRatio = 1
        }
        let chosen = protocolOf(protocol)
        if (typeof chosen !== "string") {
          yield* Effect.logWarning(`${chosen.problem}; sending http/protobuf`)
          chosen = "http/protobuf"
        }
        return Option.some({
          endpoint: endpoint.value.replace(/\/+$/, ""),
          headers: parseHeaders(headers),
          serviceName,
          protocol: chosen,
          sampleRatio,
          scheduleDelayMs,
          maxQueueSize,
          // The specification's rule: a batch is never larger than the queue.
          maxExportBatchSize: Math.min(maxExportBatchSize, maxQueueSize),
          timeoutMs
        })
      })
  )
)

/** One export's retries: transient failures, again after 1 s doubling with jitter, a `Retry-After` setting a floor. */
const exportRetries = Schedule.exponential("1 second").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.identity<unknown>()),
  Schedule.modifyDelayEffect(([, error], delay) =>
    HttpClientError.isHttpClientError(error) && error._tag === "ResponseError"
      ? Effect.map(Clock.currentTimeMillis, (now) => Duration.max(delay, Duration.millis(retryAfterMs(error.response.headers, now) ?? 0)))
      : Effect.succeed(delay)
  )
)

/** Fills `bytes` from the platform's random source (which gives at most 64 KiB a call). */
const randomIds = (count: number): Uint8Array => {
  const bytes = new Uint8Array(count * ID_BYTES)
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536))
  return bytes
}

/**
 * The span exporter: `push` keeps a booked row (sampled), and nothing more on the request's
 * fiber; a fiber of the scope is woken when a batch's worth of rows waits, writes them into the
 * batch (`OtlpSpans`) and sends it, and sends whatever waits every `scheduleDelayMs`, one export
 * at a time, and what is left when the scope closes. At most `maxQueueSize` spans wait; past that
 * a span is dropped. A collector that is down or too slow costs spans, never requests: the log
 * says once when spans start being dropped and once, with the count, when they go out again.
 *
 * Why a batch's worth: a wake of the fiber costs more than writing the rows it wakes for. Woken
 * for every 64 rows, or writing each 64 on the request's fiber, a saturated tollgate answered
 * fewer requests (docs/performance.md, "What a span costs, taken apart").
 */
export const makeSpanExporter = (settings: OtelSettings, resource: ReadonlyArray<KeyValue>) =>
  Effect.gen(function*() {
    const { maxExportBatchSize: batchSize, maxQueueSize, protocol, sampleRatio } = settings
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.filterStatusOk,
      HttpClient.transformResponse(Effect.timeout(Duration.millis(settings.timeoutMs))),
      HttpClient.retryTransient({ schedule: exportRetries, times: 3 })
    )
    const request = HttpClientRequest.post(`${settings.endpoint}/v1/traces`).pipe(HttpClientRequest.setHeaders(settings.headers))
    const contentType = protocol === "http/json" ? "application/json" : "application/x-protobuf"
    // One batch, so one buffer: written and sent by the fiber, one export at a time.
    const building = batch(protocol, resource, "tollgate")
    let pending: Array<LedgerEvent> = []
    /** A batch's worth waits, and the fiber has been told. */
    let told = false
    /** Refused by `push` (too many waiting) and lost in failed exports, since the last report; and since the log said so. */
    let overflowed = 0
    let failedExport: string | undefined
    let exported = false
    let dropped = 0
    const batchFull = yield* Queue.sliding<void>(1)
    const oneAtATime = yield* Effect.makeSemaphore(1)
    const logs = Logging.transitions(
      (reason: string) =>
        Logging.event("warning", "otlp_spans_dropped", `OpenTelemetry: spans are being dropped (${reason}); requests are not affected`, {
          endpoint: settings.endpoint
        }),
      Effect.suspend(() =>
        Logging.event("info", "otlp_spans_exported", `OpenTelemetry: spans go out again; ${dropped} were dropped`, {
          endpoint: settings.endpoint,
          dropped
        })
      ).pipe(Effect.ensuring(Effect.sync(() => (dropped = 0))))
    )
    /** After each round of exports: dropping (the log says once why), or sending again (once, with the count). */
    const report = Effect.suspend(() => {
      const reason = failedExport !== undefined
        ? `the collector did not take an export: ${failedExport}`
        : overflowed > 0
        ? `more than ${maxQueueSize} waiting, OTEL_BSP_MAX_QUEUE_SIZE: the collector is slower than the requests`
        : undefined
      const sent = exported
      dropped += overflowed
      overflowed = 0
      failedExport = undefined
      exported = false
      return reason !== undefined ? logs.lost(reason) : sent ? logs.back : Effect.void
    })

    /** Sends the batch built so far (its spans dropped, and said, if the collector never takes it). */
    const send = Effect.suspend(() => {
      const spans = building.size()
      const body = HttpBody.uint8Array(building.finish(), contentType)
      return client.execute(HttpClientRequest.setBody(request, body)).pipe(
        Effect.flatMap((response) => response.arrayBuffer),
        Effect.zipRight(Effect.sync(() => (exported = true))),
        Effect.catchAllCause((cause) =>
          Effect.sync(() => {
            dropped += spans
            failedExport = describe(cause)
          })
        )
      )
    })

    /** Sends each full batch, writing what waits first; and the rest too when `all`. */
    const drain = (all: boolean): Effect.Effect<void> =>
      oneAtATime.withPermits(1)(Effect.suspend(() => {
        told = false
        const room = batchSize - building.size()
        const rows = pending.length <= room ? pending : pending.slice(0, room)
        pending = pending.length <= room ? [] : pending.slice(room)
        building.add(rows, randomIds(rows.length))
        const full = building.size() >= batchSize
        return full || (all && building.size() > 0) ? Effect.as(send, true) : Effect.succeed(false)
      })).pipe(Effect.flatMap((sent) => (sent && (pending.length > 0 || all) ? drain(all) : Effect.void)))

    yield* Queue.take(batchFull).pipe(
      Effect.timeoutOption(Duration.millis(settings.scheduleDelayMs)),
      Effect.flatMap((woken) => drain(Option.isNone(woken))),
      Effect.zipRight(report),
      Effect.forever,
      Effect.forkScoped
    )
    // Added after the fork, so it runs first when the scope closes: the export in flight finishes, then the rest goes.
    yield* Effect.addFinalizer(() => Effect.zipRight(drain(true), report).pipe(Effect.timeoutOption("5 seconds")))

    return {
      push: (row: LedgerEvent): void => {
        if (sampleRatio < 1 && !(sampleRatio > 0 && Math.random() < sampleRatio)) return
        if (pending.length + building.size() >= maxQueueSize) {
          overflowed++
          return
        }
        pending.push(row)
        if (!told && pending.length >= batchSize) {
          told = true
          Queue.unsafeOffer(batchFull, undefined)
        }
      }
    }
  })

/** A failed export in a few words: the HTTP status or the socket's error code, never the request (its headers may hold a key). */
const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (HttpClientError.isHttpClientError(error)) {
    return error._tag === "ResponseError" ? `status ${error.response.status}` : failureReasonOf(error.cause, error.reason)
  }
  return Cause.isTimeoutException(error) ? "timed out" : "failed"
}

/** The exporters' modules, or a defect that says what to install (an app using tollgate as a library without them). */
const loadExporters = Effect.tryPromise({
  try: () =>
    Promise.all([
      import("@effect/opentelemetry/OtlpMetrics"),
      import("@effect/opentelemetry/OtlpResource"),
      import("@effect/opentelemetry/OtlpSerialization"),
      // undici's request: fetch spent more CPU sending an export than encoding it (docs/performance.md).
      import("@effect/platform-node/NodeHttpClient")
    ]),
  catch: (cause) =>
    new Error(
      `OTEL_EXPORTER_OTLP_ENDPOINT is set, but @effect/opentelemetry could not be loaded (npm install @effect/opentelemetry@^0.64.1): ${String(cause)}`
    )
}).pipe(Effect.orDie)

/**
 * The ledger writer, its rows also sent as spans when OpenTelemetry is on; the writer as it is
 * when it is off (nothing added on the request's path then). The exporters run in the layer's
 * scope and send what they hold when it closes.
 */
export const withOtel = <E, R>(writer: Layer.Layer<Telemetry, E, R>): Layer.Layer<Telemetry, E, R> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const found = yield* settingsFromEnv
      if (Option.isNone(found)) return writer
      const settings = found.value
      const [OtlpMetrics, OtlpResource, OtlpSerialization, NodeHttpClient] = yield* loadExporters
      const exporters = Layer.scoped(
        Telemetry,
        Effect.gen(function*() {
          const resource = yield* OtlpResource.fromConfig({ serviceName: settings.serviceName })
          yield* OtlpMetrics.make({ url: `${settings.endpoint}/v1/metrics`, headers: settings.headers, resource: { serviceName: settings.serviceName } })
          const spans = yield* makeSpanExporter(settings, resource.attributes)
          const telemetry = yield* Telemetry
          return Telemetry.of({
            ...telemetry,
            record: (event) => {
              // At the call, not in the effect: a row is recorded once, and this adds no step to the request.
              spans.push(event)
              return telemetry.record(event)
            }
          })
        })
      )
      return exporters.pipe(
        Layer.provide(writer),
        Layer.provide(Layer.merge(NodeHttpClient.layerUndici, settings.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf))
      )
    })
  )
