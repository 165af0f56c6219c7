/**
 * Ledger rows as OTLP spans, in both of OTLP/HTTP's encodings: the protobuf body decoded by
 * protobufjs from the specification's messages must say exactly what the JSON body says, and
 * both what the row says (GenAI attributes, times to the nanosecond, an error's status), with
 * nothing of a prompt, an answer or a key (a row holds none).
 */
import { assert, describe, it } from "@effect/vitest"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import { batch, encode, ID_BYTES, type Protocol } from "../../src/Telemetry/OtlpSpans.js"
import { sampleEvent, variedEvent } from "../support/Events.js"
import { attributesOf, readTraces, spansOf } from "../support/Otlp.js"

const RESOURCE = [
  { key: "service.name", value: { stringValue: "tollgate-test" } },
  { key: "deployment.environment", value: { stringValue: "ci" } }
]

const idsFor = (count: number) => Uint8Array.from({ length: count * ID_BYTES }, (_, i) => (i * 7 + 3) % 256)

const decoded = (protocol: Protocol, rows: ReadonlyArray<LedgerEvent>) => {
  const body = encode(protocol, RESOURCE, "tollgate", rows, idsFor(rows.length))
  return readTraces(protocol === "http/json" ? "application/json" : "application/x-protobuf", body)
}

/** JSON's numbers and protobuf's int64 strings, and an absent empty status, made alike. */
const normal = (span: any) => ({ ...span, attributes: attributesOf(span), status: span.status ?? {} })

