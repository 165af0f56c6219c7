/**
 * The admin listener's routes: the web dashboard (`/`, its files under `/assets/`, its data from
 * `/admin/series` and `/admin/events`), `/metrics` (Prometheus text), `/admin/*` (stats, budget,
 * the recent requests, reload) and `/debug/*` (routes, status). Built once on the running
 * services, so a request carries no requirement but itself. Every answer is JSON except
 * `/metrics`, the dashboard's files and its event stream; every failure is a JSON error with no
 * stack trace (the log has the details).
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { createHash } from "node:crypto"
import { createRequire } from "node:module"
import { Budget } from "../Budget.js"
import { Circuit } from "../Circuit.js"
import { TollgateConfig } from "../Config.js"
import * as Metrics from "../Metrics.js"
import * as Prometheus from "../Metrics/Prometheus.js"
import * as LedgerMetrics from "../Telemetry/Metrics.js"
import { LiveConfig } from "../Reload.js"
import { Latency } from "../Router/Latency.js"
import * as Stats from "../Stats.js"
import { Telemetry } from "../Telemetry.js"
import * as Ingest from "../Telemetry/Ingest.js"
import * as Outbox from "../Telemetry/Outbox.js"
import { baseUrlOf } from "../Upstream/Kinds.js"
import * as DashboardFiles from "../Node/DashboardFiles.js"
import * as Events from "./Events.js"
import * as Recent from "./Recent.js"

/** The package's version: this module is two levels under the package root, in src/ and in dist/ (and dist/chunks/ bundled). */
const VERSION = (() => {
  try {
    return (createRequire(import.meta.url)("../../package.json") as { version: string }).version
  } catch {
    return "unknown"
  }
})()

/** What the admin listener serves, by path: the methods each answers (for 405s and the 404's list). */
export const PATHS: Readonly<Record<string, ReadonlyArray<string>>> = {
  "/": ["GET"],
  "/admin/series": ["GET"],
  "/admin/events": ["GET"],
  "/metrics": ["GET"],
  "/admin/stats": ["GET"],
  "/admin/budget": ["GET"],
  "/admin/recent": ["GET"],
  "/admin/reload": ["POST"],
  "/debug/routes": ["GET"],
  "/debug/status": ["GET"]
}

/** The dashboard's files other than the page, served under `/assets/`. */
const ASSETS: ReadonlyArray<readonly [DashboardFiles.Name, string]> = [
  ["dashboard.js", "text/javascript; charset=utf-8"],
  ["dashboard.css", "text/css; charset=utf-8"],
  ["uPlot.iife.min.js", "text/javascript; charset=utf-8"],
  ["uPlot.min.css", "text/css; charset=utf-8"]
]

/** Everything the page loads comes from this listener; nothing may be framed or sniffed, no address leaks in a referrer. */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache"
}

/**
 * The cookie that lets a browser read the admin listener with a key given once (`/?key=`), since
 * EventSource cannot send headers. It holds a hash of the key, not the key, and opens GETs only:
 * a reload still needs the key in a header.
 */
const COOKIE = "tollgate_admin"
const cookieOf = (key: string): string => createHash("sha256").update(`tollgate-admin:${key}`).digest("hex")

