/**
 * What one exchange with a provider is made of: the request an adapter sends and the response it
 * gives back. Its own module so that `Upstream.ts` (which picks the adapters) and the adapters in
 * `Upstream/` (which implement them) both import it without importing each other.
 */
import type * as Headers from "@effect/platform/Headers"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import type { ResolvedProvider } from "../Config/Provider.js"
import type { UpstreamError, UpstreamTimeout, UpstreamUnreachable } from "../Domain/Errors.js"

export interface UpstreamRequest {
  readonly provider: ResolvedProvider
  /** Path under the provider's base URL, e.g. `/chat/completions`. */
  readonly path: string
  readonly body: Uint8Array
  readonly stream: boolean
  /** The client's headers; the adapter decides what is forwarded. */
  readonly clientHeaders: Headers.Headers
}

/**
 * A streamed body as the Node stream it is read from, for a consumer that passes bytes on without
 * Effect's Stream machinery (the proxy's answer to its client). A body is read one way or the
 * other, never both.
 */
export interface NodeSource {
  readonly readable: Readable
  /**
   * What a failure of `readable` means, typed as `stream` would fail; a cause that is a bug (a
   * shared flight that died of a defect) is thrown back as the defect.
   */
  readonly failed: (cause: unknown) => UpstreamUnreachable | UpstreamTimeout
  /** Run once by whoever read `readable`, when done with it (a shared flight's replay leaves it). */
  readonly release?: Effect.Effect<void>
}

/** A `Stream` body is only ever handed over once its first chunk is available (or it ended). */
export type UpstreamBody =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | {
    readonly _tag: "Stream"
    readonly stream: Stream.Stream<Uint8Array, UpstreamUnreachable | UpstreamTimeout>
    /** The same body as a Node stream, where it is one (an HTTP provider's, a shared flight's replay). */
    readonly source?: NodeSource
  }

export interface UpstreamResponse {
  readonly status: number
  /** Response headers worth passing to the client (hop-by-hop and framing headers removed). */
  readonly headers: Readonly<Record<string, string>>
  readonly body: UpstreamBody
}

export type Adapter = (request: UpstreamRequest) => Effect.Effect<UpstreamResponse, UpstreamError>
