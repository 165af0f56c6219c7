/**
 * The coalescer on its own: flights that end badly still let every subscriber go, and the count of
 * subscribers is what tests and metrics read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, FiberId, Option, Queue, Stream, Take } from "effect"
import type { Readable } from "node:stream"
import * as Coalesce from "../../src/Coalesce.js"
import { UpstreamUnreachable } from "../../src/Domain/Errors.js"
import type { NodeSource, UpstreamResponse } from "../../src/Upstream.js"

const bug = new Error("a bug in the call")
const bytes = (text: string) => new TextEncoder().encode(text)
const noBill: Coalesce.Ticket = { handedOver: false, bill: () => Effect.void }
const streamed = (stream: Stream.Stream<Uint8Array, UpstreamUnreachable>): UpstreamResponse & { readonly target: undefined } => ({
  status: 200,
  headers: {},
  body: { _tag: "Stream", stream },
  target: undefined
})

/** A flight's body that the test feeds, chunk by chunk, then ends, fails or kills. */
const fed = Effect.map(Queue.unbounded<Take.Take<Uint8Array, UpstreamUnreachable>>(), (takes) => ({
  takes,
  call: Effect.succeed(streamed(Stream.flattenTake(Stream.fromQueue(takes))))
}))

/** A subscriber's replay as the Node stream the proxy pipes to its client. */
const sourceOf = (joined: Coalesce.Joined): NodeSource => {
  const body = joined.response.body
  if (body._tag !== "Stream" || body.source === undefined) return assert.fail("a stream replay with a Node source")
  return body.source
}

/** Reads a Node stream as a client would: every chunk, then its end (undefined) or its error. */
class Reader {
  readonly chunks: Array<Uint8Array> = []
  readonly ended = Deferred.unsafeMake<unknown>(FiberId.none)
  private moved = Deferred.unsafeMake<void>(FiberId.none)
  constructor(readonly readable: Readable) {
    readable.on("data", (chunk: Uint8Array) => {
      this.chunks.push(chunk)
      const moved = this.moved
      this.moved = Deferred.unsafeMake<void>(FiberId.none)
      Deferred.unsafeDone(moved, Exit.void)
    })
    readable.once("end", () => Deferred.unsafeDone(this.ended, Exit.succeed(undefined)))
    readable.once("error", (error) => Deferred.unsafeDone(this.ended, Exit.succeed(error)))
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString()
  }
  /** Completes once `n` chunks have come. */
  has(n: number): Effect.Effect<void> {
    return Effect.suspend(() => (this.chunks.length >= n ? Effect.void : Effect.zipRight(Deferred.await(this.moved), this.has(n))))
  }
}

