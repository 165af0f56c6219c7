/**
 * OpenTelemetry over real sockets: with `OTEL_EXPORTER_OTLP_ENDPOINT` (here given through Effect's
 * config provider, as the environment would), a request through tollgate reaches a fake OTLP
 * collector on 127.0.0.1 as one span with the GenAI attributes and the request's own times;
 * nothing of the prompt or the answer. Without the variable, nothing is exported.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Layer } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import OpenAI from "openai"
import { parseHeaders, sampleRatioOf } from "../../src/Telemetry/Otel.js"
import * as Tollgate from "../support/Tollgate.js"

interface Collected {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: any
}

/** A collector that takes OTLP/HTTP JSON posts; `firstTrace` completes with the first traces post. */
const collector = Effect.gen(function*() {
  const firstTrace = yield* Deferred.make<Collected>()
  const posts: Array<Collected> = []
  const server = yield* Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const s = http.createServer((req, res) => {
        let raw = ""
        req.on("data", (c: Buffer) => (raw += c.toString("utf8")))
        req.on("end", () => {
          const post = { url: req.url ?? "", headers: req.headers, body: JSON.parse(raw || "{}") }
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

const attributesOf = (span: { attributes: Array<{ key: string; value: Record<string, unknown> }> }) =>
  Object.fromEntries(span.attributes.map((a) => [a.key, Object.values(a.value)[0]]))

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
      const spans = otlp.posts.filter((p) => p.url === "/v1/traces")
        .flatMap((p) => p.body.resourceSpans ?? []).flatMap((r: any) => r.scopeSpans).flatMap((s: any) => s.spans)
      assert.deepStrictEqual(spans, [])
      assert.isTrue(otlp.posts.some((p) => p.url === "/v1/metrics"))
    }))

  it.scopedLive("a request is one span with the GenAI attributes, exported when tollgate stops; no prompt, no answer", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const env = ConfigProvider.fromMap(new Map([
        ["OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url],
        ["OTEL_EXPORTER_OTLP_HEADERS", "x-otlp-key=secret%3D1"],
        ["OTEL_SERVICE_NAME", "tollgate-test"]
      ]))
      const requestId = yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(
            Tollgate.layer({ providers: { sim: { kind: "mock", reply: "the secret answer" } } }).pipe(Layer.provide(Layer.setConfigProvider(env)))
          )
          const { baseUrl } = yield* Effect.provide(Tollgate.TestInfo, context)
          const client = new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })
          const { response } = yield* Effect.promise(() =>
            client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "the secret prompt" }] }).withResponse()
          )
          return response.headers.get("x-tollgate-request-id")!
        })
      )
      // The scope closed: the exporter flushed what it held.
      const post = yield* Deferred.await(otlp.firstTrace).pipe(Effect.timeout("20 seconds"))
      assert.strictEqual(post.headers["x-otlp-key"], "secret=1")
      const resource = post.body.resourceSpans[0]
      assert.deepInclude(resource.resource.attributes, { key: "service.name", value: { stringValue: "tollgate-test" } })
      const spans = resource.scopeSpans.flatMap((s: { spans: Array<unknown> }) => s.spans) as Array<any>
      const span = spans.find((s) => attributesOf(s)["tollgate.request_id"] === requestId)
      assert.isDefined(span, JSON.stringify(spans).slice(0, 500))
      assert.strictEqual(span.name, "chat gpt-4o-mini")
      const attributes = attributesOf(span)
      assert.deepInclude(attributes, {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "sim",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "tollgate.endpoint": "/v1/chat/completions"
      })
      assert.isAbove(Number(attributes["gen_ai.usage.input_tokens"]), 0)
      assert.isAbove(Number(attributes["gen_ai.usage.output_tokens"]), 0)
      assert.isTrue(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano))
      // Effect's metrics went out too.
      const metrics = otlp.posts.filter((p) => p.url === "/v1/metrics").flatMap((p) => p.body.resourceMetrics ?? [])
      assert.isAbove(metrics.length, 0, "a metrics export")
      const everything = JSON.stringify(otlp.posts.map((p) => p.body))
      assert.notInclude(everything, "the secret prompt")
      assert.notInclude(everything, "the secret answer")
      assert.notInclude(everything, "sk-client")
    }))
})
