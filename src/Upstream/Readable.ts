/**
 * A streamed body as a Node readable (a provider's, from undici; a shared flight's replay), read
 * either way: followed with plain listeners (`follow`, for bytes passed on with no Effect between
 * chunks), or as an Effect `Stream` (`toStream`).
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Readable } from "node:stream"

/**
 * Reads a source's readable as it comes: `data` for each chunk, then `end` or `error`, once (the
 * listeners are off by then), also when it ended or failed before it was followed. Returns the
 * early stop: the listeners off, and the readable destroyed (the exchange aborted) unless closed.
 */
export const follow = (
  readable: Readable,
  on: { readonly data: (chunk: Uint8Array) => void; readonly end: () => void; readonly error: (cause: unknown) => void }
): () => void => {
  const detach = () => {
    readable.off("data", on.data)
    readable.off("end", onEnd)
    readable.off("error", onError)
  }
  const onEnd = () => {
    detach()
    on.end()
  }
  const onError = (cause: unknown) => {
    detach()
    on.error(cause)
  }
  readable.on("data", on.data)
  readable.on("end", onEnd)
  readable.on("error", onError)
  if (readable.errored !== null) onError(readable.errored)
  else if (readable.readableEnded) onEnd()
  else {
    readable.resume()
    // What is buffered already (a stream's first chunk, when its answer starts) is passed on now,
    // as one `data`, not on `resume`'s next tick. A `pause` from `data` still holds.
    if (readable.readableLength > 0) readable.read()
  }
  return () => {
    detach()
    if (!readable.closed) readable.destroy()
  }
}

/**
 * Reads a body until it ends or passes `limit` bytes, whichever comes first. `done` gets what
 * came: all of it (`over` false), or the first chunks past the limit (`over` true), the body then
 * paused with the rest still in it and no listener of ours left on it.
 */
export const readUpTo = (
  readable: Readable,
  limit: number,
  done: (chunks: Array<Uint8Array>, size: number, over: boolean) => void,
  failed: (cause: unknown) => void
): void => {
  const chunks: Array<Uint8Array> = []
  let size = 0
  const detach = () => {
    readable.off("data", onData)
    readable.off("end", onEnd)
    readable.off("error", onError)
  }
  const onData = (chunk: Uint8Array) => {
    chunks.push(chunk)
    size += chunk.byteLength
    if (size <= limit) return
    readable.pause()
    detach()
    done(chunks, size, true)
  }
  const onEnd = () => {
    detach()
    done(chunks, size, false)
  }
  const onError = (cause: unknown) => {
    detach()
    failed(cause ?? new Error("body failed"))
  }
  readable.on("data", onData)
  readable.on("end", onEnd)
  readable.on("error", onError)
}

/** The first `size` bytes of `chunks`, as one fresh array. */
export const joined = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    if (at >= size) break
    const piece = at + chunk.byteLength <= size ? chunk : chunk.subarray(0, size - at)
    out.set(piece, at)
    at += piece.byteLength
  }
  return out
}

/**
 * A body as a `Stream`, every chunk that is buffered at once as one batch; the body is
 * destroyed (the exchange cut off) if the stream ends or is dropped before it does.
 *
 * `NodeStream.fromReadable` does the same, but waits for data on a latch whose await is an
 * interruptible async with a canceler: ~9 more Effect steps for each chunk of a paced stream. Here
 * the wait is a plain callback; a waiter left behind by an interruption is dropped with the body.
 */
export const toStream = <E>(body: Readable, onError: (cause: unknown) => E): Stream.Stream<Uint8Array, E> =>
  Stream.fromChannel(Channel.suspend(() => {
    let ended = body.readableEnded || body.errored !== null
    let error: unknown = body.errored ?? undefined
    // Data (or the end) came while no one was waiting: the next wait returns at once.
    let signalled = false
    let wake: (() => void) | undefined
    const notify = () => {
      const waiter = wake
      wake = undefined
      if (waiter === undefined) signalled = true
      else waiter()
    }
    const onEnd = () => {
      ended = true
      notify()
    }
    const onFailure = (cause: unknown) => {
      ended = true
      error = cause ?? new Error("stream failed")
      notify()
    }
    body.on("readable", notify)
    body.on("end", onEnd)
    body.on("error", onFailure)
    const waitForData = Effect.async<void>((resume) => {
      if (signalled) {
        signalled = false
        resume(Effect.void)
      } else {
        wake = () => resume(Effect.void)
      }
    })
    const loop: Channel.Channel<Chunk.Chunk<Uint8Array>, unknown, E, unknown, void, unknown> = Channel.suspend(() => {
      signalled = false
      const pieces: Array<Uint8Array> = []
      for (let piece = body.read(); piece !== null; piece = body.read()) pieces.push(piece)
      if (pieces.length > 0) return Channel.flatMap(Channel.write(Chunk.unsafeFromArray(pieces)), () => loop)
      if (ended) return error === undefined ? Channel.void : Channel.fail(onError(error))
      return Channel.flatMap(waitForData, () => loop)
    })
    return Channel.ensuring(loop, Effect.sync(() => {
      body.off("readable", notify)
      body.off("end", onEnd)
      body.off("error", onFailure)
      if (!body.closed) body.destroy()
    }))
  }))
