/**
 * A streamed answer on its way to the client: upstream bytes pass through the watch (never
 * buffered past an event boundary; translated event by event when the shapes differ), the
 * mid-stream budget guard may end it, and when it ends, fails or its client goes away, one ledger
 * row is booked.
 *
 * All of that is one `Relay`: a sink for the upstream body (any `ByteSource`: a provider's, the
 * simulated one's, a shared flight's replay) and a source for the client's connection, passing
 * bytes on with no Effect between chunks. The answer is a `Piped` body over it, which tollgate's
 * listener pipes into the socket and another server reads as a `Stream` (`Bytes.ts`).
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { BodyCut, type ByteSink, type ByteSource, Piped } from "../Bytes.js"
import type { Ticket } from "../Coalesce.js"
import { errorTypeOf, type UpstreamTimeout, type UpstreamUnreachable } from "../Domain/Errors.js"
import { usd } from "../Domain/Money.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { type Target, targetName } from "../Router.js"
import type { Latency } from "../Router/Latency.js"
import type { StreamError, UpstreamBody } from "../Upstream.js"
import type { Parsed } from "../Dialect.js"
import { isSimulated } from "../Upstream/Kinds.js"
import type { Outcome } from "./Record.js"
import { estimate } from "./Usage.js"
import type { StreamWatch } from "./StreamWatch.js"

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

/** Ends a stream whose running cost passes its budget reservation (`budget.enforceMidStream`). */
export interface StreamGuard {
  readonly reservedUsd: number
  /** The running cost after this many output tokens (input as estimated); null when unpriced. */
  readonly costOf: (outputTokens: number) => number | null
}

/** The largest SSE event a provider may send, in characters (a character is a byte or more): its `limits.eventBytes`. */
const maxEventOf = (served: Target): number => {
  const config = served.provider.config
  return isSimulated(config) ? Infinity : config.limits.eventBytes
}

/**
 * What goes through one streamed answer: the watch, the guard, the timings, and the booking at
 * its end. It is the upstream body's sink, and the source the client's connection reads.
 */
class Relay implements ByteSink<StreamError>, ByteSource<StreamError | BodyCut> {
  ttfbMs: number | null = null
  failure: UpstreamUnreachable | UpstreamTimeout | undefined = undefined
  /** Tollgate ended the stream: the guard (it passed its reservation), or an event past the provider's limit. */
  cutOff = false
  /** Why it was cut off: the row's error type. */
  private cutReason = ""
  private outputTokens = 0
  private readonly started: bigint
  private readonly maxEvent: number
  /** The client's connection, once piped (undefined again once the answer is over or cancelled). */
  private client: ByteSink<StreamError | BodyCut> | undefined = undefined
  /** The row is booked (once, whichever of the end and the exchange's `after` comes first). */
  private booked = false
  /**
   * `database.durable`: from the terminal event on, what goes to the client is held until the
   * row is committed, so no client has a complete answer whose row a crash could lose.
   */
  private held: Array<Uint8Array> | undefined = undefined

  constructor(
    private readonly deps: { readonly clock: Clock.Clock; readonly latency: Latency["Type"] },
    private readonly upstream: ByteSource<StreamError>,
    private readonly status: number,
    private readonly watch: StreamWatch,
    private readonly request: Parsed,
    private readonly served: Target,
    private readonly book: (outcome: Outcome) => Effect.Effect<unknown>,
    private readonly ticket: Ticket,
    private readonly guard: StreamGuard | undefined,
    /** With `database.durable`: where the booking runs when the upstream ends, before the client's end. */
    private readonly durable: Runtime.Runtime<never> | undefined
  ) {
    this.started = deps.clock.unsafeCurrentTimeNanos()
    this.maxEvent = maxEventOf(served)
  }

