/**
 * OpenTelemetry, opted into with the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (and
 * `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`). Each request becomes one span following the
 * GenAI semantic conventions (`{operation} {model}`, `gen_ai.*` attributes, tollgate's own as
 * `tollgate.*`), made from its ledger row when the row is booked, with the request's own start and
 * end times: the request program itself carries no tracing. Effect's metrics (requests, tokens,
 * cost, latency) go out too. Both over OTLP/HTTP JSON with `@effect/opentelemetry`'s exporters (no
 * OpenTelemetry SDK). Never a prompt, a completion or a key: a span holds what the row holds.
 *
 * `@effect/opentelemetry` is an optional peer, imported only when the variable is set: npm would
 * install the OpenTelemetry SDK beside it (its own peers), which tollgate never uses. The `tollgate`
 * command has it bundled.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { LedgerEvent } from "../Domain/LedgerEvent.js"
import { Telemetry } from "../Telemetry.js"

export interface OtelSettings {
  /** The collector's base URL; traces go to `/v1/traces`, metrics to `/v1/metrics`. */
  readonly endpoint: string
  readonly headers: Readonly<Record<string, string>>
  readonly serviceName: string
  /** The share of requests exported as spans, 0 to 1 (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`). */
  readonly sampleRatio: number
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

/** OpenTelemetry is on: an endpoint is set. */
export const enabledFromEnv: Effect.Effect<boolean> = Effect.orDie(
  Effect.map(Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")), Option.isSome)
)

/** The settings from the environment, or none when no endpoint is set (OpenTelemetry off). */
export const settingsFromEnv: Effect.Effect<Option.Option<OtelSettings>> = Effect.orDie(
  Effect.flatMap(
    Config.all({
      endpoint: Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")),
      headers: Config.withDefault(Config.string("OTEL_EXPORTER_OTLP_HEADERS"), ""),
      serviceName: Config.withDefault(Config.nonEmptyString("OTEL_SERVICE_NAME"), "tollgate"),
      sampler: Config.withDefault(Config.string("OTEL_TRACES_SAMPLER"), ""),
      samplerArg: Config.option(Config.string("OTEL_TRACES_SAMPLER_ARG"))
    }),
    ({ endpoint, headers, sampler, samplerArg, serviceName }) => {
      if (Option.isNone(endpoint)) return Effect.succeed(Option.none())
      const ratio = sampleRatioOf(sampler, Option.getOrUndefined(samplerArg))
      const settings = (sampleRatio: number) =>
        Option.some({ endpoint: endpoint.value.replace(/\/+$/, ""), headers: parseHeaders(headers), serviceName, sampleRatio })
      // As the specification's SDKs do: an unknown sampler is said, and the default used.
      return typeof ratio === "number"
        ? Effect.succeed(settings(ratio))
        : Effect.as(Effect.logWarning(`${ratio.problem}; exporting every request's span`), settings(1))
    }
  )
)

/** The GenAI operation of an endpoint (`gen_ai.operation.name`). */
const operationOf = (endpoint: string): string =>
  endpoint.endsWith("/embeddings") ? "embeddings" : endpoint.endsWith("/completions") && !endpoint.endsWith("/chat/completions") ? "text_completion" : "chat"

const NANOS_PER_MS = 1_000_000n

/** One request's span, from its row: its own start and end, the GenAI attributes, tollgate's. */
export const spanOf = (tracer: Tracer.Tracer, row: LedgerEvent): void => {
  const operation = operationOf(row.endpoint)
  const model = row.requestedModel ?? row.servedModel ?? "unknown"
  const start = BigInt(Math.round(row.ts)) * NANOS_PER_MS
  const span = tracer.span(`${operation} ${model}`, Option.none(), Context.empty(), [], start, "client")
  const set = (key: string, value: unknown) => {
    if (value !== null && value !== undefined) span.attribute(key, value)
  }
  set("gen_ai.operation.name", operation)
  set("gen_ai.provider.name", row.provider)
  set("gen_ai.request.model", row.requestedModel)
  set("gen_ai.response.model", row.servedModel)
  set("gen_ai.usage.input_tokens", row.inputTokens)
  set("gen_ai.usage.output_tokens", row.outputTokens)
  set("gen_ai.usage.cache_read.input_tokens", row.cachedInputTokens)
  set("gen_ai.usage.cache_creation.input_tokens", row.cacheWriteTokens)
  set("gen_ai.usage.reasoning.output_tokens", row.reasoningTokens)
  set("gen_ai.response.time_to_first_chunk", row.ttfbMs === null ? null : row.ttfbMs / 1000)
  set("http.response.status_code", row.status)
  set("error.type", row.errorType)
  set("tollgate.request_id", row.requestId)
  set("tollgate.endpoint", row.endpoint)
  set("tollgate.route", row.route)
  set("tollgate.attempts", row.attempts)
  set("tollgate.failover", row.failover)
  set("tollgate.cost_usd", row.costUsd)
  set("tollgate.cache", row.cacheStatus)
  set("tollgate.stream", row.stream)
  set("tollgate.aborted", row.aborted)
  set("tollgate.usage_source", row.usageSource)
  const end = start + BigInt(Math.round(row.latencyMs * 1000)) * 1000n
  span.end(end, row.status >= 400 ? Exit.fail(row.errorType ?? `status ${row.status}`) : Exit.void)
}

/** The exporters' modules, or a defect that says what to install (an app using tollgate as a library without them). */
const loadExporters = Effect.tryPromise({
  try: () =>
    Promise.all([
      import("@effect/opentelemetry/OtlpTracer"),
      import("@effect/opentelemetry/OtlpMetrics"),
      import("@effect/opentelemetry/OtlpSerialization")
    ]),
  catch: (cause) =>
    new Error(
      `OTEL_EXPORTER_OTLP_ENDPOINT is set, but @effect/opentelemetry could not be loaded (npm install @effect/opentelemetry@^0.64.1): ${String(cause)}`
    )
}).pipe(Effect.orDie)

/**
 * The ledger writer, its rows also sent as spans when OpenTelemetry is on; the writer as it is
 * when it is off (nothing added on the request's path then). The exporters run in the layer's
 * scope and flush what they hold when it closes.
 */
export const withOtel = <E, R>(writer: Layer.Layer<Telemetry, E, R>): Layer.Layer<Telemetry, E, R> =>
  Layer.unwrapScoped(
    Effect.map(settingsFromEnv, (settings) => {
      if (Option.isNone(settings)) return writer
      const { endpoint, headers, sampleRatio, serviceName } = settings.value
      const resource = { serviceName }
      const exporters = Effect.gen(function*() {
        const [OtlpTracer, OtlpMetrics, OtlpSerialization] = yield* loadExporters
        return yield* Effect.gen(function*() {
          const tracer = yield* OtlpTracer.make({ url: `${endpoint}/v1/traces`, headers, resource })
          yield* OtlpMetrics.make({ url: `${endpoint}/v1/metrics`, headers, resource })
          return tracer
        }).pipe(Effect.provide(Layer.merge(FetchHttpClient.layer, OtlpSerialization.layerJson)))
      })
      return Layer.scoped(
        Telemetry,
        Effect.gen(function*() {
          const tracer = yield* exporters
          const telemetry = yield* Telemetry
          return Telemetry.of({
            ...telemetry,
            record: (event) => {
              if (sampleRatio >= 1 || (sampleRatio > 0 && Math.random() < sampleRatio)) spanOf(tracer, event)
              return telemetry.record(event)
            }
          })
        })
      ).pipe(Layer.provide(writer))
    })
  )
