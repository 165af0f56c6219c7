/**
 * The `Metrics` service: the request metrics behind the admin listener's `/metrics`, as
 * `effect/Metric` values in the global registry (beside the ledger writer's, `Telemetry/Metrics.ts`).
 *
 * On the hot path this is counters and nothing that waits: `observe` is a plain function the
 * proxy calls in the step that books a request's ledger row (no Effect step of its own), and each
 * update goes straight to the metric's hook through label arrays interned per label set (Effect
 * caches a hook per label array identity). Labels are bounded (`Metrics/Labels.ts`).
 *
 * What is a state rather than an event (breakers, budgets, the ledger queue) is read when
 * `/metrics` is scraped and set on gauges then (`refreshGauges`).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Budget } from "./Budget.js"
import type { Circuit } from "./Circuit.js"
import { TollgateConfig } from "./Config.js"
import type { LedgerEvent } from "./Domain/LedgerEvent.js"
import { Labels, OTHER } from "./Metrics/Labels.js"
import { Models } from "./Models.js"
import type { Telemetry } from "./Telemetry.js"
import { enabledFromEnv } from "./Telemetry/Otel.js"

export { Labels, OTHER } from "./Metrics/Labels.js"

/** Seconds: from 5 ms (a cache hit) to 5 minutes (a long generation). */
const SECONDS = MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300])

export const requests = Metric.counter("tollgate_requests_total", {
  description: "Client requests, by provider, model, route, HTTP status and endpoint",
  incremental: true
})
export const tokens = Metric.counter("tollgate_tokens_total", {
  description: "Tokens, by provider, model and type (input, output, cached_input, cache_write, reasoning)",
  incremental: true
})
export const costUsd = Metric.counter("tollgate_cost_usd_total", {
  description: "Spend in USD of priced requests, by provider, model and route",
  incremental: true
})
export const cacheHits = Metric.counter("tollgate_cache_hits_total", {
  description: "Requests answered from the cache (kind=hit) or by an identical request's call (kind=coalesced)",
  incremental: true
})
export const cacheSavedUsd = Metric.counter("tollgate_cache_saved_usd_total", {
  description: "What cache hits and coalesced answers would have cost, USD",
  incremental: true
})
export const duration = Metric.histogram(
  "tollgate_request_duration_seconds",
  SECONDS,
  "Time from a request's arrival to the end of its answer, by provider, model and route"
)
export const ttfb = Metric.histogram(
  "tollgate_time_to_first_byte_seconds",
  SECONDS,
  "Time from a request's arrival to the first byte of its answer, by provider, model and route"
)
export const retries = Metric.counter("tollgate_retries_total", {
  description: "Retries of a target after a retryable failure, by provider, model and the failure (error type)",
  incremental: true
})
export const failovers = Metric.counter("tollgate_failovers_total", {
  description: "Requests answered (or last tried) by a target after the first, by the provider and model that answered and the route",
  incremental: true
})
export const breakerState = Metric.gauge("tollgate_breaker_state", {
  description: "Circuit breaker per target: 0 closed, 1 half-open, 2 open"
})
export const budgetLimit = Metric.gauge("tollgate_budget_limit_usd", { description: "Budget limit, USD, by scope, window and key" })
export const budgetSpent = Metric.gauge("tollgate_budget_spent_usd", { description: "Spend in the open window, USD, by scope, window and key" })
export const budgetReserved = Metric.gauge("tollgate_budget_reserved_usd", {
  description: "Reserved by requests in flight, USD, by scope, window and key"
})
export const ledgerQueueDepth = Metric.gauge("tollgate_ledger_queue_depth", {
  description: "Ledger rows booked but not yet written (queued or in the batch being written)"
})
export const ledgerRowsWritten = Metric.gauge("tollgate_ledger_rows_written", {
  description: "Ledger rows written since start"
})

const TOKEN_TYPES = ["input", "output", "cached_input", "cache_write", "reasoning"] as const

