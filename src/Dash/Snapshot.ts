/**
 * What the terminal dashboard shows, read from a running tollgate's admin listener: `/debug/status`
 * (uptime, breakers, the ledger writer), `/admin/stats` since local midnight (totals and per model,
 * at most every `STATS_EVERY_MS`), `/admin/budget` and `/admin/recent`. One snapshot per refresh,
 * its reads at once; requests per second come from two snapshots' counts of booked rows (`rateOf`).
 *
 * A failure is one of three things a person can act on: nothing answers (`AdminUnreachable`), the
 * listener wants a key (`AdminUnauthorized`), or something answers that is not tollgate's admin
 * listener (`AdminBadAnswer`).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

export class AdminUnreachable extends Data.TaggedError("AdminUnreachable")<{ readonly url: string; readonly reason: string }> {
  override get message() {
    return `cannot reach tollgate's admin listener at ${this.url} (${this.reason}). Is tollgate running? ` +
      "Start it with `tollgate start`, or point --admin at its admin listener (server.admin, 127.0.0.1:4101 by default)"
  }
}

export class AdminUnauthorized extends Data.TaggedError("AdminUnauthorized")<{ readonly url: string; readonly keyGiven: boolean }> {
  override get message() {
    return this.keyGiven
      ? `the admin listener at ${this.url} refused the key given (--key or TOLLGATE_ADMIN_KEY): it is not one of its server.adminKeys`
      : `the admin listener at ${this.url} needs a key: pass --key (or set TOLLGATE_ADMIN_KEY) with one of its server.adminKeys`
  }
}

export class AdminBadAnswer extends Data.TaggedError("AdminBadAnswer")<{ readonly url: string; readonly reason: string }> {
  override get message() {
    return `${this.url} did not answer as tollgate's admin listener does (${this.reason}); check --admin`
  }
}

export type DashError = AdminUnreachable | AdminUnauthorized | AdminBadAnswer

const Usd = Schema.NullOr(Schema.Number)

const StatsRow = Schema.Struct({
  group: Schema.String,
  requests: Schema.Number,
  errors: Schema.Number,
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  costUsd: Usd,
  savedUsd: Usd,
  cacheHits: Schema.Number,
  p50LatencyMs: Schema.NullOr(Schema.Number),
  p95LatencyMs: Schema.NullOr(Schema.Number)
})
const Stats = Schema.Struct({ rows: Schema.Array(StatsRow) })

const Status = Schema.Struct({
  version: Schema.String,
  uptimeSeconds: Schema.Number,
  breakers: Schema.Array(Schema.Struct({
    target: Schema.String,
    state: Schema.Literal("closed", "open", "half-open"),
    retryAfterMs: Schema.Number
  })),
  ledger: Schema.Struct({ status: Schema.String, booked: Schema.Number, queueDepth: Schema.Number })
})

const BudgetStatus = Schema.Struct({
  enabled: Schema.Boolean,
  limits: Schema.Array(Schema.Struct({
    scope: Schema.String,
    key: Schema.NullOr(Schema.String),
    window: Schema.String,
    limitUsd: Schema.Number,
    spentUsd: Schema.Number,
    reservedUsd: Schema.Number,
    resetsAt: Schema.NullOr(Schema.String)
  })),
  blocks: Schema.Array(Schema.Struct({ session: Schema.String }))
})

const RecentRequests = Schema.Struct({
  requests: Schema.Array(Schema.Struct({
    time: Schema.String,
    model: Schema.NullOr(Schema.String),
    provider: Schema.NullOr(Schema.String),
    route: Schema.NullOr(Schema.String),
    status: Schema.Number,
    inputTokens: Schema.NullOr(Schema.Number),
    outputTokens: Schema.NullOr(Schema.Number),
    costUsd: Usd,
    latencyMs: Schema.Number,
    cache: Schema.NullOr(Schema.String)
  }))
})

export type StatsRow = typeof StatsRow.Type
export type RecentRow = (typeof RecentRequests.Type)["requests"][number]

export interface Snapshot {
  /** When it was read (Unix ms). */
  readonly at: number
  readonly admin: string
  readonly version: string
  readonly uptimeSeconds: number
  /** Rows booked since the server started: the count requests per second are taken from. */
  readonly booked: number
  readonly ledger: { readonly status: string; readonly queueDepth: number }
  /** When the ledger's totals below were read (Unix ms): they are read less often than the rest. */
  readonly statsAt: number
  /** Totals since local midnight (the ledger's). */
  readonly today: StatsRow | undefined
  readonly models: ReadonlyArray<StatsRow>
  readonly breakers: (typeof Status.Type)["breakers"]
  readonly budget: typeof BudgetStatus.Type
  readonly recent: ReadonlyArray<RecentRow>
}