describe("OtlpSpans", () => {
  it("a row is one span: its name, its times to the nanosecond, the GenAI and tollgate attributes; nulls left out", () => {
    const row: LedgerEvent = { ...sampleEvent(1), ts: 1_765_000_000_123, latencyMs: 1234.5678, ttfbMs: 250, route: "fast", cacheStatus: "miss" }
    for (const protocol of ["http/protobuf", "http/json"] as const) {
      const body = decoded(protocol, [row])
      assert.deepStrictEqual(attributesOf(body.resourceSpans[0].resource), { "service.name": "tollgate-test", "deployment.environment": "ci" })
      assert.strictEqual(body.resourceSpans[0].scopeSpans[0].scope.name, "tollgate")
      const [span] = spansOf(body)
      assert.strictEqual(span.name, "chat gpt-4o-mini")
      assert.strictEqual(span.kind, 3)
      assert.strictEqual(span.traceId, Buffer.from(idsFor(1).subarray(0, 16)).toString("hex"))
      assert.strictEqual(span.spanId, Buffer.from(idsFor(1).subarray(16, 24)).toString("hex"))
      assert.strictEqual(span.startTimeUnixNano, "1765000000123000000")
      assert.strictEqual(span.endTimeUnixNano, "1765000001357568000") // + 1234.568 ms, to the microsecond
      assert.deepStrictEqual(attributesOf(span), {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.response.time_to_first_chunk": 0.25,
        "http.response.status_code": 200,
        "tollgate.request_id": "req_1",
        "tollgate.endpoint": "/v1/chat/completions",
        "tollgate.route": "fast",
        "tollgate.attempts": 1,
        "tollgate.failover": false,
        "tollgate.cost_usd": 0.000027,
        "tollgate.cache": "miss",
        "tollgate.stream": false,
        "tollgate.aborted": false,
        "tollgate.usage_source": "reported"
      }, protocol)
      assert.deepStrictEqual(span.status ?? {}, {}, "a success leaves the status unset")
    }
  })

  it("a failed request's span has the error status and error.type", () => {
    const row: LedgerEvent = { ...sampleEvent(2), status: 429, errorType: "rate_limited", inputTokens: null, outputTokens: null, costUsd: null }
    for (const protocol of ["http/protobuf", "http/json"] as const) {
      const [span] = spansOf(decoded(protocol, [row]))
      assert.deepStrictEqual(span.status, { code: 2, message: "rate_limited" })
      const attributes = attributesOf(span)
      assert.strictEqual(attributes["error.type"], "rate_limited")
      assert.strictEqual(attributes["http.response.status_code"], 429)
      assert.notProperty(attributes, "gen_ai.usage.input_tokens")
      assert.notProperty(attributes, "tollgate.cost_usd")
    }
  })

  it("protobuf says what JSON says, for a varied ledger and for names in any script and of any length", () => {
    const rows: Array<LedgerEvent> = Array.from({ length: 400 }, (_, i) => variedEvent(i))
    rows.push(
      { ...sampleEvent(401), requestedModel: "模型-ünïcode-🚀", route: "route \"quoted\" \\ back\nslash", endpoint: "/v1/embeddings" },
      { ...sampleEvent(402), requestedModel: "m".repeat(200), servedModel: null, endpoint: "/v1/completions" },
      { ...sampleEvent(403), requestedModel: "x".repeat(20_000) + "é", servedModel: "y".repeat(70_000) },
      { ...sampleEvent(404), requestedModel: null, servedModel: null, latencyMs: 0, ttfbMs: null, costUsd: 1e-12 }
    )
    const fromJson = spansOf(decoded("http/json", rows)).map(normal)
    const fromProtobuf = spansOf(decoded("http/protobuf", rows)).map(normal)
    assert.strictEqual(fromProtobuf.length, rows.length)
    assert.deepStrictEqual(fromProtobuf, fromJson)
    assert.deepStrictEqual(fromProtobuf.map((s) => s.attributes["tollgate.request_id"]), rows.map((r) => r.requestId))
    const named = fromProtobuf.slice(-4).map((s) => s.name)
    assert.deepStrictEqual(named, ["embeddings 模型-ünïcode-🚀", `text_completion ${"m".repeat(200)}`, `chat ${"x".repeat(20_000)}é`, "chat unknown"])
    assert.notProperty(fromProtobuf.at(-3)!.attributes, "tollgate.route")
    assert.strictEqual(fromProtobuf.at(-4)!.attributes["tollgate.route"], "route \"quoted\" \\ back\nslash")
  })

  it("one batch reused for export after export, built a few rows at a time, gives each what a fresh encoding would", () => {
    for (const protocol of ["http/protobuf", "http/json"] as const) {
      const contentType = protocol === "http/json" ? "application/json" : "application/x-protobuf"
      const reused = batch(protocol, RESOURCE, "tollgate")
      const exports = [400, 3, 0, 50, 129].map((n, b) => Array.from({ length: n }, (_, i) => variedEvent(b * 1000 + i)))
      for (const rows of exports) {
        const ids = idsFor(rows.length)
        for (let at = 0; at < rows.length; at += 64) reused.add(rows.slice(at, at + 64), ids.subarray(at * ID_BYTES, (at + 64) * ID_BYTES))
        assert.strictEqual(reused.size(), rows.length)
        const body = reused.finish()
        assert.strictEqual(reused.size(), 0)
        assert.deepStrictEqual(readTraces(contentType, body), readTraces(contentType, encode(protocol, RESOURCE, "tollgate", rows, ids)))
        assert.strictEqual(spansOf(readTraces(contentType, body)).length, rows.length)
      }
    }
  })

  it("a key always has the same value type: a cost of 0 and a first chunk at 1 s are doubles, counts are ints", () => {
    const rows: Array<LedgerEvent> = [
      ...Array.from({ length: 200 }, (_, i) => variedEvent(i)),
      { ...sampleEvent(1), costUsd: 0, ttfbMs: 1000, inputTokens: 0 },
      { ...sampleEvent(2), costUsd: 2, ttfbMs: 250, inputTokens: 12 }
    ]
    const expected: Record<string, string> = {
      "gen_ai.usage.input_tokens": "intValue",
      "gen_ai.response.time_to_first_chunk": "doubleValue",
      "http.response.status_code": "intValue",
      "tollgate.cost_usd": "doubleValue",
      "tollgate.attempts": "intValue",
      "tollgate.failover": "boolValue",
      "gen_ai.request.model": "stringValue"
    }
    for (const protocol of ["http/protobuf", "http/json"] as const) {
      const types = new Map<string, Set<string>>()
      for (const span of spansOf(decoded(protocol, rows))) {
        for (const a of span.attributes) {
          const kinds = types.get(a.key) ?? new Set<string>()
          for (const kind of Object.keys(a.value)) kinds.add(kind)
          types.set(a.key, kinds)
        }
      }
      for (const [key, kinds] of types) assert.strictEqual(kinds.size, 1, `${protocol}: ${key} came as ${[...kinds].join(" and ")}`)
      for (const [key, kind] of Object.entries(expected)) assert.deepStrictEqual([...types.get(key)!], [kind], `${protocol}: ${key}`)
    }
  })

  it("no rows: a valid request with no spans", () => {
    for (const protocol of ["http/protobuf", "http/json"] as const) assert.deepStrictEqual(spansOf(decoded(protocol, [])), [])
  })
})
