/**
 * The dashboard's live feed, `GET /admin/events`: server-sent events. `series` carries the charts'
 * data (`Admin/Series.ts`) whenever it was read again; `live` the tail of recent requests, budget
 * gauges with their reservations in flight, recent alerts, breakers and the ledger writer's health,
 * whenever it changed and at least every second.
 *
 * Nothing here runs on a request's path, and watching is kept cheap: one reading of the live part
 * serves every connection, read again at most every 100 ms after a write and every 500 ms without,
 * its tail only once the writer has written since; the charts' queries, shared by every open
 * dashboard, run at most once a second and never more often than `BUSY_FACTOR` times their own
 * running time, so a large ledger slows the charts rather than the proxy. The two are read and sent
 * independently: slow charts never delay the tail. A connection lasts at most `STREAM_LIFETIME`
 * (EventSource reconnects on its own) and at most `MAX_STREAMS` are open at once.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Budget } from "../Budget.js"
import * as Alerts from "../Budget/Alerts.js"
import type { Circuit } from "../Circuit.js"
import * as Money from "../Domain/Money.js"
import type * as Metrics from "../Metrics.js"
import type { Telemetry } from "../Telemetry.js"
import * as Stats from "../Stats.js"
import * as Series from "./Series.js"

/** How often a connection looks for new charts, and for a new live part. */
const CHARTS_TICK = "1 second"
const LIVE_TICK = "250 millis"
/** How long a connection lasts, after which the browser reconnects. */
const STREAM_LIFETIME = "10 minutes"
/** Event streams open at once; past it a new one is answered 503. */
export const MAX_STREAMS = 16
/** The charts' data is read again at most this often. */
const MINIMUM_INTERVAL_MS = 1_000
/**
 * ...and no sooner than this many times its own last running time: on SQLite the queries run on
 * the thread that serves requests, so the charts of a large window may take at most a tenth of it.
 */
const BUSY_FACTOR = 9
/** ...and at least this often while nothing is written, so that the window slides. */
const IDLE_INTERVAL_MS = 30_000
/** Windows whose charts are held at once (one per window an open dashboard shows). */
const HELD_WINDOWS = 8
/** How long one reading of budgets, breakers and alerts serves every connection, while nothing is written. */
const LIVE_SHARED_MS = 500
/** ...and after a write: a new request shows in the tail soon, however many are written. */
const LIVE_AFTER_WRITE_MS = 100
/** Alerts in a snapshot: the latest of the last day. */
const ALERTS_SHOWN = 20

export interface Services {
  readonly sql: SqlClient.SqlClient
  readonly budget: Context.Tag.Service<Budget>
  readonly circuit: Context.Tag.Service<Circuit>
  readonly telemetry: Context.Tag.Service<Telemetry>
  readonly metrics: Context.Tag.Service<Metrics.Metrics>
}

/** `GET /admin/budget`'s body: each limit with its spend and reservations in flight, and the sessions blocked. */
export const budgetView = (budget: Context.Tag.Service<Budget>) =>
  Effect.zipWith(budget.status, budget.blocks, (limits, blocks) => ({
    enabled: budget.active(),
    limits: limits.map((l) => ({
      scope: l.scope,
      key: l.key,
      window: l.window,
      limitUsd: Money.json(l.limitUsd),
      spentUsd: Money.json(l.spentUsd),
      reservedUsd: Money.json(l.reservedUsd),
      remainingUsd: Money.json(Math.max(0, l.limitUsd - l.spentUsd - l.reservedUsd)),
      resetsAt: l.resetsAt === null ? null : new Date(l.resetsAt).toISOString(),
      onBreach: l.onBreach
    })),
    blocks: blocks.map((b) => ({ session: b.session, anomaly: b.anomaly, until: new Date(b.until).toISOString() }))
  }))

interface Held<A> {
  readonly at: number
  readonly written: number
  readonly tookMs: number
  readonly value: A
}

const encoder = new TextEncoder()

