/**
 * The scheduler that request fibers run on: their scheduled work runs from `setImmediate`, in one
 * batch for all of them, not from microtasks.
 *
 * Why `setImmediate`: Effect's default scheduler drains fibers in microtasks, which under load
 * starves Node's I/O callbacks (socket reads and writes wait for long microtask runs): this
 * doubled throughput under load (docs/performance.md, "Figures behind src/ comments").
 *
 * Why not `Scheduler.makeBatched(setImmediate)`: since Effect 3.20 its batches are per fiber (a
 * runner per fiber, kept in a `WeakMap`, so that an `AsyncLocalStorage` context cannot leak from
 * one fiber's task into another's). Every request fiber then got a runner of its own and a
 * `setImmediate` of its own each time it was woken, and its yield check read two `FiberRef`s on
 * every step. tollgate keeps nothing in `AsyncLocalStorage`, so here the fibers woken within one
 * turn of the event loop share one `setImmediate`, and the yield check is a comparison.
 */
import type { RuntimeFiber } from "effect/Fiber"
import { PriorityBuckets, type Scheduler, type Task } from "effect/Scheduler"

/** Steps a fiber runs before it lets the others run: Effect's default (`currentMaxOpsBeforeYield`). */
export const MAX_OPS_BEFORE_YIELD = 2048

export class IoScheduler implements Scheduler {
  private tasks = new PriorityBuckets()
  private scheduled = false

  /** Runs what was scheduled before it; what those tasks schedule runs in the next batch. */
  private readonly drain = (): void => {
    const buckets = this.tasks.buckets
    this.tasks.buckets = []
    this.scheduled = false
    for (const [, tasks] of buckets) {
      for (let i = 0; i < tasks.length; i++) tasks[i]!()
    }
  }

  /** The fiber is not needed: every fiber's work goes into the same batch. */
  scheduleTask(task: Task, priority: number, _fiber?: RuntimeFiber<unknown, unknown>): void {
    this.tasks.scheduleTask(task, priority)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.drain)
    }
  }

  shouldYield(fiber: RuntimeFiber<unknown, unknown>): number | false {
    return fiber.currentOpCount > MAX_OPS_BEFORE_YIELD ? 0 : false
  }
}
