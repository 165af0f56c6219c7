/**
 * Bytes on their way somewhere, as the rest of tollgate sees them: a `ByteSource` (a provider's
 * streamed body, a shared flight's replay, a streamed answer) pipes into a `ByteSink` (the
 * client's response, a flight's record) with back-pressure, and can be cancelled. Plain
 * callbacks, no Effect between chunks: the stream of a streamed answer costs no fiber step per
 * chunk on tollgate's own listener.
 *
 * What implements them over Node (undici's bodies, `http.ServerResponse`) lives in `Node/`, the
 * one folder that imports `node:stream` or `node:http`. Every source can also be read as an
 * Effect `Stream` (`toStream`), and any Effect `Stream` can be a source (`fromStream`).
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"

/** Where bytes go. Its methods are called by the one source piped into it. */
export interface ByteSink<in E> {
  /** A chunk. False when the sink is full: the source then calls `drained` and sends nothing more until told. */
  readonly write: (chunk: Uint8Array) => boolean
  /** After a `write` that returned false: the sink calls `resume` once it can take more. */
  readonly drained: (resume: () => void) => void
  /** The body is complete. */
  readonly end: () => void
  /**
   * The body broke after it began (a typed failure, or a defect: a bug): what came is all that
   * comes. A client's sink cuts its connection, so a truncated body never looks complete.
   */
  readonly fail: (cause: Cause.Cause<E>) => void
}

/** Where bytes come from: piped once into one sink, or cancelled. */
export interface ByteSource<out E> {
  /**
   * Sends the body to `sink`: chunks, then one `end` or `fail`, unless cancelled first. What is
   * available already may be written before `pipe` returns.
   */
  readonly pipe: (sink: ByteSink<E>) => void
  /**
   * Stops: nothing more reaches the sink, and whatever produces the bytes is stopped too (a
   * provider's exchange is aborted). Harmless when the body ended already, or called twice.
   */
  readonly cancel: () => void
  /** Run once by whoever took the source, when done with it (a shared flight's replay leaves its flight). */
  readonly release?: Effect.Effect<void> | undefined
}

/** A body ended early on purpose (a budget or size limit), so cut rather than ended. */
export class BodyCut extends Data.TaggedError("BodyCut")<{ readonly reason: string }> {}

/**
 * A response body that pipes a source into the client's connection. tollgate's listener pipes it
 * into Node's `ServerResponse` (no Effect between chunks); on another server (an app's own
 * `HttpRouter`) it is served as `HttpServerResponse.stream` over the same source (`Mount.ts`).
 * Whichever way the exchange ends (done, broken, or the client gone), `after` runs once, on the
 * request's fiber.
 */
export class Piped {
  constructor(
    readonly source: ByteSource<unknown>,
    /** After the exchange: `interrupted` when the client went away before it was complete. */
    readonly after: (interrupted: boolean) => Effect.Effect<void>
  ) {}
}

/** Bytes a `toStream` reader holds before it tells its source to wait. */
const HIGH_WATER = 64 * 1024

/**
 * A source as an Effect `Stream`: every chunk that came while the reader was busy as one batch.
 * The source is cancelled if the stream is dropped before it ended, and released either way.
 * The wait for data is a plain callback, not a latch with a canceler (~9 Effect steps a wait).
 */
export const toStream = <E>(source: ByteSource<E>): Stream.Stream<Uint8Array, E> =>
  Stream.fromChannel(Channel.suspend(() => {
    let pieces: Array<Uint8Array> = []
    let held = 0
    let outcome: Exit.Exit<void, E> | undefined
    let wake: (() => void) | undefined
    let resume: (() => void) | undefined
    const notify = () => {
      const waiter = wake
      wake = undefined
      if (waiter !== undefined) waiter()
    }
    source.pipe({
      write: (chunk) => {
        pieces.push(chunk)
        held += chunk.byteLength
        notify()
        return held < HIGH_WATER
      },
      drained: (next) => {
        resume = next
      },
      end: () => {
        outcome = Exit.void
        notify()
      },
      fail: (cause) => {
        outcome = Exit.failCause(cause)
        notify()
      }
    })
    const waitForData = Effect.async<void>((wakeUp) => {
      if (pieces.length > 0 || outcome !== undefined) wakeUp(Effect.void)
      else wake = () => wakeUp(Effect.void)
    })
    const loop: Channel.Channel<Chunk.Chunk<Uint8Array>, unknown, E, unknown, void, unknown> = Channel.suspend(() => {
      if (pieces.length > 0) {
        const batch = pieces
        pieces = []
        held = 0
        const more = resume
        resume = undefined
        if (more !== undefined) more()
        return Channel.flatMap(Channel.write(Chunk.unsafeFromArray(batch)), () => loop)
      }
      if (outcome !== undefined) return Exit.isSuccess(outcome) ? Channel.void : Channel.failCause(outcome.cause)
      return Channel.flatMap(waitForData, () => loop)
    })
    return Channel.ensuring(
      loop,
      Effect.suspend(() => {
        if (outcome === undefined) source.cancel()
        return source.release ?? Effect.void
      })
    )
  }))

/**
 * An Effect `Stream` as a source (the simulated provider's body, a test's): run, once piped, on
 * a fiber of the runtime it was made in (its `Clock` included), which `cancel` interrupts. The
 * fiber lives as long as the body: whoever takes a source pipes or cancels it.
 */
export const fromStream = <E>(stream: Stream.Stream<Uint8Array, E>): Effect.Effect<ByteSource<E>> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    let fiber: Fiber.RuntimeFiber<void, E> | undefined
    let cancelled = false
    return {
      pipe: (sink) => {
        if (cancelled) return
        const full = Effect.async<void>((resume) => sink.drained(() => resume(Effect.void)))
        fiber = Runtime.runFork(runtime)(Stream.runForEachChunk(stream, (chunk) => {
          let room = true
          for (const piece of chunk) {
            // A sink may cancel from its `write` (a relay cut off): nothing more goes to it.
            if (cancelled) return Effect.void
            room = sink.write(piece)
          }
          return room ? Effect.void : full
        }))
        fiber.addObserver((exit) => {
          if (cancelled) return
          if (Exit.isSuccess(exit)) sink.end()
          else sink.fail(exit.cause)
        })
      },
      cancel: () => {
        if (cancelled) return
        cancelled = true
        fiber?.unsafeInterruptAsFork(FiberId.none)
      }
    }
  })
