/**
 * The span exporter on `TestClock`, as the specification's batch span processor behaves: rows
 * wait until `OTEL_BSP_SCHEDULE_DELAY` or until a batch is full; at most
 * `OTEL_BSP_MAX_QUEUE_SIZE` wait, the rest are dropped and the log says so once, then once with
 * the count when spans go out again; a refused export waits out `Retry-After`; what waits when
 * the scope closes is sent. The collector is an `HttpClient` whose every request the test answers
 * by hand.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Logger, Queue, Scope, TestClock } from "effect"
import { makeSpanExporter, type OtelSettings } from "../../src/Telemetry/Otel.js"
import { sampleEvent } from "../support/Events.js"
import { attributesOf, decodeTraces, spansOf } from "../support/Otlp.js"

type Answer = { readonly status: number; readonly headers?: Record<string, string> }

interface Call {
  readonly requestIds: ReadonlyArray<string>
  readonly reply: Deferred.Deferred<Answer>
}

/** A collector whose posts wait in `calls` for the test to answer them. */
const collector = (calls: Queue.Queue<Call>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.gen(function*() {
        const bytes = request.body._tag === "Uint8Array" ? request.body.body : new Uint8Array()
        const reply = yield* Deferred.make<Answer>()
        const requestIds = spansOf(decodeTraces(bytes)).map((span) => String(attributesOf(span)["tollgate.request_id"]))
        yield* Queue.offer(calls, { requestIds, reply })
        const answer = yield* Deferred.await(reply)
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: answer.status, headers: answer.headers ?? {} }))
      })
    )
  )

const settings: OtelSettings = {
  endpoint: "http://collector.test",
  headers: {},
  serviceName: "tollgate-test",
  protocol: "http/protobuf",
  sampleRatio: 1,
  scheduleDelayMs: 5_000,
  maxQueueSize: 8,
  maxExportBatchSize: 4,
  timeoutMs: 10_000
}

const OK: Answer = { status: 200 }

const logTo = (events: Array<{ readonly event: unknown; readonly message: unknown }>) =>
  Logger.replace(Logger.defaultLogger, Logger.make(({ annotations, message }) => {
    const event = [...annotations].find(([key]) => key === "event")?.[1]
    if (event !== undefined) events.push({ event, message })
  }))

/** The exporter in a scope of the test's, its collector's calls, and the log's events. */
const setup = (overrides: Partial<OtelSettings> = {}) =>
  Effect.gen(function*() {
    const calls = yield* Queue.unbounded<Call>()
    const events: Array<{ readonly event: unknown; readonly message: unknown }> = []
    const scope = yield* Scope.make()
    const exporter = yield* makeSpanExporter({ ...settings, ...overrides }, [{ key: "service.name", value: { stringValue: "t" } }]).pipe(
      Scope.extend(scope),
      Effect.provide(Layer.merge(collector(calls), logTo(events)))
    )
    return { calls, events, exporter, scope }
  })

const rows = (from: number, count: number) => Array.from({ length: count }, (_, i) => sampleEvent(from + i))
const ids = (from: number, count: number) => rows(from, count).map((r) => r.requestId)

