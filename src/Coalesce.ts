/**
 * The `Coalesce` service: identical requests in flight at once share one upstream call.
 *
 * The first request for a key starts a *flight*: a fiber (in the layer's scope) that makes the
 * upstream call and records every chunk of the answer. Every request for the key, the first
 * included, is a subscriber: a JSON subscriber waits for the whole body; a streaming subscriber
 * replays the chunks recorded so far, then follows live. A subscriber that goes away leaves the
 * flight; only when the last one has gone is the upstream call interrupted (aborted). A failure is
 * delivered to every subscriber, and the flight is forgotten so the next request goes upstream again.
 *
 * What a flight holds is bounded (`HELD_BYTES`): past it, the flight takes no new subscriber and
 * stores nothing, chunks every replay has read are let go (the last `TAIL_BYTES` are kept, to bill
 * a leader that left), and the provider is paused while the slowest replay is that far behind.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import * as Subscribable from "effect/Subscribable"
import type { ByteSink, ByteSource } from "./Bytes.js"
import type { AnsweredElsewhere } from "./Cache/Answer.js"
import type { NoTargetAvailable, UpstreamError } from "./Domain/Errors.js"
import type { Target } from "./Router.js"
import type { StreamError, UpstreamResponse } from "./Upstream.js"

/** How a flight can end without an answer of its own (another replica's, stored, included). */
type FlightError = UpstreamError | NoTargetAvailable | AnsweredElsewhere

/** The upstream call a flight makes: the answer, and the target that gave it. */
type FlightCall = Effect.Effect<UpstreamResponse & { readonly target: Target | undefined }, FlightError>

/** What a flight's upstream call answered, once its head (status, headers) is known. */
export interface Head {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly kind: "Bytes" | "Stream"
  readonly target: Target | undefined
}

/** A completed flight, for whoever stores answers. */
export interface Landed {
  readonly head: Head
  readonly chunks: ReadonlyArray<Uint8Array>
}

/**
 * The leader's ledger row. The leader pays for the flight; if it leaves before the flight ends, the
 * flight writes the leader's row itself when it ends, with what the call really cost.
 */
export interface Ticket {
  /** Set here when the flight took the row over: the leader must not write it. */
  handedOver: boolean
  /** Writes the leader's row from the flight's outcome (None: the call never completed). */
  readonly bill: (outcome: Option.Option<Landed>) => Effect.Effect<void>
}

/** Bytes of an answer a flight holds for late subscribers; past it, only what replays have still to read. */
export const HELD_BYTES = 8 * 1024 * 1024

/** What an overflowed flight keeps of what it let go: enough to read a stream's usage at its end. */
export const TAIL_BYTES = 64 * 1024

/** Where one replay is: the absolute index of the next chunk it reads. */
interface Reader {
  next: number
}

class Flight {
  /** The chunks held, `base` the absolute index of the first. */
  chunks: Array<Uint8Array> = []
  base = 0
  /** Bytes in `chunks`. */
  bytes = 0
  /** Held more than `HELD_BYTES` once: no new subscriber, nothing stored, read chunks let go. */
  overflowed = false
  /** The last chunks let go (overflowed flights only), at most about `TAIL_BYTES`. */
  tail: Array<Uint8Array> = []
  tailBytes = 0
  readonly readers = new Set<Reader>()
  /** The provider's stream, while it is paused for a slow replay. */
  paused: { readonly resume: () => void } | undefined = undefined
  subscribers = 0
  /** The call has finished (answer complete, or failed). */
  ended = false
  /** The answer is all in `chunks`, or its stream failed (`failure`) after its head. */
  done = false
  failure: Option.Option<StreamError> = Option.none()
  /** The flight died of a defect (a bug): every subscriber dies of it too, none waits forever. */
  defect: Cause.Cause<never> | undefined = undefined
  landed: Option.Option<Landed> = Option.none()
  /** A leader's row to write when the flight ends. */
  pendingBill: Ticket["bill"] | undefined = undefined
  /** What its leader asked to run when the flight ends, however it ends (a lease released). */
  onEnd: Effect.Effect<void> | undefined = undefined
  /**
   * What replays run when chunks come or the answer is done: plain callbacks, no Effect between
   * chunks (a `SubscriptionRef`'s `changes` cost a PubSub subscription per wait and a publish per chunk).
   */
  readonly listeners = new Set<() => void>()
  constructor(
    readonly key: string,
    readonly head: Deferred.Deferred<Head, FlightError>
  ) {}
  interrupt: Effect.Effect<void> = Effect.void
  /** Wakes every replay waiting for more. */
  notify(): void {
    for (const listener of this.listeners) listener()
  }

