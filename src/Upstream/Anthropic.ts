/**
 * Adapter for Anthropic's Messages API (`kind: anthropic`). The body is already in Anthropic's
 * shape (passed through from a `/v1/messages` client, or translated by `Translate.ts`) and goes
 * out as the bytes it is, to `baseUrl + request.path` (`/v1/messages`, `/v1/messages/count_tokens`).
 *
 * Auth: the server-side key as `x-api-key`, or with `passthroughAuth` the client's own `x-api-key`
 * or `Authorization: Bearer` exactly as it came (Claude Code subscription tokens are bearer tokens).
 * `anthropic-version` is always sent (the client's, else the configured one); `anthropic-beta`
 * passes through unchanged. Timeouts, pooling and error typing are `Node/Undici.ts`'s, shared with
 * the OpenAI adapter: 429 is rate limited, 529 and 5xx unavailable, other 4xx rejected with
 * Anthropic's own error body kept for the client.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { modelKeyIn, type ResolvedModelKey, type ResolvedProvider } from "../Config/Provider.js"
import type { AnthropicProvider } from "../Config/Schema.js"
import type { UpstreamRequest } from "./Exchange.js"
import * as Undici from "../Node/Undici.js"
import * as Transport from "./Transport.js"

export const forwardHeaders = (
  config: AnthropicProvider,
  apiKey: Option.Option<Redacted.Redacted<string>>,
  request: UpstreamRequest,
  modelKeys?: ReadonlyArray<ResolvedModelKey>
): Record<string, string> => {
  const client = request.clientHeaders
  const out = Transport.forwardableHeaders(request)
  // An OpenAI client's account scoping (translated requests) belongs with its own key only.
  if (!config.passthroughAuth) {
    delete out["openai-organization"]
    delete out["openai-project"]
  }
  Object.assign(out, config.headers)
  if (config.passthroughAuth) {
    const key = client["x-api-key"]
    const auth = client["authorization"]
    if (key !== undefined) out["x-api-key"] = key
    else if (auth !== undefined) out["authorization"] = auth
  } else {
    // A model with a key of its own (`modelKeys`): that key, sent as it says (a Claude Code
    // OAuth token goes as `Authorization: Bearer`, never beside an `x-api-key`).
    const modelKey = modelKeys === undefined || request.model === undefined ? undefined : modelKeyIn(modelKeys, request.model)
    if (modelKey !== undefined) {
      if (Option.isSome(modelKey.apiKey)) {
        const key = Redacted.value(modelKey.apiKey.value)
        if (modelKey.as === "bearer") out["authorization"] = `Bearer ${key}`
        else out["x-api-key"] = key
      }
    } else if (Option.isSome(apiKey)) {
      out["x-api-key"] = Redacted.value(apiKey.value)
    }
  }
  out["anthropic-version"] = client["anthropic-version"] ?? config.version
  // Plain bytes back, so the proxy can read usage without inflating.
  out["accept-encoding"] = "identity"
  out["content-type"] = client["content-type"] ?? "application/json"
  return out
}

export const make = (provider: ResolvedProvider) =>
  Effect.gen(function*() {
    const config = provider.config
    if (config.kind !== "anthropic") return yield* Effect.dieMessage(`not an anthropic provider: ${provider.name}`)
    return yield* Undici.transport({
      provider: provider.name,
      baseUrl: config.baseUrl,
      timeouts: config.timeouts,
      maxConnections: config.maxConnections,
      limits: config.limits,
      headersFor: (request) => forwardHeaders(config, provider.apiKey, request, provider.modelKeys)
    })
  })
