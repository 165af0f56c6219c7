/**
 * Waiting on an event source rather than on time: `until` resumes as soon as `ok` holds, checked
 * now and on each signal (a receiver's "a POST arrived", a process's "it printed"), and fails with
 * what it waited for after `seconds`.
 */
import { Effect } from "effect"

/** Something that calls each of its listeners when what it watches changes. */
export interface Signal {
  readonly listeners: Set<() => void>
}

export const until = (signal: Signal, ok: () => boolean, what: string, seconds = 30) =>
  Effect.async<void>((resume) => {
    const check = () => {
      if (ok()) {
        signal.listeners.delete(check)
        resume(Effect.void)
      }
    }
    signal.listeners.add(check)
    check()
    return Effect.sync(() => signal.listeners.delete(check))
  }).pipe(Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`timed out waiting for ${what}`) }), Effect.orDie)
