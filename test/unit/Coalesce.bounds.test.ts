/**
 * A flight's memory is bounded (issue #29): past `HELD_BYTES` it takes no new subscriber, stores
 * nothing, lets go of what its replays have read, and still gives each replay every chunk.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Bytes from "../../src/Bytes.js"
import * as Coalesce from "../../src/Coalesce.js"
import type { UpstreamResponse } from "../../src/Upstream.js"

const noBill: Coalesce.Ticket = { handedOver: false, bill: () => Effect.void }
const MB = 1024 * 1024
const CHUNKS = 24 // 24 MB in all: three times what a flight holds
const chunk = (i: number) => new Uint8Array(MB).fill(i)

const streamed = (stream: Stream.Stream<Uint8Array> = Stream.range(1, CHUNKS).pipe(Stream.map(chunk))): Effect.Effect<UpstreamResponse & { readonly target: undefined }> =>
  Effect.map(Bytes.fromStream(stream), (source) => ({ status: 200, headers: {}, body: { _tag: "Stream", source }, target: undefined }))

describe("a flight past HELD_BYTES", () => {
  it.scoped("every chunk reaches its replay in order, nothing is stored, and the next identical request starts a flight of its own", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      let stored = 0
      let calls = 0
      const call = Effect.suspend(() => (calls++, streamed()))
      const first = yield* coalesce.join("k", call, () => Effect.sync(() => void stored++), noBill)
      assert.isTrue(first.leader)
      const body = first.response.body
      if (body._tag !== "Stream") return assert.fail("a stream")
      let count = 0
      let ordered = true
      yield* Stream.runForEach(Bytes.toStream(body.source), (piece) =>
        Effect.sync(() => {
          count++
          if (piece[0] !== count) ordered = false
        }))
      assert.strictEqual(count, CHUNKS)
      assert.isTrue(ordered, "in order, none missing")
      assert.strictEqual(stored, 0, "too large to store")
      const second = yield* coalesce.join("k", call, () => Effect.void, noBill)
      assert.isTrue(second.leader, "the overflowed flight took no new subscriber")
      assert.strictEqual(calls, 2)
      const rest = second.response.body
      if (rest._tag === "Stream") yield* Stream.runDrain(Bytes.toStream(rest.source))
    }))

  it.scoped("an answer within the bound is stored, and a request while it is in flight shares it", () =>
    Effect.gen(function*() {
      const coalesce = yield* Coalesce.make
      let stored = 0
      const small = Effect.suspend(() => streamed(Stream.make(chunk(1), chunk(2))))
      const first = yield* coalesce.join("s", small, () => Effect.sync(() => void stored++), noBill)
      const second = yield* coalesce.join("s", small, () => Effect.void, noBill)
      assert.isFalse(second.leader)
      for (const joined of [first, second]) {
        const body = joined.response.body
        if (body._tag === "Stream") assert.strictEqual((yield* Stream.runCollect(Bytes.toStream(body.source))).length, 2)
      }
      assert.strictEqual(stored, 1)
    }))
})
