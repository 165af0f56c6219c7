/**
 * OpenTelemetry as a user turns it on: the built executable (`dist/bin.js start`) with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set sends one span per request, in protobuf, to a collector on
 * 127.0.0.1, while it runs (`OTEL_BSP_SCHEDULE_DELAY`) and not only when it stops. With the
 * collector gone, requests are answered as before and the log says once that spans are dropped.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { attributesOf, readTraces, spansOf } from "../support/Otlp.js"
import * as Replica from "../support/Replica.js"
import * as Signal from "../support/Signal.js"

/** A collector keeping every span it is sent; `until` waits (on its own signal) for a condition on them. */
const collector = Effect.acquireRelease(
  Effect.async<{ server: http.Server; url: string; spans: Array<any>; listeners: Set<() => void> }>((resume) => {
    const spans: Array<any> = []
    const listeners = new Set<() => void>()
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        if (req.url === "/v1/traces") spans.push(...spansOf(readTraces(req.headers["content-type"], Buffer.concat(chunks))))
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end()
        for (const listener of listeners) listener()
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, listeners })))
  }),
  ({ server }) => Effect.async<void>((resume) => { server.closeAllConnections(); server.close(() => resume(Effect.void)) })
)

const CONFIG = { providers: { sim: { kind: "mock" } } }

describe("OpenTelemetry from the tollgate command", () => {
  it.scoped("a span per request, in protobuf, while tollgate runs", () =>
    Effect.gen(function*() {
      const c = yield* collector
      const tollgate = yield* Replica.start(CONFIG, { OTEL_EXPORTER_OTLP_ENDPOINT: c.url, OTEL_BSP_SCHEDULE_DELAY: "200" })
      const answers = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 6 }, (_, i) => Replica.chat(tollgate.baseUrl, { model: "gpt-4o-mini", stream: i % 2 === 1 })))
      )
      assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200])
      const ids = answers.map((a) => a.requestId!)
      yield* Signal.until(c, () => ids.every((id) => c.spans.some((s) => attributesOf(s)["tollgate.request_id"] === id)), "a span for each request")
      assert.strictEqual(c.spans.length, 6)
      for (const span of c.spans) {
        assert.strictEqual(span.name, "chat gpt-4o-mini")
        assert.strictEqual(attributesOf(span)["gen_ai.provider.name"], "sim")
      }
      assert.sameMembers(c.spans.map((s) => attributesOf(s)["tollgate.stream"]), [false, true, false, true, false, true])
    }))

  it.scoped("no collector: requests answered as before, the log says once that spans are dropped", () =>
    Effect.gen(function*() {
      const c = yield* collector
      const gone = c.url
      yield* Effect.async<void>((resume) => { c.server.close(() => resume(Effect.void)) })
      const tollgate = yield* Replica.start(CONFIG, { OTEL_EXPORTER_OTLP_ENDPOINT: gone, OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_EXPORTER_OTLP_TIMEOUT: "500" })
      for (let round = 0; round < 2; round++) {
        const answers = yield* Effect.promise(() => Promise.all(Array.from({ length: 4 }, () => Replica.chat(tollgate.baseUrl, { model: "gpt-4o-mini" }))))
        assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200])
      }
      // The first export's retries (1, 2, 4 s) run out, then the log line; waited for on the output.
      const printed: Signal.Signal = { listeners: new Set() }
      const onOutput = () => printed.listeners.forEach((listener) => listener())
      tollgate.child.stdout!.on("data", onOutput)
      tollgate.child.stderr!.on("data", onOutput)
      yield* Signal.until(printed, () => tollgate.output().includes("spans are being dropped"), "the dropped-spans log line")
      assert.match(tollgate.output(), /OpenTelemetry: spans are being dropped \(the collector did not take an export: ECONNREFUSED\)/, tollgate.output())
      assert.strictEqual(tollgate.output().split("spans are being dropped").length - 1, 1)
    }))
})
