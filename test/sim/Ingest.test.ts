/**
 * Cloud ingest's sender on `TestClock`: a refused batch waits out `Retry-After` (a floor over the
 * backoff) and goes again as the same rows under the same idempotency key; rows are marked only
 * after a 2xx; a batch the receiver took but tollgate never heard back about (a cut connection, a
 * restart) is sent again under the same keys; one sender per ledger. The receiver is an
 * `HttpClient` whose every request the test answers by hand.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Layer, Option, Queue, Redacted, Scope, Stream, SubscriptionRef, TestClock } from "effect"
import * as Exit from "effect/Exit"
import type { CloudTarget } from "../../src/Config/Cloud.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import * as Ingest from "../../src/Telemetry/Ingest.js"
import * as Outbox from "../../src/Telemetry/Outbox.js"
import { awaitCondition } from "../support/Budget.js"
import { sampleEvent } from "../support/Events.js"

type Answer = { readonly status: number; readonly headers?: Record<string, string> } | "cut"

interface Call {
  readonly key: string
  readonly rows: ReadonlyArray<string>
  readonly authorization: string | undefined
  readonly reply: Deferred.Deferred<Answer>
}

/** An HTTP client whose requests wait in `calls` for the test to answer them. */
const receiver = (calls: Queue.Queue<Call>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.gen(function*() {
        const body = request.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(request.body.body)) : {}
        const reply = yield* Deferred.make<Answer>()
        yield* Queue.offer(calls, {
          key: request.headers["idempotency-key"]!,
          rows: (body.rows as Array<{ key: string }>).map((row) => row.key),
          authorization: request.headers["authorization"],
          reply
        })
        const answer = yield* Deferred.await(reply)
        if (answer === "cut") {
          return yield* new HttpClientError.RequestError({ request, reason: "Transport", description: "connection reset" })
        }
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: answer.status, headers: answer.headers ?? {} }))
      })
    )
  )

const target: CloudTarget = {
  url: "http://receiver.test/ingest",
  workspaceId: "ws-sim",
  key: Redacted.make("wk-sim"),
  batchSize: 3,
  interval: 1_000,
  baseDelay: 100,
  maxDelay: 60_000,
  timeout: 30_000
}

/** An in-memory ledger with `n` rows, written through the writer. */
const ledgerWith = (n: number) =>
  Layer.effectDiscard(
    Effect.flatMap(Telemetry.Telemetry, (t) =>
      Effect.zipRight(Effect.forEach(Array.from({ length: n }, (_, i) => sampleEvent(i)), t.record, { discard: true }), t.flush))
  ).pipe(Layer.provideMerge(Telemetry.layerWith({ linger: 0, hold: 0 })), Layer.provideMerge(Store.layerAt(":memory:")))

const backlog = Effect.map(Outbox.backlog, (b) => b.rows)

const theSender = Effect.map(Ingest.Ingest, Option.getOrThrow)

const delivered = (n: number) =>
  Effect.flatMap(theSender, (ingest) => ingest.state.changes.pipe(Stream.takeUntil((s) => s.delivered >= n), Stream.runDrain))

/** How long from `from` the sender's retry sleeps, once it does (the lease's renewal, 20 s on, sleeps beside it). */
const retryWait = (from: number) =>
  Effect.gen(function*() {
    const retrySleep = Effect.map(TestClock.sleeps(), (sleeps) => Chunk.filter(sleeps, (at) => Number(at) < from + 20_000))
    yield* awaitCondition(Effect.map(retrySleep, Chunk.isNonEmpty))
    return Number(Chunk.unsafeHead(yield* retrySleep)) - from
  })

