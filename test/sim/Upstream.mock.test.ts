/** The built-in simulated model, on TestClock: latency, chunking and failures are exact. */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import type { MockProvider } from "../../src/Config/Schema.js"
import * as Mock from "../../src/Upstream/Mock.js"
import type { UpstreamRequest } from "../../src/Upstream.js"
import * as Bytes from "../../src/Bytes.js"

const provider = (overrides: Partial<MockProvider>): MockProvider => ({
  kind: "mock",
  latencyMs: 0,
  chunkDelayMs: 0,
  chunks: 4,
  failEvery: 1,
  ...overrides
})

const request = (body: object): UpstreamRequest => ({
  provider: { name: "sim", config: provider({}), apiKey: Option.none() },
  path: "/chat/completions",
  body: new TextEncoder().encode(JSON.stringify(body)),
  stream: (body as { stream?: boolean }).stream === true,
  clientHeaders: {} as UpstreamRequest["clientHeaders"]
})

const ask = { model: "gpt-4o-mini", messages: [{ role: "user", content: "ping pong" }] }
const decoder = new TextDecoder()

describe("mock provider", () => {
  it.effect("answers after exactly latencyMs", () =>
    Effect.gen(function*() {
      const adapter = yield* Mock.make("sim", provider({ latencyMs: 5_000 }))
      const fiber = yield* Effect.fork(adapter(request(ask)))
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.body._tag, "Bytes")
      const json = JSON.parse(decoder.decode(response.body._tag === "Bytes" ? response.body.bytes : new Uint8Array()))
      assert.strictEqual(json.choices[0].message.content, "You said: ping pong")
      assert.isAbove(json.usage.prompt_tokens, 0)
    }))

  it.effect("streams its chunks chunkDelayMs apart, with usage only when asked", () =>
    Effect.gen(function*() {
      const adapter = yield* Mock.make("sim", provider({ chunkDelayMs: 100, reply: "abcdefgh" }))
      const response = yield* adapter(request({ ...ask, stream: true, stream_options: { include_usage: true } }))
      if (response.body._tag !== "Stream") return assert.fail("expected a stream")
      const fiber = yield* Effect.fork(Stream.runCollect(Bytes.toStream(response.body.source)))
      // role chunk + 4 content chunks + finish + usage + [DONE] = 8 events, 100 ms apart: 700 ms.
      yield* TestClock.adjust("650 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("100 millis")
      const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber)).map((b) => decoder.decode(b))
      assert.strictEqual(events.length, 8)
      assert.strictEqual(events[events.length - 1], "data: [DONE]\n\n")
      const content = events.slice(1, 5).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content).join("")
      assert.strictEqual(content, "abcdefgh")
      const usage = JSON.parse(events[6]!.slice(6))
      assert.deepStrictEqual(usage.choices, [])
      assert.isAbove(usage.usage.completion_tokens, 0)

      // Not asked: the same stream without its usage chunk, and no event anywhere carries usage.
      const plain = yield* adapter(request({ ...ask, stream: true }))
      if (plain.body._tag !== "Stream") return assert.fail("expected a stream")
      const unasked = yield* Effect.fork(Stream.runCollect(Bytes.toStream(plain.body.source)))
      yield* TestClock.adjust("700 millis")
      const without = Chunk.toReadonlyArray(yield* Fiber.join(unasked)).map((b) => decoder.decode(b))
      assert.strictEqual(without.length, 7)
      assert.strictEqual(without[without.length - 1], "data: [DONE]\n\n")
      for (const event of without.slice(0, -1)) assert.notProperty(JSON.parse(event.slice(6)), "usage")
    }))

  it.effect("fails with the configured status on every n-th request", () =>
    Effect.gen(function*() {
      const adapter = yield* Mock.make("sim", provider({ failStatus: 503, failEvery: 3 }))
      const statuses: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const exit = yield* Effect.exit(adapter(request(ask)))
        statuses.push(Exit.isSuccess(exit) ? exit.value.status : Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "UpstreamUnavailable" ? exit.cause.error.status : -1)
      }
      assert.deepStrictEqual(statuses, [200, 200, 503, 200, 200, 503])
    }))

  it("splits text into at most n nearly equal pieces", () => {
    assert.deepStrictEqual(Mock.split("abcdefgh", 4), ["ab", "cd", "ef", "gh"])
    assert.deepStrictEqual(Mock.split("ab", 8), ["a", "b"])
    assert.deepStrictEqual(Mock.split("", 3), [""])
  })
})
