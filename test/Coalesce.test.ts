/**
 * The coalescer on its own: flights that end badly still let every subscriber go, and the count of
 * subscribers is what tests and metrics read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import * as Coalesce from "../src/Coalesce.js"
import type { UpstreamResponse } from "../src/Upstream.js"

const bug = new Error("a bug in the call")
const bytes = (text: string) => new TextEncoder().encode(text)
const noBill: Coalesce.Ticket = { handedOver: false, bill: () => Effect.void }
const streamed = (stream: Stream.Stream<Uint8Array>): UpstreamResponse & { readonly target: undefined } => ({
  status: 200,
  headers: {},
  body: { _tag: "Stream", stream },
  target: undefined
})

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
})