export class Metrics extends Context.Tag("tollgate/Metrics")<Metrics, {
  /** Counts a booked ledger row: call it where the row is booked, once per row. Plain and synchronous. */
  readonly observe: (row: LedgerEvent) => void
  /** Counts one retry of a target. */
  readonly retried: (provider: string, model: string, reason: string) => void
  /** The label values allowed (models are added as the providers list them). */
  readonly labels: Labels
  /** Rows observed since start (booked for the ledger). */
  readonly booked: () => number
}>() {}

/**
 * Label arrays, one per distinct label set, kept so that Effect's hook cache (keyed by array
 * identity) hits: found by walking a tree of maps with the values as they are (a status as its
 * number), so that finding one allocates nothing.
 */
interface Node {
  readonly next: Map<string | number, Node>
  labels: ReadonlyArray<MetricLabel.MetricLabel> | undefined
}
const node = (): Node => ({ next: new Map(), labels: undefined })

class Interned {
  private readonly root = node()
  constructor(private readonly names: ReadonlyArray<string>) {}
  of(a: string, b: string, c: string, d?: string | number, e?: string): ReadonlyArray<MetricLabel.MetricLabel> {
    let at = this.step(this.step(this.step(this.root, a), b), c)
    if (d !== undefined) at = this.step(at, d)
    if (e !== undefined) at = this.step(at, e)
    return at.labels ??= [a, b, c, d, e].slice(0, this.names.length).map((value, i) => MetricLabel.make(this.names[i]!, String(value)))
  }
  private step(from: Node, value: string | number): Node {
    let to = from.next.get(value)
    if (to === undefined) {
      to = node()
      from.next.set(value, to)
    }
    return to
  }
}

/**
 * The metrics of this configuration. With `counting` false (nothing can read them: no admin
 * listener, no OTLP export) a row is only counted as booked, and no series is touched.
 */
export const make = (config: TollgateConfig["Type"], counting = true): Metrics["Type"] => {
  const labels = new Labels(config)
  const requestLabels = new Interned(["provider", "model", "route", "status", "endpoint"])
  const targetLabels = new Interned(["provider", "model", "route"])
  const tokenLabels = new Interned(["provider", "model", "type"])
  const hitLabels = new Interned(["provider", "model", "route", "kind"])
  const retryLabels = new Interned(["provider", "model", "reason"])
  let booked = 0

  const countTokens = (provider: string, model: string, type: number, n: number | null | undefined): void => {
    if (n !== null && n !== undefined && n > 0) tokens.unsafeUpdate(n, tokenLabels.of(provider, model, TOKEN_TYPES[type]!))
  }

  const observe = (row: LedgerEvent): void => {
    booked++
    const provider = labels.provider(row.provider)
    const model = labels.model(row.servedModel ?? row.requestedModel)
    const route = labels.route(row.route)
    requests.unsafeUpdate(1, requestLabels.of(provider, model, route, row.status, row.endpoint))
    const target = targetLabels.of(provider, model, route)
    duration.unsafeUpdate(row.latencyMs / 1000, target)
    if (row.ttfbMs !== null) ttfb.unsafeUpdate(row.ttfbMs / 1000, target)
    if (row.costUsd !== null && row.costUsd > 0) costUsd.unsafeUpdate(row.costUsd, target)
    if (row.failover) failovers.unsafeUpdate(1, target)
    if (row.cacheStatus === "hit" || row.cacheStatus === "coalesced") {
      cacheHits.unsafeUpdate(1, hitLabels.of(provider, model, route, row.cacheStatus))
      if (row.savedUsd !== null && row.savedUsd > 0) cacheSavedUsd.unsafeUpdate(row.savedUsd, target)
    }
    countTokens(provider, model, 0, row.inputTokens)
    countTokens(provider, model, 1, row.outputTokens)
    countTokens(provider, model, 2, row.cachedInputTokens)
    countTokens(provider, model, 3, row.cacheWriteTokens)
    countTokens(provider, model, 4, row.reasoningTokens)
  }

  if (!counting) {
    return Metrics.of({
      observe: () => void booked++,
      retried: () => {},
      labels,
      booked: () => booked
    })
  }
  return Metrics.of({
    observe,
    retried: (provider, model, reason) => retries.unsafeUpdate(1, retryLabels.of(labels.provider(provider), labels.model(model), reason)),
    labels,
    booked: () => booked
  })
}

