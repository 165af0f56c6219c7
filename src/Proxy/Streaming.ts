/**
 * A streamed answer on its way to the client: upstream bytes pass through the watch (never
 * buffered past an event boundary; translated event by event when the shapes differ), the
 * mid-stream budget guard may end it, and when it ends, fails or its client goes away, one ledger
 * row is booked.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type { Ticket } from "../Coalesce.js"
import { errorTypeOf, type UpstreamTimeout, type UpstreamUnreachable } from "../Domain/Errors.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { type Target, targetName } from "../Router.js"
import type { Latency } from "../Router/Latency.js"
import type { UpstreamResponse } from "../Upstream.js"
import type { Parsed } from "./Inbound.js"
import type { Outcome } from "./Record.js"
import { estimate } from "./Usage.js"
import type { StreamWatch } from "./Wire.js"

const encoder = new TextEncoder()

/** Ends a stream whose running cost passes its budget reservation (`budget.enforceMidStream`). */
export interface StreamGuard {
  readonly reservedUsd: number
  /** The running cost after this many output tokens (input as estimated); null when unpriced. */
  readonly costOf: (outputTokens: number) => number | null
}

/**
 * The SSE answer: upstream bytes pass through the watch (never buffered past an event
 * boundary; translated event by event when the shapes differ); when the stream ends, fails or
 * the client goes away, one ledger event is offered.
 */
export const streamAnswer = (
deps: { readonly clock: Clock.Clock; readonly latency: Latency["Type"] },
  response: UpstreamResponse,
  upstreamStream: Stream.Stream<Uint8Array, UpstreamUnreachable | UpstreamTimeout>,
  headers: Record<string, string>,
  watch: StreamWatch,
  request: Parsed,
  served: Target,
  book: (outcome: Outcome) => Effect.Effect<unknown>,
  ticket: Ticket,
  guard: StreamGuard | undefined
) =>
  Effect.sync(() => {
    const started = deps.clock.unsafeCurrentTimeNanos()
    let ttfbMs: number | null = null
    let failure: UpstreamUnreachable | UpstreamTimeout | undefined
    let outputTokens = 0
    /** The guard ended the stream: it passed its reservation. */
    let cutOff = false

    // One stage per chunk batch (not per chunk): the watch's output, empty pieces dropped.
    const watched = upstreamStream.pipe(
      Stream.mapChunks((chunks) => {
        if (ttfbMs === null) ttfbMs = Number(deps.clock.unsafeCurrentTimeNanos() - started) / 1e6
        const out: Array<Uint8Array> = []
        for (const chunk of chunks) {
          const forward = watch.push(chunk)
          if (forward.byteLength > 0) out.push(forward)
          if (guard === undefined) continue
          outputTokens += RequestFacts.countTokens(watch.newText())
          const running = guard.costOf(outputTokens)
          if (running !== null && running > guard.reservedUsd) {
            // One last element (what came, then the error event) and the stream ends: the
            // rest is not sent and the upstream call is aborted, so nothing more is spent.
            cutOff = true
            out.push(encoder.encode(request.streamError(
              `tollgate ended this stream: its cost passed the budget reservation of $${guard.reservedUsd.toFixed(6)} (budget.enforceMidStream)`
            )))
            return Chunk.of(Buffer.concat(out))
          }
        }
        return Chunk.unsafeFromArray(out)
      })
    )
    // Only a guarded stream can be cut off; `takeUntil` looks at every element (it was ~20% of a
    // stream's Effect steps), so an unguarded one goes without it.
    const body = (guard === undefined ? watched : Stream.takeUntil(watched, () => cutOff)).pipe(
      Stream.concat(Stream.suspend(() => {
        const rest = watch.end()
        return rest.byteLength > 0 ? Stream.succeed(rest) : Stream.empty
      })),
      Stream.catchAll((error) => {
        // Headers are gone already: the client learns of the failure from a final error event,
        // which the official SDKs raise as an error.
        failure = error
        const reason = error._tag === "UpstreamTimeout" ? `no data for ${error.afterMs} ms` : error.reason
        return Stream.make(encoder.encode(request.streamError(`Provider "${error.provider}" stream failed: ${reason}`)))
      }),
      Stream.ensuringWith((exit) =>
        Effect.gen(function*() {
          const aborted = Exit.isInterrupted(exit)
          if (ttfbMs !== null) yield* deps.latency.observe(targetName(served), ttfbMs)
          if (ticket.handedOver) return // the flight writes this row when the call ends
          const usage = watch.usage() ?? (yield* estimate(request.estimateInput, watch.completionText()))
          yield* book({
            status: response.status,
            errorType: cutOff
              ? "budget_exceeded_mid_stream"
              : aborted
              ? "client_aborted"
              : failure !== undefined
              ? `stream_${errorTypeOf(failure)}`
              : watch.done()
              ? null
              : "incomplete_stream",
            usage,
            servedModel: watch.model() ?? served.model,
            ttfbMs,
            aborted
          })
        })
      )
    )
    return HttpServerResponse.stream(body, {
      status: response.status,
      headers: { ...headers, "cache-control": "no-cache" }
    })
  })
