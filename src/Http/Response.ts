/**
 * Byte responses whose headers keep one hidden class from request to request.
 *
 * The platform's response constructor copies the headers (`{ ...headers }`), then adds
 * `content-type` and `content-length` to the copy when the body has them. On Node 20 (V8 11.3)
 * an object that gains a property after a spread gets a hidden class of its own, every time:
 * two new maps per response, left in the old generation until a full GC, and inline caches that
 * never settle wherever the headers are read. With both headers in the record already, the copy
 * only overwrites them and shares its hidden class with every other response of that shape.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

/** `body` as the answer, `headers` (the caller's own record, completed here) with its type and length. */
export const bytes = (
  body: Uint8Array,
  status: number,
  headers: Record<string, string>,
  contentType?: string
): HttpServerResponse.HttpServerResponse => {
  if (contentType !== undefined) headers["content-type"] = contentType
  headers["content-length"] = String(body.length)
  return HttpServerResponse.uint8Array(body, { status, headers })
}
