/**
 * OpenTelemetry over real sockets: with `OTEL_EXPORTER_OTLP_ENDPOINT` (here given through Effect's
 * config provider, as the environment would), each request through tollgate reaches a fake OTLP
 * collector on 127.0.0.1 as one span with the GenAI attributes and the request's own times, in
 * protobuf (the default) or JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`); nothing of the prompt
 * or the answer. Without the variable, nothing is exported.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Layer, Option } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import OpenAI from "openai"
import { parseHeaders, positiveOf, protocolOf, sampleRatioOf, settingsFromEnv } from "../../src/Telemetry/Otel.js"
import { attributesOf, readTraces, spansOf } from "../support/Otlp.js"
import * as Tollgate from "../support/Tollgate.js"

interface Collected {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  /** The bytes as sent. */
  readonly raw: Buffer
  /** A traces post decoded (either encoding); a JSON metrics post parsed; else undefined. */
  readonly body: any
}

/** A collector that takes OTLP/HTTP posts; `firstTrace` completes with the first traces post. */
const collector = Effect.gen(function*() {
  const firstTrace = yield* Deferred.make<Collected>()
  const posts: Array<Collected> = []
  const server = yield* Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const s = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const raw = Buffer.concat(chunks)
          const contentType = req.headers["content-type"]
          const body = req.url === "/v1/traces"
            ? readTraces(contentType, raw)
            : contentType?.startsWith("application/json") ? JSON.parse(raw.toString("utf8")) : undefined
          const post = { url: req.url ?? "", headers: req.headers, raw, body }
          posts.push(post)
          if (post.url === "/v1/traces") Deferred.unsafeDone(firstTrace, Effect.succeed(post))
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) => Effect.async<void>((resume) => {
      s.closeAllConnections()
      s.close(() => resume(Effect.void))
    })
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, firstTrace, posts }
})