/** The defect an exit died of, if it died of one. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined

describe("Coalesce", () => {
  it.scoped("a call that dies before its head: the leader and a follower die of the defect, neither waits", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const release = yield* Deferred.make<void>()
      const call = Effect.zipRight(Deferred.await(release), Effect.die(bug))
      const leader = yield* Effect.fork(coalesce.join("k", call, () => Effect.void, noBill))
      const follower = yield* Effect.fork(coalesce.join("k", call, () => Effect.void, noBill))
      yield* coalesce.subscribers.changes.pipe(Stream.takeUntil((n) => n === 2), Stream.runDrain)
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(defectOf(yield* Fiber.await(leader)), bug)
      assert.strictEqual(defectOf(yield* Fiber.await(follower)), bug)
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("a stream that dies mid-way: every replay gets the chunks so far, then dies of the defect", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const more = yield* Deferred.make<void>()
      const body = Stream.make(bytes("one")).pipe(
        Stream.concat(Stream.fromEffect(Deferred.await(more)).pipe(Stream.flatMap(() => Stream.die(bug))))
      )
      const call = Effect.succeed(streamed(body))
      const first = yield* coalesce.join("k", call, () => Effect.void, noBill)
      const second = yield* coalesce.join("k", call, () => Effect.void, noBill)
      assert.isTrue(first.leader)
      assert.isFalse(second.leader)
      const read = (joined: Coalesce.Joined) =>
        joined.response.body._tag === "Stream" ? Effect.exit(Stream.runCollect(joined.response.body.stream)) : Effect.dieMessage("not a stream")
      const readers = yield* Effect.forkAll([read(first), read(second)])
      yield* Deferred.succeed(more, undefined)
      const exits = yield* Fiber.join(readers)
      for (const exit of exits) assert.strictEqual(defectOf(exit), bug)
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("the subscriber count: its changes start from the current count and follow every join and leave", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const answer = yield* Deferred.make<void>()
      const call = Effect.as(Deferred.await(answer), {
        status: 200,
        headers: {},
        body: { _tag: "Bytes" as const, bytes: bytes("{}") },
        target: undefined
      })
      // Pulled from here, so that it is subscribed before anyone joins.
      const pull = yield* Stream.toPull(coalesce.subscribers.changes)
      const seen = [...Chunk.toReadonlyArray(yield* pull)]
      const joins = yield* Effect.forkAll([
        coalesce.join("k", call, () => Effect.void, noBill),
        coalesce.join("k", call, () => Effect.void, noBill)
      ])
      yield* coalesce.subscribers.changes.pipe(Stream.takeUntil((n) => n === 2), Stream.runDrain)
      yield* Deferred.succeed(answer, undefined)
      const joined = yield* Fiber.join(joins)
      assert.deepStrictEqual(joined.map((j) => j.leader).sort(), [false, true])
      while (seen.length < 5) seen.push(...Chunk.toReadonlyArray(yield* pull))
      assert.deepStrictEqual(seen, [0, 1, 2, 1, 0])
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("piped replays: what was recorded, then each chunk as it comes, to the end; each subscriber leaves by its release", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const { call, takes } = yield* fed
      const leader = sourceOf(yield* coalesce.join("k", call, () => Effect.void, noBill))
      const first = new Reader(leader.readable)
      yield* Queue.offer(takes, Take.of(bytes("one ")))
      yield* first.has(1)
      const joined = yield* coalesce.join("k", call, () => Effect.void, noBill)
      assert.isFalse(joined.leader)
      const late = new Reader(sourceOf(joined).readable)
      // The late joiner gets the recorded chunk before anything new comes.
      yield* late.has(1)
      assert.strictEqual(late.text, "one ")
      yield* Queue.offerAll(takes, [Take.of(bytes("two")), Take.end])
      for (const reader of [first, late]) {
        assert.isUndefined(yield* Deferred.await(reader.ended))
        assert.strictEqual(reader.text, "one two")
      }
      // Read to the end, but not yet released: still subscribed.
      assert.strictEqual(yield* coalesce.subscribers.get, 2)
      yield* leader.release!
      yield* sourceOf(joined).release!
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("a piped replay of a stream that fails or dies: the chunks so far, then the typed failure, or the defect thrown back", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const broken = new UpstreamUnreachable({ provider: "p", reason: "connection reset" })
      for (const [key, last] of [["fails", Take.fail(broken)], ["dies", Take.die(bug)]] as const) {
        const { call, takes } = yield* fed
        const source = sourceOf(yield* coalesce.join(key, call, () => Effect.void, noBill))
        const reader = new Reader(source.readable)
        yield* Queue.offerAll(takes, [Take.of(bytes("so far")), last])
        const error = yield* Deferred.await(reader.ended)
        assert.strictEqual(reader.text, "so far")
        if (key === "fails") assert.strictEqual(source.failed(error), broken)
        else assert.throws(() => source.failed(error), bug.message)
        yield* source.release!
      }
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("the last subscriber to leave aborts the call, waiting for its head or reading its stream; one leaving of two does not", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      // A call that never completes on its own: only an interruption ends it.
      const aborted = yield* Deferred.make<void>()
      const heading = Effect.onInterrupt(Effect.never, () => Deferred.succeed(aborted, undefined))
      const waiting = yield* Effect.forkAll([
        coalesce.join("head", heading, () => Effect.void, noBill),
        coalesce.join("head", heading, () => Effect.void, noBill)
      ])
      yield* coalesce.subscribers.changes.pipe(Stream.takeUntil((n) => n === 2), Stream.runDrain)
      yield* Fiber.interrupt(waiting)
      yield* Deferred.await(aborted)
      assert.strictEqual(yield* coalesce.subscribers.get, 0)

      // A stream: its first chunk, then nothing until the call is interrupted.
      const cut = yield* Deferred.make<void>()
      const body = Stream.make(bytes("one")).pipe(
        Stream.concat(Stream.fromEffect(Effect.onInterrupt(Effect.never, () => Deferred.succeed(cut, undefined))))
      )
      const call = Effect.succeed(streamed(body))
      const first = sourceOf(yield* coalesce.join("stream", call, () => Effect.void, noBill))
      const second = sourceOf(yield* coalesce.join("stream", call, () => Effect.void, noBill))
      const reader = new Reader(second.readable)
      yield* reader.has(1)
      first.readable.destroy()
      yield* first.release!
      // One subscriber left: the call goes on, and the same flight is joined (not a new one).
      assert.isFalse(yield* Deferred.isDone(cut))
      const third = yield* coalesce.join("stream", call, () => Effect.void, noBill)
      assert.isFalse(third.leader)
      second.readable.destroy()
      yield* second.release!
      yield* sourceOf(third).release!
      yield* Deferred.await(cut)
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("a piped replay whose reader is full is not pushed more than its buffer holds; it gets the rest when it reads again", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const { call, takes } = yield* fed
      const slow = new Reader(sourceOf(yield* coalesce.join("k", call, () => Effect.void, noBill)).readable)
      const fast = new Reader(sourceOf(yield* coalesce.join("k", call, () => Effect.void, noBill)).readable)
      const piece = new Uint8Array(8192).fill(97)
      yield* Queue.offer(takes, Take.of(piece))
      yield* slow.has(1)
      // As the proxy does when the client's socket is full.
      slow.readable.pause()
      yield* Queue.offerAll(takes, [...Array.from({ length: 19 }, () => Take.of(piece)), Take.end])
      // The fast reader got all of it, so the flight has recorded all of it.
      assert.isUndefined(yield* Deferred.await(fast.ended))
      assert.strictEqual(fast.chunks.length, 20)
      assert.isAtMost(slow.readable.readableLength, slow.readable.readableHighWaterMark + piece.byteLength)
      slow.readable.resume()
      assert.isUndefined(yield* Deferred.await(slow.ended))
      assert.strictEqual(Buffer.concat(slow.chunks).byteLength, 20 * 8192)
    }))
})
