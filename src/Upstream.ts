/**
 * The `Upstream` service: sends one request to one provider and gives back its response, with
 * every failure typed (`UpstreamUnreachable`, `UpstreamTimeout`, `UpstreamRateLimited`,
 * `UpstreamUnavailable`, `UpstreamRejected`). One attempt at one target: retries, breakers and
 * failover are `Failover`'s.
 * Adapters live in `Upstream/`: `openai` (any OpenAI-compatible API), `anthropic` (Messages API)
 * and `mock` (built-in simulated model), the HTTP ones over `Upstream/Transport.ts`. The response body is either bytes or a `Stream` that is never buffered
 * (for an HTTP provider or a shared flight's replay, also readable as a Node stream).
 */
import type * as Headers from "@effect/platform/Headers"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import { Config, type ResolvedProvider } from "./Config.js"
import type { UpstreamError, UpstreamTimeout, UpstreamUnreachable } from "./Domain/Errors.js"
import * as Anthropic from "./Upstream/Anthropic.js"
import * as Mock from "./Upstream/Mock.js"
import * as OpenAi from "./Upstream/OpenAi.js"

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

export class Upstream extends Context.Tag("tollgate/Upstream")<Upstream, {
  readonly send: (request: UpstreamRequest) => Effect.Effect<UpstreamResponse, UpstreamError>
}>() {}

export const make = Effect.gen(function*() {
  const config = yield* Config
  const adapters = new Map<string, Adapter>()
  for (const provider of config.providers) {
    switch (provider.config.kind) {
      case "openai":
        adapters.set(provider.name, yield* OpenAi.make(provider))
        break
      case "anthropic":
        adapters.set(provider.name, yield* Anthropic.make(provider))
        break
      case "mock":
        adapters.set(provider.name, yield* Mock.make(provider.name, provider.config))
        break
    }
  }
  return Upstream.of({
    send: (request) => adapters.get(request.provider.name)!(request)
  })
})

/** Real providers over HTTP (undici, one keep-alive pool per provider) and the simulated one. */
export const layer: Layer.Layer<Upstream, never, Config> = Layer.scoped(Upstream, make)
