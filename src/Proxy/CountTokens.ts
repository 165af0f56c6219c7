/**
 * `POST /v1/messages/count_tokens`: the provider's own count when a target speaks Anthropic
 * Messages, else an estimate. Free: no ledger row, no budget.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Headers from "@effect/platform/Headers"
import { AnthropicMessages } from "../Dialect/AnthropicMessages.js"
import { passthrough } from "../Dialect/Bridge.js"
import type { Failover } from "../Failover.js"
import { Trail } from "../Failover.js"
import type { Router } from "../Router.js"
import { dialectsOf } from "../Upstream/Kinds.js"

const toMessages = passthrough(AnthropicMessages)

/** What the handler gets of a call (the proxy's `Call`). */
interface CountCall {
  readonly requestId: string
  readonly raw: Uint8Array
  readonly headers: Headers.Headers
}

export const countTokens = (router: Router["Type"], failover: Failover["Type"]) => (call: CountCall) =>
  Effect.gen(function*() {
    const request = yield* Either.match(AnthropicMessages.parse(call.raw, call.headers), { onLeft: Effect.fail, onRight: Effect.succeed })
    const decision = router.decide({ model: request.model })
    const anthropic = decision.targets.filter((t) => dialectsOf(t.provider.config).includes(AnthropicMessages.id))
    if (anthropic.length === 0) {
      const tokens = yield* request.estimateInput
      return HttpServerResponse.unsafeJson({ input_tokens: tokens }, { headers: { "x-tollgate-estimated": "true" } })
    }
    const wire = toMessages(request)
    const response = yield* failover.send({
      route: decision.route,
      targets: anthropic,
      requestFor: (target) => ({
        provider: target.provider,
        path: `${AnthropicMessages.upstreamPath}/count_tokens`,
        body: wire.body(target.model),
        model: target.model,
        stream: false,
        clientHeaders: call.headers
      })
    }, new Trail())
    const bytes = response.body._tag === "Bytes" ? response.body.bytes : new Uint8Array()
    return HttpServerResponse.uint8Array(bytes, { status: response.status, headers: response.headers })
  }).pipe(Effect.catchAll((error) => Effect.succeed(AnthropicMessages.errorResponse(error, { "x-tollgate-request-id": call.requestId }))))