  /**
   * What to send for a batch of upstream chunks (empty pieces dropped). When the guard cuts the
   * stream off, the last piece carries what came and the error event, all in one.
   */
  push(chunks: Iterable<Uint8Array>): Array<Uint8Array> {
    if (this.ttfbMs === null) this.ttfbMs = Number(this.deps.clock.unsafeCurrentTimeNanos() - this.started) / 1e6
    const out: Array<Uint8Array> = []
    const guard = this.guard
    for (const chunk of chunks) {
      const forward = this.watch.push(chunk)
      if (forward.byteLength > 0) out.push(forward)
      if (this.watch.pending() > this.maxEvent) {
        // What is held of that event is dropped with the watch, and the upstream call is aborted.
        return this.cut(out, "stream_event_too_large", `Provider "${this.served.provider.name}" sent an SSE event larger than ${this.maxEvent} bytes (limits.eventBytes)`)
      }
      if (guard === undefined) continue
      this.outputTokens += RequestFacts.countTokens(this.watch.newText())
      const running = guard.costOf(this.outputTokens)
      if (running !== null && running > guard.reservedUsd) {
        // The rest is not sent and the upstream call is aborted, so nothing more is spent.
        return this.cut(
          out,
          "budget_exceeded_mid_stream",
          `tollgate ended this stream: its cost passed the budget reservation of ${usd(guard.reservedUsd)} (budget.enforceMidStream)`
        )
      }
    }
    return out
  }

  /** Ends the stream here: what came, then the error event (none for a whole answer), all in one piece. */
  private cut(out: Array<Uint8Array>, reason: string, message: string): Array<Uint8Array> {
    this.cutOff = true
    this.cutReason = reason
    if (!this.watch.whole) out.push(encoder.encode(this.errorEvent(message)))
    return [Buffer.concat(out)]
  }

  /** A whole answer (not an event stream): cut short, its client's connection is cut too. */
  get whole(): boolean {
    return this.watch.whole
  }

  /** The upstream ended: what the watch still holds (possibly nothing). */
  rest(): Uint8Array {
    return this.watch.end()
  }

  /**
   * The upstream failed after the headers were sent: the client learns of it from a final error
   * event, which the official SDKs raise as an error. (A whole answer has no such event: empty,
   * and its client's connection is cut instead, so a truncated body never looks complete.)
   */
  failureEvent(error: UpstreamUnreachable | UpstreamTimeout): Uint8Array {
    this.failure = error
    if (this.watch.whole) return EMPTY
    const reason = error._tag === "UpstreamUnreachable"
      ? error.reason
      : error.phase === "total"
      ? `the answer took longer than ${error.afterMs} ms in all (timeouts.total)`
      : `no data for ${error.afterMs} ms`
    return encoder.encode(this.errorEvent(`Provider "${error.provider}" stream failed: ${reason}`))
  }

  /** The client's final error event: the watch's own when its stream numbers its events (Responses), else the dialect's. */
  private errorEvent(message: string): string {
    const own = this.watch.streamError
    return own === undefined ? this.request.streamError(message) : own(message)
  }

  // The source the client reads: the upstream body, through the watch.
  pipe(client: ByteSink<StreamError | BodyCut>): void {
    this.client = client
    this.upstream.pipe(this)
  }

  cancel(): void {
    this.client = undefined
    this.upstream.cancel()
  }

  // The sink the upstream body is piped into.
  write(chunk: Uint8Array): boolean {
    const client = this.client
    if (client === undefined) return false
    let room = true
    const pieces = this.push([chunk])
    if (this.durable !== undefined && !this.cutOff && (this.held !== undefined || this.watch.done())) {
      this.held = this.held === undefined ? pieces : [...this.held, ...pieces]
      return true
    }
    for (const piece of pieces) room = client.write(piece)
    if (!this.cutOff) return room
    // Cut off: the rest is not read (the upstream call is aborted); a whole answer cut short is
    // cut on the client's side too, so it never looks complete.
    this.cancel()
    if (this.whole) client.fail(Cause.fail(new BodyCut({ reason: this.cutReason })))
    else client.end()
    return false
  }

  drained(resume: () => void): void {
    this.client?.drained(resume)
  }