/** How often the providers' model lists are read again for label values (they refresh on their own schedule). */
const MODELS_EVERY = "10 minutes"

/**
 * The metrics for the configuration; models the providers list become label values as they are
 * listed. Counted only where something reads them: the admin listener's `/metrics`, or the OTLP
 * export (`OTEL_EXPORTER_OTLP_ENDPOINT`); with `server.admin: false` and no OTLP, not at all.
 */
export const layerWithoutDependencies: Layer.Layer<Metrics, never, TollgateConfig | Models> = Layer.scoped(
  Metrics,
  Effect.gen(function*() {
    const config = yield* TollgateConfig
    const otlp = yield* enabledFromEnv
    const metrics = make(config, config.server.admin !== false || otlp)
    const models = yield* Models
    yield* models.list.pipe(
      Effect.tap((all) => Effect.sync(() => all.forEach((m) => metrics.labels.allowModel(m.id)))),
      Effect.repeat(Schedule.spaced(MODELS_EVERY)),
      Effect.forkScoped
    )
    return metrics
  })
)

const STATE_VALUE = { closed: 0, "half-open": 1, open: 2 } as const

/**
 * Sets the gauges that mirror a state (breakers, budgets, the ledger queue) from the services, at
 * scrape time. Targets whose model is not a label value of its own share the `other` series (the
 * worst state wins); budget lines counted per client, project or session are summed under `*`.
 */
export const refreshGauges = (services: {
  readonly metrics: Metrics["Type"]
  readonly circuit: Circuit["Type"]
  readonly budget: Budget["Type"]
  readonly telemetry: Telemetry["Type"]
}): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { budget, circuit, metrics, telemetry } = services
    const breakers = yield* circuit.snapshot()
    const states = new Map<string, { provider: string; model: string; value: number }>()
    for (const b of breakers) {
      const slash = b.target.indexOf("/")
      const provider = metrics.labels.provider(slash === -1 ? b.target : b.target.slice(0, slash))
      const model = slash === -1 ? OTHER : metrics.labels.model(b.target.slice(slash + 1))
      const key = `${provider}/${model}`
      const value = STATE_VALUE[b.state]
      const seen = states.get(key)
      if (seen === undefined || seen.value < value) states.set(key, { provider, model, value })
    }
    for (const { model, provider, value } of states.values()) {
      breakerState.unsafeUpdate(value, [MetricLabel.make("provider", provider), MetricLabel.make("model", model)])
    }

    const lines = yield* budget.status
    const sums = new Map<string, { scope: string; window: string; key: string; limit: number; spent: number; reserved: number }>()
    for (const line of lines) {
      const key = line.key === null ? "" : metrics.labels.budgetKey(line.key)
      const id = `${line.scope}|${line.window}|${key}`
      const sum = sums.get(id) ?? { scope: line.scope, window: line.window, key, limit: line.limitUsd, spent: 0, reserved: 0 }
      sum.spent += line.spentUsd
      sum.reserved += line.reservedUsd
      sums.set(id, sum)
    }
    for (const s of sums.values()) {
      const tags = [MetricLabel.make("scope", s.scope), MetricLabel.make("window", s.window), MetricLabel.make("key", s.key)]
      budgetLimit.unsafeUpdate(s.limit, tags)
      budgetSpent.unsafeUpdate(s.spent, tags)
      budgetReserved.unsafeUpdate(s.reserved, tags)
    }

    const written = yield* SubscriptionRef.get(telemetry.written)
    const health = yield* SubscriptionRef.get(telemetry.health)
    ledgerRowsWritten.unsafeUpdate(written, [])
    ledgerQueueDepth.unsafeUpdate(Math.max(0, metrics.booked() - written - health.lost), [])
  })
