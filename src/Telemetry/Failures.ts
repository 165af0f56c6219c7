/**
 * The ledger writer's account of its failures: whether the ledger is failing (an episode, from the
 * first write that fails to the next that succeeds), the rows held and lost, and what is logged,
 * counted and published about them. Used by the drain fiber only (and the finalizer after it), so
 * plain fields are enough.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type * as Losses from "./Losses.js"
import * as Metrics from "./Metrics.js"

export type OnWriteFailure = "block" | "continue"

/** Whether the ledger can be written, and what was held or lost while it could not. */
export interface Health {
  readonly status: "ok" | "failing"
  readonly onWriteFailure: OnWriteFailure
  /** Why writes fail: SQLite's code and message, or what happened to the file. */
  readonly reason: string | null
  /** When this episode began (Unix ms). */
  readonly since: number | null
  /** Rows of the batch held in memory and retried (`block`); what was recorded after it waits in the queue. */
  readonly held: number
  /** Rows lost since the layer was built. */
  readonly lost: number
  /** Postgres: rows in spill files, waiting for the database to answer again (not lost). */
  readonly spilled: number
}

/** The health of a writable ledger. */
export const writable = (onWriteFailure: OnWriteFailure): Health => ({
  status: "ok",
  onWriteFailure,
  reason: null,
  since: null,
  held: 0,
  lost: 0,
  spilled: 0
})

/** Lost rows are logged at most this often (ms); the next line says how many were lost meanwhile. */
const LOSS_LOG_INTERVAL = 10_000

export class Failures {
  private episode: { readonly since: number; readonly reason: string; lost: number } | undefined = undefined
  private held = 0
  private lost = 0
  private spilledRows = 0
  // Lost rows not yet added to `meta`, and when the first and the last of them were lost.
  private unsaved = 0
  private unsavedFirst = 0
  private unsavedLast = 0
  private lossLoggedAt = Number.NEGATIVE_INFINITY
  private unlogged = 0

  constructor(
    readonly onWriteFailure: OnWriteFailure,
    /** The ledger's path, for the log. */
    private readonly where: string,
    private readonly clock: Clock.Clock,
    readonly health: SubscriptionRef.SubscriptionRef<Health>
  ) {}

  static make = (onWriteFailure: OnWriteFailure, where: string) =>
    Effect.gen(function*() {
      const health = yield* SubscriptionRef.make(writable(onWriteFailure))
      yield* Metric.set(Metrics.writable, 1)
      return new Failures(onWriteFailure, where, yield* Effect.clock, health)
    })

  get failing(): boolean {
    return this.episode !== undefined
  }

  get holding(): boolean {
    return this.held > 0
  }

  /** `block` and failing: new requests are refused. */
  refusing(): boolean {
    return this.episode !== undefined && this.onWriteFailure === "block"
  }

  private publish(): Effect.Effect<void> {
    return SubscriptionRef.set<Health>(this.health, {
      status: this.episode === undefined ? "ok" : "failing",
      onWriteFailure: this.onWriteFailure,
      reason: this.episode?.reason ?? null,
      since: this.episode?.since ?? null,
      held: this.held,
      lost: this.lost,
      spilled: this.spilledRows
    })
  }

  /** `n` rows wait in spill files for a Postgres ledger (published when it changes). */
  spilled(n: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (n === this.spilledRows) return Effect.void
      this.spilledRows = n
      return this.publish()
    })
  }

  /** A write failed for `reason`: the episode begins (said once), unless it has already. */
  begin(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.episode !== undefined) return Effect.void
      this.episode = { since: this.clock.unsafeCurrentTimeMillis(), reason, lost: 0 }
      const then = this.onWriteFailure === "block"
        ? "rows are held in memory and retried, and new requests are refused (503) until it can be written (database.onWriteFailure: block)"
        : "rows are dropped and counted until it can be written (database.onWriteFailure: continue)"
      return Effect.all([
        Effect.logError(`ledger: cannot write ${this.where}: ${reason}; ${then}`),
        Metric.increment(Metrics.writeFailures),
        Metric.set(Metrics.writable, 0),
        this.publish()
      ], { discard: true })
    })
  }

  /** A batch was written: nothing is held any more, and an episode ends (said once). */
  written(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.episode === undefined && this.held === 0) return Effect.void
      this.held = 0
      const episode = this.episode
      this.episode = undefined
      const effects: Array<Effect.Effect<void>> = [Metric.set(Metrics.rowsHeld, 0), this.publish()]
      if (episode !== undefined) {
        const seconds = ((this.clock.unsafeCurrentTimeMillis() - episode.since) / 1000).toFixed(1)
        const lost = episode.lost > 0 ? `; ${episode.lost} rows were lost meanwhile` : "; no row was lost"
        effects.push(Effect.logInfo(`ledger: ${this.where} can be written again after ${seconds} s${lost}`), Metric.set(Metrics.writable, 1))
      }
      return Effect.all(effects, { discard: true })
    })
  }

  /** `n` rows are held in memory, waiting for the ledger. */
  hold(n: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.held = n
      return Effect.zipRight(Metric.set(Metrics.rowsHeld, n), this.publish())
    })
  }

  /** `n` rows are lost; logged at most every `LOSS_LOG_INTERVAL`, with what was lost meanwhile. */
  lose(n: number, why: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const at = this.clock.unsafeCurrentTimeMillis()
      this.held = 0
      this.lost += n
      this.unsaved += n
      if (this.unsavedFirst === 0) this.unsavedFirst = at
      this.unsavedLast = at
      if (this.episode !== undefined) this.episode.lost += n
      this.unlogged += n
      let log: Effect.Effect<void> = Effect.void
      if (at - this.lossLoggedAt >= LOSS_LOG_INTERVAL) {
        log = Effect.logError(`ledger: could not write ${this.unlogged} rows (${why}); ${this.lost} lost since start`)
        this.lossLoggedAt = at
        this.unlogged = 0
      }
      return Effect.all([Metric.incrementBy(Metrics.rowsLost, n), Metric.set(Metrics.rowsHeld, 0), log, this.publish()], { discard: true })
    })
  }

  /** Losses not added to `meta` yet. */
  unsavedLosses(): Losses.Losses | undefined {
    return this.unsaved === 0 ? undefined : { rows: this.unsaved, first: this.unsavedFirst, last: this.unsavedLast }
  }

  /** `rows` of the unsaved losses are in `meta` now. */
  saved(rows: number): void {
    this.unsaved -= rows
    if (this.unsaved === 0) this.unsavedFirst = 0
  }

  /** What the writer says as it closes, if it lost rows. */
  farewell(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.lost === 0 ? Effect.void : Effect.logError(
        `ledger: ${this.lost} rows were lost while tollgate ran${
          this.unsaved > 0 ? ` (${this.unsaved} of them not counted in ${this.where}: it could not be written)` : ""
        }`
      )
    )
  }
}
