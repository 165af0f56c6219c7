/**
 * What the request program learns about one request as it moves along, and the one ledger row it
 * becomes. Fields are filled in as they are known, so that whenever the request ends (answered,
 * failed, or its client gone) the row says how far it got.
 */
import type * as Headers from "@effect/platform/Headers"
import * as ClientHeaders from "../Domain/ClientHeaders.js"
import type { LedgerEvent } from "../Domain/LedgerEvent.js"
import type { Usage } from "../Domain/Usage.js"
import { Trail } from "../Failover.js"

/** What the end of a request adds to its row. */
export interface Outcome {
  readonly status: number
  readonly errorType: string | null
  readonly usage: Usage | undefined
  readonly servedModel: string | null
  readonly ttfbMs: number | null
  readonly aborted: boolean
}

export interface RecordContext {
  readonly ts: number
  readonly requestId: string
  readonly endpoint: string
  readonly headers: Headers.Headers
  readonly clientHash: string | null
  readonly elapsedMs: () => number
  /** `Pricing.costOf`: the provider that served it (the simulated one costs $0) and when. */
  readonly costOf: (model: string, usage: Usage, provider?: string | null, atMs?: number) => number | null
  /** What an unpriced model's usage is booked at (`budget.unpriced: estimate`); the row then says `priced = 0`. */
  readonly fallbackCostOf?: ((usage: Usage) => number) | undefined
}

export class RequestRecord {
  route: string | null = null
  rule: string | null = null
  requestedModel: string | null = null
  stream = false
  /** hit | miss | coalesced | refresh | bypass | off */
  cacheStatus = "off"
  /** A cache hit was bought from this provider, earlier. */
  hitProvider: string | null = null
  /** Targets the router left out, `provider/model:reason`. */
  routeSkipped: ReadonlyArray<string> = []
  /** Earlier steps of a cascade: `model:outcome:cost`, and what they cost together. */
  readonly cascadeSteps: Array<string> = []
  cascadeCostUsd = 0
  cascadeUnpriced = false
  /** Some of the cost is at the fallback price of an unpriced model. */
  estimated = false
  /** Budget downgrade: the model the router chose before the budget swapped it. */
  downgradedFrom: string | null = null
  readonly trail = new Trail()

  constructor(readonly context: RecordContext) {}

  /** A step's cost at its provider's price, or the fallback for an unpriced model where one is set (noted as estimated). */
  costOf(model: string, usage: Usage, provider: string | null): number | null {
    const priced = this.context.costOf(model, usage, provider, this.context.ts)
    if (priced !== null || this.context.fallbackCostOf === undefined) return priced
    this.estimated = true
    return this.context.fallbackCostOf(usage)
  }

  event(outcome: Outcome): LedgerEvent {
    const c = this.context
    const usage = outcome.usage
    const servedBy = this.hitProvider ?? this.trail.target?.provider.name ?? null
    const stepCost = usage !== undefined && outcome.servedModel !== null ? this.costOf(outcome.servedModel, usage, servedBy) : null
    const cascaded = this.cascadeSteps.length > 0
    // A cascade's total is unpriced (null) as soon as any step that has tokens has no price.
    const cost = !cascaded
      ? stepCost
      : this.cascadeUnpriced || (usage !== undefined && stepCost === null)
      ? null
      : this.cascadeCostUsd + (stepCost ?? 0)
    // A hit or a shared answer cost nothing more: what it would have cost was saved.
    const free = this.cacheStatus === "hit" || this.cacheStatus === "coalesced"
    const trail = this.trail
    const skipped = [...this.routeSkipped, ...trail.skipped]
    return {
      ts: c.ts,
      requestId: c.requestId,
      endpoint: c.endpoint,
      route: this.route,
      rule: this.rule,
      provider: this.hitProvider ?? trail.target?.provider.name ?? null,
      requestedModel: this.requestedModel,
      // The provider names it: kept as long as a client's could be.
      servedModel: outcome.servedModel === null ? null : ClientHeaders.kept(outcome.servedModel),
      stream: this.stream,
      status: outcome.status,
      errorType: outcome.errorType,
      attempts: trail.attempts,
      failover: trail.failover,
      attemptErrors: trail.failures.length === 0 ? null : trail.failures.join(","),
      skipped: skipped.length === 0 ? null : skipped.join(","),
      cacheStatus: this.cacheStatus,
      inputTokens: usage?.inputTokens ?? null,
      outputTokens: usage?.outputTokens ?? null,
      cachedInputTokens: usage?.cachedInputTokens ?? null,
      cacheWriteTokens: usage?.cacheWriteTokens ?? null,
      cacheWrite1hTokens: usage?.cacheWrite1hTokens ?? null,
      reasoningTokens: usage?.reasoningTokens ?? null,
      costUsd: free && cost !== null ? 0 : cost,
      priced: cost !== null && !this.estimated,
      savedUsd: free ? cost : null,
      usageSource: usage?.source ?? null,
      latencyMs: c.elapsedMs(),
      ttfbMs: outcome.ttfbMs,
      aborted: outcome.aborted,
      clientHash: c.clientHash,
      userAgent: ClientHeaders.kept(c.headers["user-agent"]),
      project: ClientHeaders.kept(c.headers["x-tollgate-project"]),
      session: ClientHeaders.kept(ClientHeaders.sessionOf(c.headers)),
      cascade: cascaded ? this.cascadeSteps.join(",") : null,
      downgradedFrom: this.downgradedFrom
    }
  }
}
