/**
 * A full-screen session on the process's terminal, for the terminal dashboard: the alternate
 * screen, the cursor hidden, keys read one at a time (raw mode, so `q` needs no Enter and Ctrl-C
 * arrives as a key), and the size as it changes. Plain ANSI, no mouse, so it works over ssh and in
 * tmux. Whatever ends the scope (a quit, a signal, a failure) puts the terminal back; so does the
 * process's exit, should it end without closing the scope.
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

const ENTER = "\u001b[?1049h\u001b[?25l\u001b[2J"
const LEAVE = "\u001b[0m\u001b[?25h\u001b[?1049l"
const HOME = "\u001b[H"
const CLEAR_LINE = "\u001b[K"
const CLEAR_BELOW = "\u001b[J"

export type Event =
  | { readonly _tag: "Key"; readonly key: string }
  | { readonly _tag: "Resize" }
  /** The terminal went away (SIGHUP: an ssh session closed) or the process was told to stop. */
  | { readonly _tag: "Hangup" }

export interface Terminal {
  readonly size: () => { readonly columns: number; readonly rows: number }
  /** Replaces the screen with these lines (each written over the old one, the rest cleared). */
  readonly draw: (lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** Keys, resizes and hang-ups, in order. */
  readonly events: Queue.Dequeue<Event>
}

/** Whether this process can show a full-screen session (both ends a terminal). */
export const isInteractive = (): boolean => process.stdout.isTTY === true && process.stdin.isTTY === true

/** The session, for as long as the scope is open. */
export const session: Effect.Effect<Terminal, never, Scope.Scope> = Effect.gen(function*() {
  const stdin = process.stdin
  const stdout = process.stdout
  const events = yield* Effect.acquireRelease(Queue.sliding<Event>(64), Queue.shutdown)
  const onData = (data: Buffer) => {
    // Several keys can arrive in one read (a paste, a slow link): each is its own event.
    const text = data.toString("utf8")
    if (text.startsWith("\u001b")) events.unsafeOffer({ _tag: "Key", key: text })
    else for (const key of text) events.unsafeOffer({ _tag: "Key", key })
  }
  const onResize = () => events.unsafeOffer({ _tag: "Resize" })
  const onHangup = () => events.unsafeOffer({ _tag: "Hangup" })
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(false)
    stdout.write(LEAVE)
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      stdout.write(ENTER)
      if (stdin.isTTY) stdin.setRawMode(true)
      stdin.on("data", onData)
      stdin.resume()
      stdout.on("resize", onResize)
      process.on("SIGHUP", onHangup)
      process.on("exit", restore)
    }),
    () =>
      Effect.sync(() => {
        stdin.off("data", onData)
        stdin.pause()
        stdout.off("resize", onResize)
        process.off("SIGHUP", onHangup)
        process.off("exit", restore)
        restore()
      })
  )
  return {
    size: () => ({ columns: stdout.columns ?? 80, rows: stdout.rows ?? 24 }),
    draw: (lines) => Effect.sync(() => void stdout.write(HOME + lines.map((l) => l + CLEAR_LINE).join("\r\n") + CLEAR_BELOW)),
    events
  }
})
