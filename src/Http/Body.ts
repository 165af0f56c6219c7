/**
 * Reads a request body with a size limit, straight from Node's `IncomingMessage`.
 *
 * Not the platform's `request.arrayBuffer`: on overflow that destroys the socket, so the client
 * would never see its 413; and it re-copies the buffer on every chunk. Here chunks are collected
 * once, and on overflow the rest of the body is drained and discarded so the 413 can be sent.
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage } from "node:http"
import { BadRequest, PayloadTooLarge } from "../Domain/Errors.js"

export const read = (
  source: IncomingMessage,
  limitBytes: number
): Effect.Effect<Uint8Array, PayloadTooLarge | BadRequest> => {
  const declared = Number(source.headers["content-length"])
  if (declared > limitBytes) return Effect.fail(new PayloadTooLarge({ limitBytes }))
  return Effect.async<Uint8Array, PayloadTooLarge | BadRequest>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limitBytes) {
        cleanup()
        source.resume() // discard the rest; the 413 goes out when the handler answers
        resume(Effect.fail(new PayloadTooLarge({ limitBytes })))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(new BadRequest({ code: "unreadable_body", message: "The request body could not be read" })))
    }
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    return Effect.sync(cleanup)
  })
}
