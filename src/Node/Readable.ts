/**
 * A Node readable (a provider's body, from undici) as a `ByteSource`: followed with plain
 * listeners (`follow`), so bytes pass on with no Effect between chunks, paused while its sink is
 * full. Also the readers the transport uses before a body is handed over (`readUpTo`, `joined`).
 */
import * as Cause from "effect/Cause"
import type { Readable } from "node:stream"
import type { ByteSink, ByteSource } from "../Bytes.js"

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
 * `readable` as a source; `failed` says what its failure means (typed as the exchange's errors).
 * Cancelled, it is destroyed (the exchange aborted) unless closed already.
 */
export const fromReadable = <E>(readable: Readable, failed: (cause: unknown) => E): ByteSource<E> =>
  new ReadableSource(readable, failed)

class ReadableSource<E> implements ByteSource<E> {
  private sink: ByteSink<E> | undefined = undefined
  private stop: (() => void) | undefined = undefined
  private cancelled = false
  constructor(private readonly readable: Readable, private readonly failed: (cause: unknown) => E) {}

  private readonly resume = (): void => {
    if (this.sink !== undefined) this.readable.resume()
  }

  pipe(sink: ByteSink<E>): void {
    if (this.cancelled) return
    this.sink = sink
    const readable = this.readable
    this.stop = follow(readable, {
      data: (chunk) => {
        if (this.sink === undefined) return
        if (!sink.write(chunk) && this.sink !== undefined) {
          readable.pause()
          sink.drained(this.resume)
        }
      },
      end: () => {
        if (this.sink === undefined) return
        this.sink = undefined
        sink.end()
      },
      error: (cause) => {
        if (this.sink === undefined) return
        this.sink = undefined
        sink.fail(Cause.fail(this.failed(cause)))
      }
    })
    // Cancelled by the sink while `follow` passed on what was buffered: stopped now.
    if (this.cancelled) this.stop()
  }

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    this.sink = undefined
    if (this.stop !== undefined) this.stop()
    else if (!this.readable.closed) this.readable.destroy()
  }
}
