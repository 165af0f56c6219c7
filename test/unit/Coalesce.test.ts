/**
 * The coalescer on its own: flights that end badly still let every subscriber go, and the count of
 * subscribers is what tests and metrics read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, FiberId, Option, Queue, Stream, Take } from "effect"
import * as Bytes from "../../src/Bytes.js"
import * as Coalesce from "../../src/Coalesce.js"
import { UpstreamUnreachable } from "../../src/Domain/Errors.js"
import type { StreamError, UpstreamResponse } from "../../src/Upstream.js"

const bug = new Error("a bug in the call")
const bytes = (text: string) => new TextEncoder().encode(text)
const noBill: Coalesce.Ticket = { handedOver: false, bill: () => Effect.void }
/** A call that answers `stream` as its body (a source made on the call's fiber, as the simulated provider's is). */
const streamed = (stream: Stream.Stream<Uint8Array, UpstreamUnreachable>): Effect.Effect<UpstreamResponse & { readonly target: undefined }> =>
  Effect.map(Bytes.fromStream(stream), (source) => ({ status: 200, headers: {}, body: { _tag: "Stream", source }, target: undefined }))

/** A flight's body that the test feeds, chunk by chunk, then ends, fails or kills. */
const fed = Effect.map(Queue.unbounded<Take.Take<Uint8Array, UpstreamUnreachable>>(), (takes) => ({
  takes,
  call: streamed(Stream.flattenTake(Stream.fromQueue(takes)))
}))

/** A subscriber's replay as the source the proxy pipes to its client. */
const sourceOf = (joined: Coalesce.Joined): Bytes.ByteSource<StreamError> => {
  const body = joined.response.body
  if (body._tag !== "Stream") return assert.fail("a stream replay")
  return body.source
}

/** Reads a source as a client's connection would: every chunk, then its end (undefined) or its failure's cause. */
class Reader {
  readonly chunks: Array<Uint8Array> = []
  readonly ended = Deferred.unsafeMake<Cause.Cause<StreamError> | undefined>(FiberId.none)
  private moved = Deferred.unsafeMake<void>(FiberId.none)
  /** A full reader (a client whose socket is full) takes what it is given and asks for no more. */
  full = false
  private resume: (() => void) | undefined
  constructor(readonly source: Bytes.ByteSource<StreamError>) {
    source.pipe({
      write: (chunk) => {
        this.chunks.push(chunk)
        const moved = this.moved
        this.moved = Deferred.unsafeMake<void>(FiberId.none)
        Deferred.unsafeDone(moved, Exit.void)
        return !this.full
      },
      drained: (resume) => {
        this.resume = resume
      },
      end: () => Deferred.unsafeDone(this.ended, Exit.succeed(undefined)),
      fail: (cause) => Deferred.unsafeDone(this.ended, Exit.succeed(cause))
    })
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString()
  }
  /** Completes once `n` chunks have come. */
  has(n: number): Effect.Effect<void> {
    return Effect.suspend(() => (this.chunks.length >= n ? Effect.void : Effect.zipRight(Deferred.await(this.moved), this.has(n))))
  }
  /** The reader has room again. */
  drain(): void {
    this.full = false
    const resume = this.resume
    this.resume = undefined
    resume?.()
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
      const call = streamed(body)
      const first = yield* coalesce.join("k", call, () => Effect.void, noBill)
      const second = yield* coalesce.join("k", call, () => Effect.void, noBill)
      assert.isTrue(first.leader)
      assert.isFalse(second.leader)
      const read = (joined: Coalesce.Joined) =>
        joined.response.body._tag === "Stream" ? Effect.exit(Stream.runCollect(Bytes.toStream(joined.response.body.source))) : Effect.dieMessage("not a stream")
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
      const first = new Reader(leader)
      yield* Queue.offer(takes, Take.of(bytes("one ")))
      yield* first.has(1)
      const joined = yield* coalesce.join("k", call, () => Effect.void, noBill)
      assert.isFalse(joined.leader)
      const late = new Reader(sourceOf(joined))
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

  it.scoped("a piped replay of a stream that fails or dies: the chunks so far, then the typed failure, or the defect", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const broken = new UpstreamUnreachable({ provider: "p", reason: "connection reset" })
      for (const [key, last] of [["fails", Take.fail(broken)], ["dies", Take.die(bug)]] as const) {
        const { call, takes } = yield* fed
        const source = sourceOf(yield* coalesce.join(key, call, () => Effect.void, noBill))
        const reader = new Reader(source)
        yield* Queue.offerAll(takes, [Take.of(bytes("so far")), last])
        const cause = yield* Deferred.await(reader.ended)
        assert.strictEqual(reader.text, "so far")
        if (cause === undefined) return assert.fail("the replay failed")
        if (key === "fails") assert.strictEqual(Option.getOrUndefined(Cause.failureOption(cause)), broken)
        else assert.strictEqual(Option.getOrUndefined(Cause.dieOption(cause)), bug)
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
      const call = streamed(body)
      const first = sourceOf(yield* coalesce.join("stream", call, () => Effect.void, noBill))
      const second = sourceOf(yield* coalesce.join("stream", call, () => Effect.void, noBill))
      const reader = new Reader(second)
      yield* reader.has(1)
      first.cancel()
      yield* first.release!
      // One subscriber left: the call goes on, and the same flight is joined (not a new one).
      assert.isFalse(yield* Deferred.isDone(cut))
      const third = yield* coalesce.join("stream", call, () => Effect.void, noBill)
      assert.isFalse(third.leader)
      second.cancel()
      yield* second.release!
      yield* sourceOf(third).release!
      yield* Deferred.await(cut)
      assert.strictEqual(yield* coalesce.subscribers.get, 0)
    }))

  it.scoped("a piped replay whose reader is full is written no more until it has drained; it gets the rest then", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      const { call, takes } = yield* fed
      const slow = new Reader(sourceOf(yield* coalesce.join("k", call, () => Effect.void, noBill)))
      const fast = new Reader(sourceOf(yield* coalesce.join("k", call, () => Effect.void, noBill)))
      const piece = new Uint8Array(8192).fill(97)
      // As the client's socket is when it is full: the write that fills it is the last one.
      slow.full = true
      yield* Queue.offer(takes, Take.of(piece))
      yield* slow.has(1)
      yield* Queue.offerAll(takes, [...Array.from({ length: 19 }, () => Take.of(piece)), Take.end])
      // The fast reader got all of it, so the flight has recorded all of it.
      assert.isUndefined(yield* Deferred.await(fast.ended))
      assert.strictEqual(fast.chunks.length, 20)
      assert.strictEqual(slow.chunks.length, 1, "nothing more written to a full reader")
      slow.drain()
      assert.isUndefined(yield* Deferred.await(slow.ended))
      assert.strictEqual(Buffer.concat(slow.chunks).byteLength, 20 * 8192)
    }))
})