describe("OpenTelemetry", () => {
  it("OTLP headers are read as the specification writes them", () => {
    assert.deepStrictEqual(parseHeaders("Authorization=Bearer%20abc, x-team=ops,broken"), { authorization: "Bearer abc", "x-team": "ops" })
  })

  it("the sampler variables: always_on (default), always_off, traceidratio and parentbased_ forms; others refused", () => {
    assert.strictEqual(sampleRatioOf("", undefined), 1)
    assert.strictEqual(sampleRatioOf("always_off", undefined), 0)
    assert.strictEqual(sampleRatioOf("parentbased_traceidratio", "0.25"), 0.25)
    assert.strictEqual(sampleRatioOf("TraceIdRatio", undefined), 1)
    assert.deepStrictEqual(sampleRatioOf("traceidratio", "2"), { problem: `OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1; got "2"` })
    assert.include((sampleRatioOf("jaeger_remote", undefined) as { problem: string }).problem, "OTEL_TRACES_SAMPLER: expected")
  })

  it("the batch processor's numbers: a bad one is said and its default used", () => {
    assert.deepStrictEqual(positiveOf("OTEL_BSP_SCHEDULE_DELAY", "", 5000), { value: 5000 })
    assert.deepStrictEqual(positiveOf("OTEL_BSP_SCHEDULE_DELAY", " 250 ", 5000), { value: 250 })
    for (const bad of ["0", "-3", "1.5", "soon"]) {
      const read = positiveOf("OTEL_BSP_MAX_QUEUE_SIZE", bad, 2048)
      assert.strictEqual(read.value, 2048)
      assert.include(read.problem, `OTEL_BSP_MAX_QUEUE_SIZE: expected a whole number above 0; got "${bad}"`)
    }
  })

  it.effect("settings: defaults of the specification; bad values warned about, never fatal; a batch no larger than the queue", () =>
    Effect.gen(function*() {
      const read = (entries: ReadonlyArray<readonly [string, string]>) =>
        settingsFromEnv.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))))
      assert.isTrue(Option.isNone(yield* read([])))
      const defaults = Option.getOrThrow(yield* read([["OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"]]))
      assert.deepInclude(defaults, {
        endpoint: "http://collector:4318", protocol: "http/protobuf", sampleRatio: 1, scheduleDelayMs: 5000, maxQueueSize: 2048, maxExportBatchSize: 512, timeoutMs: 10_000
      })
      const odd = Option.getOrThrow(yield* read([
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"],
        ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"],
        ["OTEL_BSP_SCHEDULE_DELAY", "soon"],
        ["OTEL_BSP_MAX_QUEUE_SIZE", "100"]
      ]))
      assert.deepInclude(odd, { protocol: "http/protobuf", scheduleDelayMs: 5000, maxQueueSize: 100, maxExportBatchSize: 100 })
    }))

  it("the protocol variable: http/protobuf (default) or http/json; grpc refused", () => {
    assert.strictEqual(protocolOf(""), "http/protobuf")
    assert.strictEqual(protocolOf("HTTP/JSON"), "http/json")
    assert.include((protocolOf("grpc") as { problem: string }).problem, "expected http/protobuf or http/json")
  })

  it.scopedLive("OTEL_TRACES_SAMPLER=always_off: no span, the metrics still go out", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const env = ConfigProvider.fromMap(new Map([
        ["OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url],
        ["OTEL_TRACES_SAMPLER", "always_off"]
      ]))
      yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(
            Tollgate.layer({ providers: { sim: { kind: "mock" } } }).pipe(Layer.provide(Layer.setConfigProvider(env)))
          )
          const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)
          const client = new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })
          for (let i = 0; i < 3; i++) {
            yield* Effect.promise(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }))
          }
        })
      )
      // The scope closed: the exporters flushed what they held.
      const spans = otlp.posts.filter((p) => p.url === "/v1/traces").flatMap((p) => spansOf(p.body))
      assert.deepStrictEqual(spans, [])
      assert.isTrue(otlp.posts.some((p) => p.url === "/v1/metrics"))
    }))

  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it.scopedLive(`${protocol}: each request is one span with the GenAI attributes, sent when tollgate stops; no prompt, no answer, no key`, () =>
      Effect.gen(function*() {
        const otlp = yield* collector
        const env = ConfigProvider.fromMap(new Map([
          ["OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url],
          ["OTEL_EXPORTER_OTLP_HEADERS", "x-otlp-key=secret%3D1"],
          ["OTEL_SERVICE_NAME", "tollgate-test"],
          ...(protocol === "http/json" ? [["OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"] as const] : [])
        ]))
        const sent = yield* Effect.scoped(
          Effect.gen(function*() {
            const context = yield* Layer.build(
              Tollgate.layer({ providers: { sim: { kind: "mock", reply: "the secret answer", failStatus: 400, failEvery: 3 } } }).pipe(
                Layer.provide(Layer.setConfigProvider(env))
              )
            )
            const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)
            const client = new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })
            const ids: Array<{ readonly id: string; readonly status: number }> = []
            for (let i = 0; i < 6; i++) {
              const { response } = yield* Effect.promise(() =>
                client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `the secret prompt ${i}` }] }).withResponse()
                  .catch((error: InstanceType<typeof OpenAI.APIError>) => ({ response: { headers: error.headers!, status: error.status ?? 0 } }))
              )
              ids.push({ id: response.headers.get("x-tollgate-request-id")!, status: response.status })
            }
            return ids
          })
        )
        // The scope closed: the exporter sent what it held.
        const post = yield* Deferred.await(otlp.firstTrace).pipe(Effect.timeout("20 seconds"))
        assert.strictEqual(post.headers["x-otlp-key"], "secret=1")
        assert.strictEqual(post.headers["content-type"], protocol === "http/json" ? "application/json" : "application/x-protobuf")
        assert.deepInclude(post.body.resourceSpans[0].resource.attributes, { key: "service.name", value: { stringValue: "tollgate-test" } })
        const spans = otlp.posts.filter((p) => p.url === "/v1/traces").flatMap((p) => spansOf(p.body))
        // One span per request, each with its request's id: the failed ones too.
        assert.sameMembers(spans.map((s) => attributesOf(s)["tollgate.request_id"]), sent.map((s) => s.id))
        assert.isAbove(sent.filter((s) => s.status === 400).length, 0)
        for (const { id, status } of sent) {
          const span = spans.find((s) => attributesOf(s)["tollgate.request_id"] === id)
          const attributes = attributesOf(span)
          assert.strictEqual(span.name, "chat gpt-4o-mini")
          assert.strictEqual(attributes["http.response.status_code"], status)
          assert.isTrue(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano))
          assert.isTrue(/^[0-9a-f]{32}$/.test(span.traceId) && /^[0-9a-f]{16}$/.test(span.spanId), span.traceId)
          if (status === 200) {
            assert.deepInclude(attributes, {
              "gen_ai.operation.name": "chat",
              "gen_ai.provider.name": "sim",
              "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.response.model": "gpt-4o-mini",
              "tollgate.endpoint": "/v1/chat/completions"
            })
            assert.isAbove(Number(attributes["gen_ai.usage.input_tokens"]), 0)
            assert.isAbove(Number(attributes["gen_ai.usage.output_tokens"]), 0)
          } else {
            assert.strictEqual(span.status.code, 2)
            assert.isString(attributes["error.type"])
          }
        }
        assert.strictEqual(new Set(spans.map((s) => s.traceId)).size, spans.length, "each span its own trace")
        // Effect's metrics went out too, in the same encoding.
        const metrics = otlp.posts.filter((p) => p.url === "/v1/metrics")
        assert.isAbove(metrics.length, 0, "a metrics export")
        assert.strictEqual(metrics[0]!.headers["content-type"], post.headers["content-type"])
        const everything = Buffer.concat(otlp.posts.map((p) => p.raw)).toString("utf8")
        assert.include(everything, "gpt-4o-mini")
        assert.notInclude(everything, "the secret prompt")
        assert.notInclude(everything, "the secret answer")
        assert.notInclude(everything, "sk-client")
      }))
  }
})
