/**
 * What one exchange with a provider is made of: the request an adapter sends and the response it
 * gives back. Its own module so that `Upstream.ts` (which picks the adapters) and the adapters in
 * `Upstream/` (which implement them) both import it without importing each other.
 */
import type * as Headers from "@effect/platform/Headers"
import type * as Effect from "effect/Effect"
import type { ByteSource } from "../Bytes.js"
import type { ResolvedProvider } from "../Config/Provider.js"
import type { UpstreamError, UpstreamTimeout, UpstreamUnreachable } from "../Domain/Errors.js"

export interface UpstreamRequest {
  readonly provider: ResolvedProvider
  /** Path under the provider's base URL, e.g. `/chat/completions` (with its query, if any). */
  readonly path: string
  /** Undefined: `POST`. A `GET` or `DELETE` goes out without a body (the stored-response endpoints). */
  readonly method?: "GET" | "POST" | "DELETE" | undefined
  readonly body: Uint8Array
  /** The model the body asks the provider for (its `modelKeys` may give it a key of its own); none: a request about no model. */
  readonly model?: string | undefined
  readonly stream: boolean
  /** The client's headers; the adapter decides what is forwarded. */
  readonly clientHeaders: Headers.Headers
}

/** How a streamed body can fail once it has begun. */
export type StreamError = UpstreamUnreachable | UpstreamTimeout

/**
 * An answer: whole bytes, or a stream of bytes that is never buffered. A `Stream` body is only
 * ever handed over once its first chunk is available (or it ended); it is one `ByteSource`
 * whatever makes it (a provider's HTTP body, the simulated provider, a shared flight's replay),
 * read by piping it, or as an Effect `Stream` (`Bytes.toStream`).
 */
export type UpstreamBody =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | { readonly _tag: "Stream"; readonly source: ByteSource<StreamError> }

export interface UpstreamResponse {
  readonly status: number
  /** Response headers worth passing to the client (hop-by-hop and framing headers removed). */
  readonly headers: Readonly<Record<string, string>>
  readonly body: UpstreamBody
}

export type Adapter = (request: UpstreamRequest) => Effect.Effect<UpstreamResponse, UpstreamError>