  /** A chunk came: held, and the bound enforced. Returns whether the provider should pause. */
  add(chunk: Uint8Array): boolean {
    this.chunks.push(chunk)
    this.bytes += chunk.byteLength
    if (this.bytes > HELD_BYTES) this.overflowed = true
    if (this.overflowed) this.trim()
    return this.bytes > HELD_BYTES
  }

  /** Lets go of the chunks every replay has read (overflowed flights only), and resumes a paused provider. */
  trim(): void {
    if (!this.overflowed) return
    let upTo = this.base + this.chunks.length
    for (const reader of this.readers) upTo = Math.min(upTo, reader.next)
    const drop = upTo - this.base
    if (drop > 0) {
      for (let i = 0; i < drop; i++) {
        const chunk = this.chunks[i]!
        this.bytes -= chunk.byteLength
        this.tail.push(chunk)
        this.tailBytes += chunk.byteLength
      }
      this.chunks = this.chunks.slice(drop)
      this.base = upTo
      while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.byteLength >= TAIL_BYTES) this.tailBytes -= this.tail.shift()!.byteLength
    }
    if (this.paused !== undefined && this.bytes <= HELD_BYTES / 2) {
      const paused = this.paused
      this.paused = undefined
      paused.resume()
    }
  }

  /** What the flight still has of its answer: all of it, or (overflowed) its tail and what replays have still to read. */
  held(): ReadonlyArray<Uint8Array> {
    return this.overflowed ? [...this.tail, ...this.chunks] : this.chunks
  }
}

/** A replay is done with the flight's chunks (those every other one has read can go). */
const forgetReader = (flight: Flight, reader: Reader): void => {
  if (flight.readers.delete(reader)) flight.trim()
}

/**
 * A replay: what was recorded, then each chunk written from the flight's own callback as it is
 * recorded, with back-pressure (a full sink is written to again once it has drained). It fails
 * with the flight's stream failure, or with its defect. The proxy pipes it to its client with no
 * Effect between chunks, an order of magnitude fewer Effect steps than replaying it as an Effect
 * `Stream`.
 */
class Replay implements ByteSource<StreamError> {
  private sink: ByteSink<StreamError> | undefined = undefined
  /** The sink said it is full: nothing is written until it has drained. */
  private full = false
  constructor(
    private readonly flight: Flight,
    private readonly reader: Reader,
    readonly release: Effect.Effect<void>
  ) {}

  pipe(sink: ByteSink<StreamError>): void {
    this.sink = sink
    this.pump()
  }

  cancel(): void {
    this.sink = undefined
    this.flight.listeners.delete(this.pump)
    forgetReader(this.flight, this.reader)
  }

  private readonly drained = (): void => {
    this.full = false
    this.pump()
  }

  /** Writes what the flight has that this replay has not read yet; ends it once the flight is done. */
  private readonly pump = (): void => {
    const sink = this.sink
    if (sink === undefined || this.full) return
    const { flight, reader } = this
    if (reader.next < flight.base) {
      // Cannot happen (see above); said as the bug it would be rather than replayed with a hole.
      this.cancel()
      return sink.fail(Cause.die(new Error("a replay fell behind what its flight holds")))
    }
    while (reader.next < flight.base + flight.chunks.length) {
      const room = sink.write(flight.chunks[reader.next++ - flight.base]!)
      // Cancelled from its sink's `write` (its client cut off): nothing more.
      if (this.sink !== sink) return
      if (!room) {
        this.full = true
        flight.trim()
        flight.listeners.add(this.pump)
        return sink.drained(this.drained)
      }
    }
    flight.trim()
    if (!flight.done) return void flight.listeners.add(this.pump)
    flight.listeners.delete(this.pump)
    forgetReader(flight, reader)
    this.sink = undefined
    if (flight.defect !== undefined) sink.fail(flight.defect)
    else if (Option.isSome(flight.failure)) sink.fail(Cause.fail(flight.failure.value))
    else sink.end()
  }
}