describe("OpenTelemetry span exporter", () => {
  it.scoped("rows short of a batch go out after the schedule delay, to the millisecond", () =>
    Effect.gen(function*() {
      const { calls, exporter, scope } = yield* setup()
      for (const row of rows(0, 3)) exporter.push(row)
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(yield* Queue.size(calls), 0)
      yield* TestClock.adjust("1 millis")
      const call = yield* Queue.take(calls)
      assert.deepStrictEqual(call.requestIds, ids(0, 3))
      yield* Deferred.succeed(call.reply, OK)
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("a full batch goes out at once, the clock not moved; the rest waits for the delay", () =>
    Effect.gen(function*() {
      const { calls, exporter, scope } = yield* setup()
      for (const row of rows(0, 6)) exporter.push(row)
      const first = yield* Queue.take(calls)
      assert.deepStrictEqual(first.requestIds, ids(0, 4))
      yield* Deferred.succeed(first.reply, OK)
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(yield* Queue.size(calls), 0)
      yield* TestClock.adjust("1 millis")
      const second = yield* Queue.take(calls)
      assert.deepStrictEqual(second.requestIds, ids(4, 2))
      yield* Deferred.succeed(second.reply, OK)
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("a refused export waits out Retry-After, then goes again with the same spans", () =>
    Effect.gen(function*() {
      const { calls, exporter, scope } = yield* setup()
      for (const row of rows(0, 4)) exporter.push(row)
      const first = yield* Queue.take(calls)
      yield* Deferred.succeed(first.reply, { status: 503, headers: { "retry-after": "7" } })
      yield* TestClock.adjust("6999 millis")
      assert.strictEqual(yield* Queue.size(calls), 0)
      yield* TestClock.adjust("1 millis")
      const again = yield* Queue.take(calls)
      assert.deepStrictEqual(again.requestIds, first.requestIds)
      yield* Deferred.succeed(again.reply, OK)
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("past the queue's bound spans are dropped, never waited for; the log says so once, then the count once", () =>
    Effect.gen(function*() {
      const { calls, events, exporter, scope } = yield* setup()
      {
        for (const row of rows(0, 4)) exporter.push(row)
        const stuck = yield* Queue.take(calls) // the collector is slow: this export is in flight
        for (const row of rows(4, 12)) exporter.push(row) // 8 wait, 4 are dropped
        yield* Deferred.succeed(stuck.reply, OK)
        for (const expected of [ids(4, 4), ids(8, 4)]) {
          const call = yield* Queue.take(calls)
          assert.deepStrictEqual(call.requestIds, expected)
          yield* Deferred.succeed(call.reply, OK)
        }
        yield* TestClock.adjust("5 seconds") // a round with nothing dropped
        for (const row of rows(16, 1)) exporter.push(row)
        yield* TestClock.adjust("5 seconds")
        const last = yield* Queue.take(calls)
        assert.deepStrictEqual(last.requestIds, ids(16, 1))
        yield* Deferred.succeed(last.reply, OK)
        yield* Scope.close(scope, Exit.void)
      }
      assert.deepStrictEqual(events.map((e) => e.event), ["otlp_spans_dropped", "otlp_spans_exported"])
      assert.include(String(events[0]!.message), "OTEL_BSP_MAX_QUEUE_SIZE")
      assert.include(String(events[1]!.message), "4 were dropped")
    }))

  it.scoped("an export that fails for good drops its spans and says why; the next one goes out", () =>
    Effect.gen(function*() {
      const { calls, events, exporter, scope } = yield* setup()
      {
        for (const row of rows(0, 4)) exporter.push(row)
        for (let attempt = 0; attempt < 4; attempt++) {
          const call = yield* Queue.take(calls)
          assert.deepStrictEqual(call.requestIds, ids(0, 4))
          yield* Deferred.succeed(call.reply, { status: 500 })
          // Past the backoff (1, 2, 4 s, jittered by at most a fifth), short of an attempt's 10 s timeout.
          yield* TestClock.adjust("5 seconds")
        }
        for (const row of rows(4, 4)) exporter.push(row)
        const next = yield* Queue.take(calls)
        assert.deepStrictEqual(next.requestIds, ids(4, 4))
        yield* Deferred.succeed(next.reply, OK)
        yield* Scope.close(scope, Exit.void)
      }
      assert.deepStrictEqual(events.map((e) => e.event), ["otlp_spans_dropped", "otlp_spans_exported"])
      assert.include(String(events[0]!.message), "status 500", String(events[0]!.message))
      assert.include(String(events[1]!.message), "4 were dropped")
    }))

  it.scoped("what waits when the scope closes is sent", () =>
    Effect.gen(function*() {
      const { calls, exporter, scope } = yield* setup()
      for (const row of rows(0, 2)) exporter.push(row)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      const call = yield* Queue.take(calls)
      assert.deepStrictEqual(call.requestIds, ids(0, 2))
      yield* Deferred.succeed(call.reply, OK)
      yield* closing.await
    }))

  it.scoped("sampled at 0: nothing is kept", () =>
    Effect.gen(function*() {
      const { calls, exporter, scope } = yield* setup({ sampleRatio: 0 })
      for (const row of rows(0, 8)) exporter.push(row)
      yield* TestClock.adjust("10 seconds")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Queue.size(calls), 0)
    }))
})