describe("cloud ingest's sender", () => {
  it.scoped("waits out Retry-After, resends the same rows under the same key, marks them only after the 2xx", () =>
    Effect.gen(function*() {
      const calls = yield* Queue.unbounded<Call>()
      const context = yield* Layer.build(Ingest.layerTo(target).pipe(Layer.provideMerge(receiver(calls)), Layer.provideMerge(ledgerWith(5))))
      const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Ingest.Ingest>) => Effect.provide(effect, context)

      const first = yield* Queue.take(calls)
      assert.deepStrictEqual(first.rows.length, 3)
      assert.strictEqual(first.authorization, "Bearer wk-sim")
      const refusedAt = yield* TestClock.currentTimeMillis
      yield* Deferred.succeed(first.reply, { status: 503, headers: { "retry-after": "7" } })
      // The backoff alone would be ~100 ms: Retry-After sets the floor.
      assert.strictEqual(yield* retryWait(refusedAt), 7_000)
      assert.strictEqual(yield* run(backlog), 5)
      yield* TestClock.adjust("6999 millis")
      assert.strictEqual(yield* Queue.size(calls), 0)
      yield* TestClock.adjust("1 millis")
      const second = yield* Queue.take(calls)
      assert.strictEqual(second.key, first.key)
      assert.deepStrictEqual(second.rows, first.rows)
      yield* Deferred.succeed(second.reply, { status: 200 })
      yield* run(delivered(3))
      assert.strictEqual(yield* run(backlog), 2)

      // The receiver takes the next batch but the answer is lost: sent again, same key, same rows.
      const third = yield* Queue.take(calls)
      assert.strictEqual(third.rows.length, 2)
      assert.notStrictEqual(third.key, first.key)
      yield* Deferred.succeed(third.reply, "cut")
      const cut = yield* run(Effect.flatMap(theSender, (i) => i.state.changes.pipe(Stream.filter((s) => s.lastError !== null), Stream.runHead)))
      assert.strictEqual(Option.getOrThrow(cut).lastError, "cannot reach the receiver (connection reset)")
      yield* TestClock.adjust("1 second")
      const fourth = yield* Queue.take(calls)
      assert.deepStrictEqual([fourth.key, fourth.rows], [third.key, third.rows])
      yield* Deferred.succeed(fourth.reply, { status: 200 })
      yield* run(delivered(5))
      assert.strictEqual(yield* run(backlog), 0)
      const state = yield* run(Effect.flatMap(theSender, (i) => SubscriptionRef.get(i.state)))
      assert.deepStrictEqual([state.delivered, state.attempts, state.failingSince], [5, 4, null])
    }))

  it.scoped("a batch in flight when tollgate stops is sent again by the next start, under the same key", () =>
    Effect.gen(function*() {
      const calls = yield* Queue.unbounded<Call>()
      const ledger = yield* Layer.build(ledgerWith(2))
      const sender = Ingest.layerTo(target).pipe(Layer.provide(receiver(calls)))
      const before = yield* Scope.make()
      yield* Effect.provide(Layer.buildWithScope(sender, before), ledger)
      const sent = yield* Queue.take(calls)
      // The receiver has the rows; tollgate stops before it hears back.
      yield* Scope.close(before, Exit.void)
      assert.strictEqual(yield* Effect.provide(backlog, ledger), 2)

      const after = yield* Effect.provide(Layer.build(sender), ledger)
      const again = yield* Queue.take(calls)
      assert.deepStrictEqual([again.key, again.rows], [sent.key, sent.rows])
      yield* Deferred.succeed(again.reply, { status: 200 })
      yield* Effect.provide(delivered(2), after)
      assert.strictEqual(yield* Effect.provide(backlog, ledger), 0)
    }))

  it.scoped("one sender per ledger: a second one waits for the lease, and takes over once it is given up", () =>
    Effect.gen(function*() {
      const calls = yield* Queue.unbounded<Call>()
      const ledger = yield* Layer.build(ledgerWith(1))
      const sender = Ingest.layerTo(target).pipe(Layer.provide(receiver(calls)))
      const firstScope = yield* Scope.make()
      yield* Effect.provide(Layer.buildWithScope(sender, firstScope), ledger)
      const second = yield* Effect.provide(Layer.build(sender), ledger)
      const call = yield* Queue.take(calls)
      yield* Deferred.succeed(call.reply, { status: 500 })
      yield* TestClock.adjust("10 seconds")
      // Only the holder posts: the second has made no attempt.
      const secondState = Effect.flatMap(Effect.provide(theSender, second), (i) => SubscriptionRef.get(i.state))
      assert.strictEqual((yield* secondState).attempts, 0)
      // The first stops (giving the lease up) while retrying; the second takes over at its next renewal.
      const retry = yield* Queue.take(calls)
      yield* Scope.close(firstScope, Exit.void)
      yield* Deferred.succeed(retry.reply, { status: 500 }).pipe(Effect.ignore)
      yield* TestClock.adjust("20 seconds")
      const taken = yield* Queue.take(calls)
      assert.strictEqual(taken.key, call.key)
      yield* Deferred.succeed(taken.reply, { status: 200 })
      yield* Effect.provide(delivered(1), second)
      assert.strictEqual((yield* secondState).attempts, 1)
    }))

  it.scoped("a batch refused as too large (413) is halved until the receiver takes it", () =>
    Effect.gen(function*() {
      const calls = yield* Queue.unbounded<Call>()
      const context = yield* Layer.build(Ingest.layerTo(target).pipe(Layer.provideMerge(receiver(calls)), Layer.provideMerge(ledgerWith(4))))
      const whole = yield* Queue.take(calls)
      assert.strictEqual(whole.rows.length, 3)
      yield* Deferred.succeed(whole.reply, { status: 413 })
      const half = yield* Queue.take(calls)
      assert.deepStrictEqual(half.rows, whole.rows.slice(0, 2))
      yield* Deferred.succeed(half.reply, { status: 200 })
      const rest = yield* Queue.take(calls)
      assert.strictEqual(rest.rows.length, 2)
      yield* Deferred.succeed(rest.reply, { status: 200 })
      yield* Effect.provide(delivered(4), context)
      assert.strictEqual(yield* Effect.provide(backlog, context), 0)
    }))
})
