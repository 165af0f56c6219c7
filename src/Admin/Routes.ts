/**
 * The admin listener's routes: `/metrics` (Prometheus text), `/admin/*` (stats, budget, reload)
 * and `/debug/*` (routes, status). Built once on the running services, so a request carries no
 * requirement but itself. Every answer is JSON except `/metrics`; every failure is a JSON error
 * with no stack trace (the log has the details).
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
import { createRequire } from "node:module"
import { Budget } from "../Budget.js"
import { Circuit } from "../Circuit.js"
import { TollgateConfig } from "../Config.js"
import * as Money from "../Domain/Money.js"
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
  "/metrics": ["GET"],
  "/admin/stats": ["GET"],
  "/admin/budget": ["GET"],
  "/admin/reload": ["POST"],
  "/debug/routes": ["GET"],
  "/debug/status": ["GET"]
}

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
  const clock = yield* Effect.clock
  const startedAt = clock.unsafeCurrentTimeMillis()
  const keys = new Set(config.server.adminKeys)
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

  const budgetStatus = Effect.zipWith(budget.status, budget.blocks, (limits, blocks) =>
    HttpServerResponse.unsafeJson({
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

  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/metrics", metricsText),
    HttpRouter.get("/admin/stats", stats),
    HttpRouter.get("/admin/budget", budgetStatus),
    HttpRouter.post("/admin/reload", reload),
    HttpRouter.get("/debug/routes", routes),
    HttpRouter.get("/debug/status", status)
  )

  /** An unknown path is 404 with what is served; a known one with another method is 405 with `Allow`. */
  const notRouted = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const path = new URL(request.url, "http://admin").pathname
    const methods = PATHS[path]
    if (methods !== undefined && !methods.includes(request.method)) {
      return error(405, "method_not_allowed", `${request.method} ${path} is not served here: use ${methods.join(", ")}`, { allow: methods.join(", ") })
    }
    const served = Object.entries(PATHS).map(([p, m]) => `${m.join("|")} ${p}`).join(", ")
    return error(404, "not_found", `Unknown admin URL: ${request.method} ${path}. The admin listener serves ${served}`)
  })

  const authorized = (headers: Headers.Headers): boolean => {
    if (keys.size === 0) return true
    const auth = headers["authorization"]
    const key = auth?.toLowerCase().startsWith("bearer ") ? auth.slice(7).trim() : headers["x-api-key"]
    return key !== undefined && keys.has(key)
  }

  const app: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> = Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) =>
      !authorized(request.headers)
        ? Effect.succeed(error(401, "unauthorized", "Missing or unknown admin key (server.adminKeys): send Authorization: Bearer <key>"))
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
  )
  return app
})