export interface Joined {
  /** The answer, as this subscriber sees it: the whole body, or a replay-then-live source. */
  readonly response: UpstreamResponse
  /** This subscriber started the flight (it pays; the others were coalesced). */
  readonly leader: boolean
  readonly target: Target | undefined
}

export class Coalesce extends Context.Tag("tollgate/Coalesce")<Coalesce, {
  /**
   * Joins the flight for `key`, starting it with `call` if there is none. `onLanded` runs once,
   * when a flight completes with every chunk (the leader's, to store the answer); `onEnd` (the
   * leader's) when the flight ends, however it ends.
   */
  readonly join: (
    key: string,
    call: FlightCall,
    onLanded: (landed: Landed) => Effect.Effect<void>,
    ticket: Ticket,
    onEnd?: Effect.Effect<void>
  ) => Effect.Effect<Joined, FlightError>
  /** Requests currently waiting on or reading a flight (for tests and metrics): the count, and its changes. */
  readonly subscribers: Subscribable.Subscribable<number>
}>() {}

export const make = Effect.gen(function*() {
  const flights = new Map<string, Flight>()
  const fibers = yield* FiberSet.make<void, never>()
  // The count is a plain number, published to whoever watches it. (A SubscriptionRef took a
  // semaphore and a publish in two more Effect steps each, twice per request, watched or not.)
  let subscribed = 0
  const counts = yield* PubSub.unbounded<number>()
  const count = (delta: number): void => {
    subscribed += delta
    counts.unsafeOffer(subscribed)
  }
  const subscribers = Subscribable.make({
    get: Effect.sync(() => subscribed),
    // Subscribed before the current count is read: no change is missed in between.
    changes: Stream.unwrapScoped(
      Effect.map(PubSub.subscribe(counts), (changes) => Stream.concat(Stream.sync(() => subscribed), Stream.fromQueue(changes)))
    )
  })

  /**
   * Records a provider's body as it comes, piped with no Effect between chunks; the provider waits
   * while the flight holds too much (`Flight.trim` resumes it).
   * Some(error) when it failed, None when it ended; a defect fails the flight; interrupted, it
   * cancels the body (the exchange is aborted).
   */
  const recordSource = (flight: Flight, source: ByteSource<StreamError>): Effect.Effect<Option.Option<StreamError>> =>
    Effect.async((resume) => {
      const sink: ByteSink<StreamError> = {
        write: (chunk) => {
          const full = flight.add(chunk)
          if (flight.overflowed && flights.get(flight.key) === flight) flights.delete(flight.key)
          flight.notify()
          return !full
        },
        drained: (more) => {
          flight.paused = { resume: more }
        },
        end: () => resume(Effect.succeed(Option.none())),
        fail: (cause) => {
          const failure = Cause.failureOption(cause)
          resume(Option.isSome(failure) ? Effect.succeed(failure) : Effect.failCause(Cause.stripFailures(cause)))
        }
      }
      source.pipe(sink)
      return Effect.sync(() => source.cancel())
    })

  /** The call, recorded into the flight as it comes; `onLanded` once it has all come. */
  const record = Effect.fnUntraced(function*(
    flight: Flight,
    call: FlightCall,
    onLanded: (landed: Landed) => Effect.Effect<void>
  ) {
    const response = yield* call
    const head: Head = { status: response.status, headers: response.headers, kind: response.body._tag, target: response.target }
    if (response.body._tag === "Bytes") {
      // A whole body: complete before anyone is told the head, so a JSON subscriber need not wait again.
      flight.chunks.push(response.body.bytes)
      flight.ended = true
      flight.done = true
      yield* Deferred.succeed(flight.head, head)
    } else {
      yield* Deferred.succeed(flight.head, head)
      const source = response.body.source
      const recorded = recordSource(flight, source)
      const failure = yield* (source.release === undefined ? recorded : Effect.ensuring(recorded, source.release))
      // Some(error) when the stream failed, None when it ended.
      flight.ended = true
      flight.failure = failure
      flight.done = true
      flight.notify()
      if (Option.isSome(failure)) return
    }
    flight.landed = Option.some({ head, chunks: flight.held() })
    // An answer too large to hold whole is not stored.
    if (!flight.overflowed) yield* onLanded({ head, chunks: flight.chunks })
  })

  const run = (
    flight: Flight,
    call: FlightCall,
    onLanded: (landed: Landed) => Effect.Effect<void>
  ) =>
    record(flight, call, onLanded).pipe(
      Effect.catchAll((error) =>
        Effect.suspend(() => {
          flight.ended = true
          return Deferred.fail(flight.head, error)
        })
      ),
      Effect.onExit((exit) =>
        Effect.suspend(() => {
          flight.ended = true
          if (flights.get(flight.key) === flight) flights.delete(flight.key)
          if (Exit.isFailure(exit)) {
            // Interrupted (every subscriber left) or a defect: whoever still waits on the head, or
            // on more of a stream, is told (completing a head that is already known does nothing).
            Deferred.unsafeDone(flight.head, Exit.failCause(exit.cause))
            if (!flight.done && !Exit.isInterrupted(exit)) {
              flight.defect = exit.cause
              flight.done = true
              flight.notify()
            }
          }
          const bill = flight.pendingBill === undefined ? Effect.void : flight.pendingBill(flight.landed)
          return flight.onEnd === undefined ? bill : Effect.zipRight(flight.onEnd, bill)
        })
      )
    )

  /** A subscriber goes; the leader's ticket is handed to the flight if the call is still on. */
  const leave = (flight: Flight, ticket: Ticket | undefined) =>
    Effect.suspend(() => {
      if (ticket !== undefined && !flight.ended) {
        ticket.handedOver = true
        flight.pendingBill = ticket.bill
      }
      flight.subscribers--
      count(-1)
      return flight.subscribers === 0 ? flight.interrupt : Effect.void
    })

  /** `join`, inside its uninterruptible region (`restore` makes the wait for the head interruptible). */
  const joining = Effect.fnUntraced(function*(
    key: string,
    call: FlightCall,
    onLanded: (landed: Landed) => Effect.Effect<void>,
    ticket: Ticket,
    onEnd: Effect.Effect<void> | undefined,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ) {
    let flight = flights.get(key)
    const leader = flight === undefined
    if (flight === undefined) {
      const created: Flight = new Flight(key, yield* Deferred.make<Head, FlightError>())
      created.onEnd = onEnd
      flights.set(key, created)
      // Forked from an uninterruptible region: say explicitly that the flight can be stopped.
      const fiber = yield* FiberSet.run(fibers, Effect.interruptible(run(created, call, onLanded)))
      created.interrupt = Fiber.interruptFork(fiber)
      flight = created
    }
    const joined = flight
    const mine = leader ? ticket : undefined
    joined.subscribers++
    count(1)
    // Its place in the flight is held from now on: a subscriber joins only while the flight holds
    // every chunk, and none is let go before each replay has read it.
    const reader: Reader = { next: 0 }
    joined.readers.add(reader)
    const head = yield* restore(Deferred.await(joined.head)).pipe(
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.zipRight(Effect.sync(() => forgetReader(joined, reader)), leave(joined, mine))))
    )
    if (head.kind === "Bytes") {
      // The body came with the head (see `run`).
      forgetReader(joined, reader)
      yield* leave(joined, mine)
      return {
        response: { status: head.status, headers: head.headers, body: { _tag: "Bytes", bytes: joined.chunks[0]! } },
        leader,
        target: head.target
      } satisfies Joined
    }
    // One replay, one place in the flight: its reader runs `release` (leaves) when done with it.
    const source = new Replay(joined, reader, Effect.zipRight(Effect.sync(() => forgetReader(joined, reader)), leave(joined, mine)))
    return {
      response: {
        status: head.status,
        headers: head.headers,
        body: { _tag: "Stream", source }
      },
      leader,
      target: head.target
    } satisfies Joined
  })

  const join = (
    key: string,
    call: FlightCall,
    onLanded: (landed: Landed) => Effect.Effect<void>,
    ticket: Ticket,
    onEnd?: Effect.Effect<void>
  ): Effect.Effect<Joined, FlightError> => Effect.uninterruptibleMask((restore) => joining(key, call, onLanded, ticket, onEnd, restore))

  return Coalesce.of({ join, subscribers })
})

export const layer: Layer.Layer<Coalesce> = Layer.scoped(Coalesce, make)
