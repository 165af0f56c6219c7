/**
 * Collects a request body with a size limit, straight from Node's `IncomingMessage`, before the
 * request's fiber starts: a small body usually arrives with its headers, and reading it with plain
 * callbacks costs no fiber suspension and no extra turn through the scheduler.
 *
 * Not the platform's `request.arrayBuffer`: on overflow that destroys the socket, so the client
 * would never see its 413; and it re-copies the buffer on every chunk. Here chunks are collected
 * once, and on overflow the rest of the body is drained and discarded so the 413 can be sent.
 */
import * as Either from "effect/Either"
import type { IncomingMessage } from "node:http"
import { BadRequest, PayloadTooLarge } from "../Domain/Errors.js"

export type Body = Either.Either<Uint8Array, PayloadTooLarge | BadRequest>

/** Reads `source` to its end (or to `limitBytes`, or to an error), then calls `done` once. */
export const collect = (source: IncomingMessage, limitBytes: number, done: (body: Body) => void): void => {
  const declared = Number(source.headers["content-length"])
  if (declared > limitBytes) return done(Either.left(new PayloadTooLarge({ limitBytes })))
  const chunks: Array<Buffer> = []
  let size = 0
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size > limitBytes) {
      cleanup()
      source.resume() // discard the rest; the 413 goes out when the handler answers
      done(Either.left(new PayloadTooLarge({ limitBytes })))
      return
    }
    chunks.push(chunk)
  }
  const onEnd = () => {
    cleanup()
    done(Either.right(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
  }
  const onError = () => {
    cleanup()
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