/** A short HTML page (a refusal the browser shows); no icon, so the browser asks for no `/favicon.ico`. */
const page = (status: number, title: string, body: string) =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${title}</title></head><body><main><h1>${title}</h1><p>${body}</p></main></body></html>`,
    { status, contentType: "text/html; charset=utf-8", headers: PAGE_HEADERS }
  )

const error = (status: number, code: string, message: string, headers?: Headers.Input) =>
  HttpServerResponse.unsafeJson({ error: { message, code } }, { status, ...(headers === undefined ? {} : { headers }) })

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const metrics = yield* Metrics.Metrics
  const circuit = yield* Circuit
  const budget = yield* Budget
  const telemetry = yield* Telemetry
  const live = yield* LiveConfig
  const latency = yield* Latency
  const sql = yield* SqlClient.SqlClient
  // Cloud ingest's sender, where the graph has one and ingest is on.
  const ingest = Option.flatten(yield* Effect.serviceOption(Ingest.Ingest))
  const recent = yield* Recent.Recent
  const clock = yield* Effect.clock
  const startedAt = clock.unsafeCurrentTimeMillis()
  const keys = new Set(config.server.adminKeys)
  const cookies = new Set([...keys].map(cookieOf))
  const events = yield* Events.make({ sql, budget, circuit, telemetry, metrics })
  const files = yield* Effect.either(DashboardFiles.read)
  if (files._tag === "Left") yield* Effect.logWarning(`admin: ${files.left}; the other admin endpoints serve on`)
  // Series without labels are shown from the first scrape, at 0, rather than from their first event.
  for (const metric of [LedgerMetrics.rowsLost, LedgerMetrics.writeFailures, LedgerMetrics.requestsRefused]) metric.register()

  // Cloud ingest's backlog, counted when scraped (an index holds only the unsent rows).
  const ingestBacklog = Option.isNone(ingest)
    ? Effect.void
    : Outbox.backlog.pipe(
      Effect.flatMap((backlog) => Metric.set(Ingest.backlogRows, backlog.rows)),
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.ignore
    )
  const metricsText = Effect.zipRight(
    Effect.zipRight(Metrics.refreshGauges({ metrics, circuit, budget, telemetry }), ingestBacklog),
    Effect.map(Metric.snapshot, (pairs) => HttpServerResponse.text(Prometheus.render(pairs), { contentType: Prometheus.CONTENT_TYPE }))
  )

  const stats = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const options = Stats.optionsOf(request.url, clock.unsafeCurrentTimeMillis())
    if ("code" in options) return Effect.succeed(error(400, options.code, options.message))
    return Effect.map(Stats.summary({ ...options, ingest: config.cloud !== undefined }).pipe(Effect.provideService(SqlClient.SqlClient, sql)), (summary) => HttpServerResponse.unsafeJson(summary))
  })

  const budgetStatus = Effect.map(Events.budgetView(budget), (view) => HttpServerResponse.unsafeJson(view))

  const series = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.map(events.seriesJson(request.url), (answer) => "code" in answer ? error(400, answer.code, answer.message) : HttpServerResponse.unsafeJson(answer)))

  const eventStream = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => events.stream(request.url))

  const dashboard = files._tag === "Left"
    ? Effect.succeed(page(503, "tollgate: no dashboard", files.left))
    : Effect.succeed(HttpServerResponse.uint8Array(files.right["index.html"], { contentType: "text/html; charset=utf-8", headers: PAGE_HEADERS }))

  const asset = (name: DashboardFiles.Name, contentType: string) =>
    files._tag === "Left"
      ? Effect.succeed(error(503, "no_dashboard", files.left))
      : Effect.succeed(HttpServerResponse.uint8Array(files.right[name], { contentType, headers: PAGE_HEADERS }))

  const recentRequests = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const limit = Recent.limitOf(request.url, recent.capacity)
    return typeof limit === "number"
      ? HttpServerResponse.unsafeJson({ capacity: recent.capacity, requests: recent.latest(limit) })
      : error(400, limit.code, limit.message)
  })

  const reload = Effect.map(live.reload, (outcome) => {
    switch (outcome._tag) {
      case "Applied":
        return HttpServerResponse.unsafeJson({ status: "applied", source: outcome.source, restartNeededFor: outcome.ignored })
      case "Unchanged":
        return HttpServerResponse.unsafeJson({ status: "unchanged", source: outcome.source })
      case "Refused":
        return HttpServerResponse.unsafeJson({ status: "refused", source: outcome.source, error: outcome.message }, { status: 422 })
      case "NoFile":
        return HttpServerResponse.unsafeJson(
          { status: "no_config_file", error: "no config file is in use: start tollgate with --config (or a tollgate.yaml) to reload one" },
          { status: 409 }
        )
    }
  })

  const routes = Effect.sync(() => {
    const running = live.get()
    return HttpServerResponse.unsafeJson({
      source: running.source ?? null,
      providers: running.providers.map((p) => ({ name: p.name, kind: p.config.kind, baseUrl: baseUrlOf(p.config) ?? null, keyMissing: p.missingKeyEnv ?? null })),
      defaultProvider: running.providers[0]?.name ?? null,
      routes: running.routes,
      models: running.models
    })
  })

  const status = Effect.gen(function*() {
    const now = clock.unsafeCurrentTimeMillis()
    const breakers = yield* circuit.snapshot()
    const ttfb = yield* latency.snapshot()
    const health = yield* SubscriptionRef.get(telemetry.health)
    const written = yield* SubscriptionRef.get(telemetry.written)
    const reloads = yield* SubscriptionRef.get(live.status)
    const sending = Option.isNone(ingest) ? undefined : yield* SubscriptionRef.get(ingest.value.state)
    return HttpServerResponse.unsafeJson({
      version: VERSION,
      // Which process answered: with `start --workers`, each worker has an admin listener of its own.
      pid: process.pid,
      startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
      breakers,
      latency: [...ttfb].map(([target, ms]) => ({ target, ttfbMsAverage: Math.round(ms * 10) / 10 })),
      ledger: {
        ...health,
        booked: metrics.booked(),
        written,
        queueDepth: Math.max(0, metrics.booked() - written - health.lost),
        refusing: telemetry.refusing()
      },
      reload: { ...reloads, watching: config.watch },
      ingest: Option.isNone(ingest) || sending === undefined ? null : {
        target: ingest.value.origin,
        workspaceId: ingest.value.workspaceId,
        failingSince: sending.failingSince === null ? null : new Date(sending.failingSince).toISOString(),
        lastError: sending.lastError,
        delivered: sending.delivered,
        attempts: sending.attempts
      }
    })
  })

  const router = ASSETS.reduce((r, [name, type]) => HttpRouter.get(r, `/assets/${name}`, asset(name, type)), HttpRouter.empty).pipe(
    HttpRouter.get("/", dashboard),
    HttpRouter.get("/admin/series", series),
    HttpRouter.get("/admin/events", eventStream),
    HttpRouter.get("/metrics", metricsText),
    HttpRouter.get("/admin/stats", stats),
    HttpRouter.get("/admin/budget", budgetStatus),
    HttpRouter.get("/admin/recent", recentRequests),
    HttpRouter.post("/admin/reload", reload),
    HttpRouter.get("/debug/routes", routes),
    HttpRouter.get("/debug/status", status)
  )

  /** An unknown path is 404 with what is served; a known one with another method is 405 with `Allow`. */
  const notRouted = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const path = new URL(request.url, "http://admin").pathname
    const methods = PATHS[path] ?? (ASSETS.some(([name]) => path === `/assets/${name}`) ? ["GET"] : undefined)
    if (methods !== undefined && !methods.includes(request.method)) {
      return error(405, "method_not_allowed", `${request.method} ${path} is not served here: use ${methods.join(", ")}`, { allow: methods.join(", ") })
    }
    const served = Object.entries(PATHS).map(([p, m]) => `${m.join("|")} ${p}`).join(", ")
    return error(404, "not_found", `Unknown admin URL: ${request.method} ${path}. The admin listener serves ${served}`)
  })

  /** A key in `Authorization: Bearer` or `x-api-key`; for a GET, the dashboard's cookie too. */
  const authorized = (request: HttpServerRequest.HttpServerRequest): boolean => {
    if (keys.size === 0) return true
    const headers = request.headers
    const auth = headers["authorization"]
    const key = auth?.toLowerCase().startsWith("bearer ") ? auth.slice(7).trim() : headers["x-api-key"]
    if (key !== undefined) return keys.has(key)
    const cookie = request.cookies[COOKIE]
    return request.method === "GET" && cookie !== undefined && cookies.has(cookie)
  }

  /**
   * `GET /?key=...`: a browser's way in when admin keys are set. A known key sets the cookie and
   * sends the browser to `/` (so the key leaves the address bar); an unknown one is refused.
   */
  const signIn = (request: HttpServerRequest.HttpServerRequest): HttpServerResponse.HttpServerResponse | undefined => {
    if (request.method !== "GET" || !request.url.startsWith("/?")) return undefined
    const key = new URL(request.url, "http://admin").searchParams.get("key")
    if (key === null) return undefined
    if (keys.size === 0) return HttpServerResponse.redirect("/", { status: 303, headers: PAGE_HEADERS })
    if (!keys.has(key)) return page(401, "tollgate: unknown admin key", "That key is not one of server.adminKeys.")
    return HttpServerResponse.redirect("/", { status: 303, headers: PAGE_HEADERS }).pipe(
      HttpServerResponse.unsafeSetCookie(COOKIE, cookieOf(key), { httpOnly: true, sameSite: "strict", path: "/" })
    )
  }

  const refused = (request: HttpServerRequest.HttpServerRequest) =>
    new URL(request.url, "http://admin").pathname === "/"
      ? page(401, "tollgate: admin key needed", "This dashboard needs one of server.adminKeys: open /?key=&lt;key&gt; once; it sets a cookie for this browser session.")
      : error(401, "unauthorized", "Missing or unknown admin key (server.adminKeys): send Authorization: Bearer <key>")

  const app: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> = Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => {
      const signedIn = signIn(request)
      if (signedIn !== undefined) return Effect.succeed(signedIn)
      return !authorized(request)
        ? Effect.succeed(refused(request))
        : router.pipe(
          Effect.catchTag("RouteNotFound", () => notRouted),
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.failCause(cause as Cause.Cause<never>)
              : Effect.as(
                Effect.logError(`admin: ${request.method} ${request.url} failed`, cause),
                error(500, "internal_error", "tollgate hit an internal error; see its log")
              )
          )
        )
    }
  )
  return app
})
