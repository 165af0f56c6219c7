/**
 * Collects a request body with a size limit, straight from Node's `IncomingMessage`, before the
 * request's fiber starts: a small body usually arrives with its headers, and reading it with plain
 * callbacks costs no fiber suspension and no extra turn through the scheduler.
 *
 * Not the platform's `request.arrayBuffer`: on overflow that destroys the socket, so the client
 * would never see its 413; and it re-copies the buffer on every chunk. Here chunks are collected
 * once, and on overflow the rest of the body is drained and discarded so the 413 can be sent.
 *
 * Every body held counts against one `InFlight` total for the listener, so many large bodies at
 * once are refused (503) rather than buffered until the process runs out of memory.
 */
import * as Either from "effect/Either"
import type { IncomingMessage } from "node:http"
import { BadRequest, Overloaded, PayloadTooLarge } from "../Domain/Errors.js"

export type Body = Either.Either<Uint8Array, PayloadTooLarge | Overloaded | BadRequest>

/**
 * The bytes of request bodies held in memory now, over every request of a listener. A body's
 * bytes are counted from when it starts to arrive (its whole declared length at once) until its
 * request lets go of it (`release`).
 */
export class InFlight {
  bytes = 0
  constructor(readonly limitBytes: number) {}
  /**
   * Takes `more` bytes for a request that holds `held` already, unless that would pass the limit
   * while other requests hold bytes too (a request alone is always let through).
   */
  take(more: number, held: number): boolean {
    if (this.bytes > held && this.bytes + more > this.limitBytes) return false
    this.bytes += more
    return true
  }
  release(bytes: number): void {
    this.bytes -= bytes
  }
}

/**
 * Reads `source` to its end (or to `limitBytes`, or to an error), then calls `done` once. A body
 * handed over whole stays counted in `inFlight` until its caller releases its length.
 */
export const collect = (
  source: IncomingMessage,
  limitBytes: number,
  inFlight: InFlight,
  done: (body: Body) => void
): void => {
  const declared = Number(source.headers["content-length"])
  if (declared > limitBytes) return done(Either.left(new PayloadTooLarge({ limitBytes })))
  // A declared length is taken whole before a byte is read; a chunked body as it arrives.
  let counted = declared > 0 ? declared : 0
  if (counted > 0 && !inFlight.take(counted, 0)) return done(Either.left(new Overloaded({ limitBytes: inFlight.limitBytes })))
  const chunks: Array<Buffer> = []
  let size = 0
  const refuse = (error: PayloadTooLarge | Overloaded) => {
    cleanup()
    inFlight.release(counted)
    source.resume() // discard the rest; the answer goes out when the handler answers
    done(Either.left(error))
  }
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size > limitBytes) return refuse(new PayloadTooLarge({ limitBytes }))
    if (size > counted) {
      if (!inFlight.take(size - counted, counted)) return refuse(new Overloaded({ limitBytes: inFlight.limitBytes }))
      counted = size
    }
    chunks.push(chunk)
  }
  const onEnd = () => {
    cleanup()
    // Held from now on: exactly the body's length.
    if (counted > size) inFlight.release(counted - size)
    done(Either.right(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
  }
  const onError = () => {
    cleanup()
    inFlight.release(counted)
    done(Either.left(new BadRequest({ code: "unreadable_body", message: "The request body could not be read" })))
  }
  const cleanup = () => {
    source.off("data", onData)
    source.off("end", onEnd)
    source.off("error", onError)
  }
  source.on("data", onData)
  source.once("end", onEnd)
  source.once("error", onError)
}