/** Midnight of `now`'s day in this machine's time zone (Unix ms). */
export const startOfDay = (now: number): number => {
  const d = new Date(now)
  d.setHours(0, 0, 0, 0)
  return d.getTime()
}

/** Requests per second between two snapshots of the same server; undefined without an earlier one (or after a restart). */
export const rateOf = (previous: Snapshot | undefined, current: Snapshot): number | undefined => {
  if (previous === undefined || current.booked < previous.booked || current.at <= previous.at) return undefined
  return (current.booked - previous.booked) / ((current.at - previous.at) / 1000)
}

/** The admin listener's base URL as given (`127.0.0.1:4101`, `http://host:port/`), without a trailing slash. */
export const normalizeUrl = (text: string): string => {
  const trimmed = text.trim().replace(/\/+$/, "")
  return /^https?:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`
}

/**
 * The ledger's totals are two aggregate queries over today's rows on the server's ledger: read at
 * most this often, whatever the refresh interval, and kept in between.
 */
export const STATS_EVERY_MS = 5_000

/**
 * Reads one snapshot from the admin listener at `admin` (a base URL), with `key` as a bearer token
 * if given; the ledger's totals are `previous`'s while they are younger than `STATS_EVERY_MS` and
 * of the same day.
 */
export const read = (options: {
  readonly admin: string
  readonly key: string | undefined
  readonly recent: number
  readonly now: number
  readonly previous?: Snapshot | undefined
}) =>
  Effect.gen(function*() {
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const { admin, key } = options
    const get = <A, I>(path: string, schema: Schema.Schema<A, I>) => {
      const url = `${admin}${path}`
      const request = key === undefined ? HttpClientRequest.get(url) : HttpClientRequest.get(url).pipe(HttpClientRequest.bearerToken(key))
      return client.execute(request).pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(schema)),
        Effect.scoped,
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new AdminUnreachable({ url: admin, reason: "no answer within 5 seconds" }) }),
        Effect.catchTags({
          RequestError: (error) => Effect.fail(new AdminUnreachable({ url: admin, reason: reasonOf(error.cause) ?? error.message })),
          ResponseError: (error) =>
            error.response.status === 401
              ? Effect.fail(new AdminUnauthorized({ url: admin, keyGiven: key !== undefined }))
              : Effect.fail(new AdminBadAnswer({ url: admin, reason: error.reason === "StatusCode" ? `GET ${path} answered ${error.response.status}` : error.message })),
          ParseError: () => Effect.fail(new AdminBadAnswer({ url: admin, reason: `GET ${path} answered an unexpected shape` }))
        })
      )
    }
    const day = startOfDay(options.now)
    const previous = options.previous
    const kept = previous !== undefined && options.now - previous.statsAt < STATS_EVERY_MS && previous.statsAt >= day
      ? previous
      : undefined
    const since = encodeURIComponent(new Date(day).toISOString())
    const stats = kept !== undefined
      ? Effect.succeed({ statsAt: kept.statsAt, today: kept.today, models: kept.models })
      : Effect.map(
        Effect.all([get(`/admin/stats?since=${since}`, Stats), get(`/admin/stats?since=${since}&by=model`, Stats)], { concurrency: "unbounded" }),
        ([total, models]) => ({ statsAt: options.now, today: total.rows[0], models: models.rows })
      )
    // The first answer that fails says why for all: the others are not waited for.
    const [status, ledger, budget, recent] = yield* Effect.all([
      get("/debug/status", Status),
      stats,
      get("/admin/budget", BudgetStatus),
      get(`/admin/recent?limit=${options.recent}`, RecentRequests)
    ], { concurrency: "unbounded" })
    return {
      at: options.now,
      admin,
      version: status.version,
      uptimeSeconds: status.uptimeSeconds,
      booked: status.ledger.booked,
      ledger: { status: status.ledger.status, queueDepth: status.ledger.queueDepth },
      ...ledger,
      breakers: status.breakers,
      budget,
      recent: recent.requests
    } satisfies Snapshot
  })

/** The system error's code or message under a failed request (`ECONNREFUSED`), if there is one. */
const reasonOf = (cause: unknown): string | undefined => {
  let at: unknown = cause
  for (let depth = 0; depth < 4 && typeof at === "object" && at !== null; depth++) {
    const code = (at as { code?: unknown }).code
    if (typeof code === "string") return code
    at = (at as { cause?: unknown }).cause
  }
  return cause instanceof Error ? cause.message : undefined
}