/** One SSE event; `data` is JSON text, which has no raw newline, so it fits one `data:` line. */
const event = (name: string, json: string): Uint8Array => encoder.encode(`event: ${name}\ndata: ${json}\n\n`)

export const make = (services: Services) =>
  Effect.gen(function*() {
    const { budget, circuit, metrics, sql, telemetry } = services
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const withSql = Effect.provideService(SqlClient.SqlClient, sql)
    // One reader of each kind at a time: dashboards open at once share each read instead of
    // repeating it, and slow charts never hold up the live part.
    const chartsLock = yield* Effect.makeSemaphore(1)
    const liveLock = yield* Effect.makeSemaphore(1)
    const charts = new Map<string, Held<string>>()
    let tail: Held<ReadonlyArray<Series.TailRow>> | undefined
    let live: Held<string> | undefined
    let open = 0

    const fresh = (held: Held<unknown> | undefined, written: number, at: number): held is Held<unknown> =>
      held !== undefined &&
      (at - held.at < Math.max(MINIMUM_INTERVAL_MS, BUSY_FACTOR * held.tookMs) || (held.written === written && at - held.at < IDLE_INTERVAL_MS))

    const timed = <A, B, E>(read: Effect.Effect<A, E, SqlClient.SqlClient>, written: number, keep: (a: A) => B) =>
      Effect.suspend(() => {
        const at = now()
        return Effect.map(withSql(read), (value): Held<B> => ({ at, written, tookMs: now() - at, value: keep(value) }))
      })

    /** The charts of `options`' window as JSON text, read again only when the rules above allow. */
    const chartsOf = (options: Series.Options, written: number) =>
      Effect.suspend((): Effect.Effect<Held<string>, SqlError> => {
        const key = `${options.since}\u0000${options.step}`
        const held = charts.get(key)
        if (fresh(held, written, now())) return Effect.succeed(held as Held<string>)
        return Effect.map(timed(Series.series(options), written, JSON.stringify), (read) => {
          charts.delete(key)
          charts.set(key, read)
          if (charts.size > HELD_WINDOWS) charts.delete(charts.keys().next().value!)
          return read
        })
      })

    /** The tail, read again once something was written since. */
    const tailOf = (written: number) =>
      Effect.suspend(() => {
        if (tail !== undefined && tail.written === written) return Effect.succeed(tail.value)
        return Effect.map(timed(Series.tail, written, (rows) => rows), (read) => {
          tail = read
          return read.value
        })
      })

    /** What changes from moment to moment: the tail, budgets, alerts, breakers, the writer. */
    const readLive = (written: number, at: number) =>
      Effect.gen(function*() {
        const health = yield* SubscriptionRef.get(telemetry.health)
        const rows = yield* tailOf(written)
        const alerts = yield* withSql(Alerts.list(at - Series.STEPS.day))
        return {
          tail: rows,
          budget: yield* budgetView(budget),
          alerts: alerts.slice(-ALERTS_SHOWN).reverse().map((a) => ({
            at: new Date(Number(a.ts)).toISOString(),
            kind: a.kind,
            scope: a.scope,
            window: a.time_window,
            message: a.message
          })),
          breakers: yield* circuit.snapshot(),
          ledger: {
            status: health.status,
            written,
            lost: health.lost,
            queueDepth: Math.max(0, metrics.booked() - written - health.lost)
          }
        }
      })

    /** The live part as JSON text, one reading shared by every connection (`LIVE_SHARED_MS`, less after a write). */
    const liveOf = (written: number, at: number) =>
      Effect.suspend((): Effect.Effect<string, SqlError> => {
        if (live !== undefined && at - live.at < (live.written === written ? LIVE_SHARED_MS : LIVE_AFTER_WRITE_MS)) return Effect.succeed(live.value)
        return Effect.map(readLive(written, at), (value) => {
          live = { at, written, tookMs: 0, value: JSON.stringify(value) }
          return live.value
        })
      })

    /** The charts of a window whose start moves with the clock (`since` was checked when the stream opened). */
    const chartsNow = (since: string, step: Series.Step) =>
      Effect.flatMap(SubscriptionRef.get(telemetry.written), (written) =>
        chartsLock.withPermits(1)(Effect.suspend(() => chartsOf({ since, sinceMs: Stats.sinceOf(since, now()) ?? 0, step }, written))))

    const liveNow = Effect.flatMap(SubscriptionRef.get(telemetry.written), (written) =>
      Effect.map(liveLock.withPermits(1)(Effect.suspend(() => liveOf(written, now()))), (json) => ({ at: now(), json })))

    const unavailable = event("problem", JSON.stringify({ code: "unavailable", message: "the ledger could not be read; see tollgate's log" }))

    /** A connection's `series` events: each reading it has not sent yet. */
    const seriesEvents = (since: string, step: Series.Step) =>
      Stream.repeatEffectWithSchedule(Effect.either(chartsNow(since, step)), Schedule.spaced(CHARTS_TICK)).pipe(
        Stream.mapAccum(-1, (sentAt, read): readonly [number, ReadonlyArray<Uint8Array>] =>
          read._tag === "Left" ? [-1, [unavailable]] : read.right.at === sentAt ? [sentAt, []] : [read.right.at, [event("series", read.right.value)]])
      )

    /** A connection's `live` events: when what it shows changed, and at least every second. */
    const liveEvents = Stream.repeatEffectWithSchedule(Effect.either(liveNow), Schedule.spaced(LIVE_TICK)).pipe(
      Stream.mapAccum({ json: "", at: 0 }, (sent, read): readonly [{ json: string; at: number }, ReadonlyArray<Uint8Array>] => {
        if (read._tag === "Left") return [{ json: "", at: 0 }, [unavailable]]
        const { at, json } = read.right
        if (json === sent.json && at - sent.at < 1_000) return [sent, []]
        return [{ json, at }, [event("live", `{"at":${JSON.stringify(new Date(at).toISOString())},${json.slice(1)}`)]]
      })
    )

    /**
     * `GET /admin/events?since=24h&step=hour`: the dashboard's stream, until the client goes or
     * `STREAM_LIFETIME`; 400 for a window `/admin/series` would refuse, 503 past `MAX_STREAMS`.
     */
    const stream = (url: string): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      Effect.sync(() => {
        const options = Series.optionsOf(url, now())
        if ("code" in options) return HttpServerResponse.unsafeJson({ error: options }, { status: 400 })
        if (open >= MAX_STREAMS) {
          return HttpServerResponse.unsafeJson(
            { error: { message: `${MAX_STREAMS} dashboards are already watching; close one and reload`, code: "too_many_streams" } },
            { status: 503, headers: { "retry-after": "10" } }
          )
        }
        const events = Stream.merge(seriesEvents(options.since, options.step), liveEvents).pipe(
          Stream.flattenIterables,
          Stream.interruptAfter(STREAM_LIFETIME),
          // How long EventSource waits before it reconnects, when a connection ends or breaks.
          Stream.prepend(Chunk.of(encoder.encode("retry: 1000\n\n")))
        )
        // Counted while it runs: a client gone before its first byte was never counted.
        const counted = Stream.acquireRelease(Effect.sync(() => open++), () => Effect.sync(() => open--))
        return HttpServerResponse.stream(Stream.flatMap(counted, () => events), {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      })

    /** `GET /admin/series`: the charts' data of one window, as JSON (read now, not from what the stream holds). */
    const seriesJson = (url: string): Effect.Effect<Series.Series | Series.OptionsProblem, SqlError> =>
      Effect.suspend((): Effect.Effect<Series.Series | Series.OptionsProblem, SqlError> => {
        const options = Series.optionsOf(url, now())
        return "code" in options ? Effect.succeed(options) : withSql(Series.series(options))
      })

    return { stream, seriesJson }
  })
