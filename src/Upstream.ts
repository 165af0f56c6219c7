/**
 * The `Upstream` service: sends one request to one provider and gives back its response, with
 * every failure typed (`UpstreamUnreachable`, `UpstreamTimeout`, `UpstreamRateLimited`,
 * `UpstreamUnavailable`, `UpstreamRejected`). One attempt at one target: retries, breakers and
 * failover are `Failover`'s.
 * Adapters live in `Upstream/`, one per provider kind (`Upstream/Kinds.ts`): `openai` (any
 * OpenAI-compatible API), `anthropic` (Messages API) and `mock` (built-in simulated model), the
 * HTTP ones over undici (`Node/Undici.ts`). The response body is either bytes or a `ByteSource`
 * that is never buffered (`Bytes.ts`).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TollgateConfig } from "./Config.js"
import type { UpstreamError } from "./Domain/Errors.js"
import type { Adapter, UpstreamRequest, UpstreamResponse } from "./Upstream/Exchange.js"
import { adapterOf } from "./Upstream/Kinds.js"

export type { Adapter, StreamError, UpstreamBody, UpstreamRequest, UpstreamResponse } from "./Upstream/Exchange.js"

export class Upstream extends Context.Tag("tollgate/Upstream")<Upstream, {
  readonly send: (request: UpstreamRequest) => Effect.Effect<UpstreamResponse, UpstreamError>
}>() {}

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const adapters = new Map<string, Adapter>()
  for (const provider of config.providers) adapters.set(provider.name, yield* adapterOf(provider))
  return Upstream.of({
    send: (request) => adapters.get(request.provider.name)!(request)
  })
})

/** Real providers over HTTP (undici, one keep-alive pool per provider) and the simulated one. */
export const layer: Layer.Layer<Upstream, never, TollgateConfig> = Layer.scoped(Upstream, make)
