/**
 * Adapter for any OpenAI-compatible API. The client's body bytes go out unchanged; hop-by-hop
 * headers are dropped, the client's `Authorization` is replaced by the provider's key (unless the
 * provider is `passthroughAuth`), and the answer comes back typed (see `Node/Undici.ts`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { modelKeyOf, type ResolvedProvider } from "../Config/Provider.js"
import type { UpstreamRequest } from "./Exchange.js"
import * as Undici from "../Node/Undici.js"
import * as Transport from "./Transport.js"

export { responseHeaders, retryAfterMs } from "./Transport.js"

/**
 * The client's own OpenAI account scoping: it belongs with the client's key, so it goes only where
 * that key goes (`passthroughAuth`). With tollgate's key it would bill, or be refused by, an
 * organisation or project the operator never chose. A provider's configured `headers` may set them.
 */
const CLIENT_ACCOUNT = ["openai-organization", "openai-project"] as const

export const forwardHeaders = (request: UpstreamRequest): Record<string, string> => {
  const out = Transport.forwardableHeaders(request)
  const provider = request.provider
  const passthrough = provider.config.kind === "openai" && provider.config.passthroughAuth
  if (!passthrough) for (const name of CLIENT_ACCOUNT) delete out[name]
  if (provider.config.kind === "openai") Object.assign(out, provider.config.headers)
  if (passthrough) {
    const auth = request.clientHeaders["authorization"]
    if (auth !== undefined) out["authorization"] = auth
  } else {
    // A model with a key of its own (`modelKeys`): that key, sent as it says.
    const modelKey = provider.modelKeys === undefined || request.model === undefined ? undefined : modelKeyOf(provider, request.model)
    if (modelKey !== undefined) {
      if (Option.isSome(modelKey.apiKey)) {
        const key = Redacted.value(modelKey.apiKey.value)
        if (modelKey.as === "x-api-key") out["x-api-key"] = key
        else out["authorization"] = `Bearer ${key}`
      }
    } else if (Option.isSome(provider.apiKey)) {
      out["authorization"] = `Bearer ${Redacted.value(provider.apiKey.value)}`
    }
  }
  // Plain bytes back, so the proxy can read usage without inflating.
  out["accept-encoding"] = "identity"
  // A GET or DELETE (a stored response) has no body to describe.
  if (request.method === undefined || request.method === "POST") out["content-type"] = request.clientHeaders["content-type"] ?? "application/json"
  else delete out["content-type"]
  return out
}

export const make = (provider: ResolvedProvider) =>
  Effect.gen(function*() {
    if (provider.config.kind !== "openai") return yield* Effect.dieMessage(`not an openai provider: ${provider.name}`)
    return yield* Undici.transport({
      provider: provider.name,
      baseUrl: provider.config.baseUrl,
      timeouts: provider.config.timeouts,
      maxConnections: provider.config.maxConnections,
      limits: provider.config.limits,
      headersFor: forwardHeaders
    })
  })