  end(): void {
    const client = this.client
    if (client === undefined) return
    if (this.durable !== undefined && !this.ticket.handedOver) {
      // The row first (committed: `record` waits for it), then the answer's last bytes.
      const rest = this.rest()
      Runtime.runFork(this.durable)(Effect.ensuring(
        Relay.finishing(this, false),
        Effect.sync(() => {
          const open = this.client
          if (open === undefined) return // the client went away meanwhile
          this.client = undefined
          for (const piece of this.held ?? []) open.write(piece)
          if (rest.byteLength > 0) open.write(rest)
          open.end()
        })
      ))
      return
    }
    this.client = undefined
    const rest = this.rest()
    if (rest.byteLength > 0) client.write(rest)
    client.end()
  }

  fail(cause: Cause.Cause<StreamError>): void {
    const client = this.client
    if (client === undefined) return
    this.client = undefined
    const failure = Cause.failureOption(cause)
    // A defect (a shared flight that died of a bug) is passed on as the defect it is.
    if (failure._tag === "None") return client.fail(cause)
    const last = this.failureEvent(failure.value)
    if (last.byteLength === 0) return client.fail(cause)
    client.write(last)
    client.end()
  }

  /** The answer is over (`aborted`: its client went away first): latency noted, one row booked. */
  finish(aborted: boolean): Effect.Effect<void> {
    return Relay.finishing(this, aborted)
  }

  // One generator function for every stream (`fnUntraced`), not a new one per call: V8 would give
  // each a prototype and new hidden classes of its own.
  private static readonly finishing = Effect.fnUntraced(function*(relay: Relay, aborted: boolean) {
    if (relay.booked) return
    relay.booked = true
    if (relay.ttfbMs !== null) yield* relay.deps.latency.observe(targetName(relay.served), relay.ttfbMs)
    if (relay.ticket.handedOver) return // the flight writes this row when the call ends
    const watch = relay.watch
    const usage = watch.usage() ?? (yield* estimate(relay.request.estimateInput, watch.completionText(), watch.completionChars()))
    yield* relay.book({
      status: relay.status,
      errorType: relay.cutOff
        ? relay.cutReason
        : aborted
        ? "client_aborted"
        : relay.failure !== undefined
        ? `stream_${errorTypeOf(relay.failure)}`
        : relay.watch.done()
        ? null
        : "incomplete_stream",
      usage,
      servedModel: relay.watch.model() ?? relay.served.model,
      ttfbMs: relay.ttfbMs,
      aborted
    })
  })
}

/**
 * The SSE answer: upstream bytes pass through the watch (never buffered past an event
 * boundary; translated event by event when the shapes differ); when the stream ends, fails or
 * the client goes away, one ledger event is offered.
 */
export const streamAnswer = (
  deps: { readonly clock: Clock.Clock; readonly latency: Latency["Type"]; readonly durable: boolean },
  status: number,
  body: Extract<UpstreamBody, { readonly _tag: "Stream" }>,
  headers: Record<string, string>,
  watch: StreamWatch,
  request: Parsed,
  served: Target,
  book: (outcome: Outcome) => Effect.Effect<unknown>,
  ticket: Ticket,
  guard: StreamGuard | undefined
) => {
  const answer = (runtime: Runtime.Runtime<never> | undefined) => {
    const source = body.source
    const relay = new Relay(deps, source, status, watch, request, served, book, ticket, guard, runtime)
    // In place, not `{ ...headers, "cache-control": ... }`: see `Http/Response.ts` on hidden classes.
    headers["cache-control"] = "no-cache"
    const release = source.release
    return HttpServerResponse.raw(
      new Piped(relay, (interrupted) => release === undefined ? relay.finish(interrupted) : Effect.zipRight(release, relay.finish(interrupted))),
      { status, headers }
    )
  }
  return deps.durable ? Effect.map(Effect.runtime<never>(), answer) : Effect.sync(() => answer(undefined))
}

/** A streamed body dropped unread: the exchange is cut off (and a shared flight's replay left). */
export const dropBody = (body: Extract<UpstreamBody, { readonly _tag: "Stream" }>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const source = body.source
    source.cancel()
    return source.release ?? Effect.void
  })
