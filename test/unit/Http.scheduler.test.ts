import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Runtime } from "effect"
import type { RuntimeFiber } from "effect/Fiber"
import { IoScheduler, MAX_OPS_BEFORE_YIELD } from "../../src/Node/IoScheduler.js"

/** Resolves after Node's check phase has run what is queued now (and what that queues, once more). */
const turns = (n: number) =>
  Effect.promise(async () => {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
  })

const fiberAt = (currentOpCount: number) => ({ currentOpCount }) as unknown as RuntimeFiber<unknown, unknown>

describe("IoScheduler (the listener's scheduler)", () => {
  it.live("work scheduled within one turn runs in one batch from setImmediate, whichever fiber it is for", () =>
    Effect.gen(function*() {
      const scheduler = new IoScheduler()
      const ran: Array<string> = []
      scheduler.scheduleTask(() => ran.push("a"), 0, fiberAt(0))
      setImmediate(() => ran.push("probe"))
      scheduler.scheduleTask(() => ran.push("b"), 0, fiberAt(0))
      assert.deepStrictEqual(ran, [], "nothing runs in the caller's own step")
      yield* turns(1)
      // Effect's `makeBatched` (3.20+) would run b in a runner of its own fiber, after the probe.
      assert.deepStrictEqual(ran, ["a", "b", "probe"])
    }))

  it.live("work a task schedules waits for the next batch, behind what was queued already; priorities in order", () =>
    Effect.gen(function*() {
      const scheduler = new IoScheduler()
      const ran: Array<string> = []
      scheduler.scheduleTask(() => {
        ran.push("first")
        scheduler.scheduleTask(() => ran.push("scheduled by first"), 0)
      }, 1)
      scheduler.scheduleTask(() => ran.push("urgent"), 0)
      setImmediate(() => ran.push("probe"))
      yield* turns(2)
      assert.deepStrictEqual(ran, ["urgent", "first", "probe", "scheduled by first"])
    }))

  it("a fiber yields after Effect's default number of steps, and not before", () => {
    const scheduler = new IoScheduler()
    assert.strictEqual(scheduler.shouldYield(fiberAt(MAX_OPS_BEFORE_YIELD)), false)
    assert.strictEqual(scheduler.shouldYield(fiberAt(MAX_OPS_BEFORE_YIELD + 1)), 0)
  })

  it.live("a long fiber on it lets other callbacks run between its slices", () =>
    Effect.gen(function*() {
      const scheduler = new IoScheduler()
      const STEPS = 10 * MAX_OPS_BEFORE_YIELD
      let count = 0
      const loop: Effect.Effect<void> = Effect.suspend(() => (++count < STEPS ? Effect.flatMap(Effect.void, () => loop) : Effect.void))
      const fiber = Runtime.runFork(Runtime.defaultRuntime)(loop, { scheduler })
      let seen = -1
      setImmediate(() => (seen = count))
      yield* Fiber.join(fiber)
      assert.strictEqual(count, STEPS)
      assert.isTrue(seen > 0 && seen < STEPS, `a callback queued beside the fiber saw ${seen} of ${STEPS} steps`)
    }))
})
