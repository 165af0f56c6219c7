/**
 * What the `Router` decides, and the error when nothing can serve: the values the proxy executes
 * and `tollgate route explain` prints.
 */
import * as Data from "effect/Data"
import type { LatencySnapshot } from "./Latency.js"
import type { ResolvedProvider } from "../Config.js"
import type { BreakerStatus } from "../Circuit.js"
import type { Signals } from "./Settings.js"
import type { Tier } from "./Complexity.js"

export interface Target {
  readonly provider: ResolvedProvider
  readonly model: string
}

/**
 * `provider/model`: how breakers, latencies, headers and the ledger name a target. The one
 * definition of that name (`Failover` and `Router` re-export it).
 */
export const targetName = (target: Target): string => targetNameOf(target.provider.name, target.model)

/** The same name from a provider's name and a model, where only the route settings are at hand. */
export const targetNameOf = (provider: string, model: string): string => `${provider}/${model}`

export type SkipCode = "no_key" | "circuit_open" | "context_window" | "max_output" | "tools" | "vision" | "json_mode"

export interface Skip {
  readonly target: Target
  readonly code: SkipCode
  /** For a person: what the request needs and what the target offers. */
  readonly reason: string
}

export type Order = "cost" | "fast" | "quality"

export interface TraceStep {
  readonly step: "suffix" | "alias" | "override" | "rule" | "tier" | "cascade" | "balance" | "order" | "target"
  readonly detail: string
}

/** The escalation ladder for a non-streaming request (the proxy walks it). */
export interface CascadePlan {
  /** In order; the first is the decision's first target. Steps that cannot serve are already left out. */
  readonly steps: readonly [Target, ...Array<Target>]
  readonly signals: Signals
  /** Escalations allowed after the first answer (at most steps - 1). */
  readonly maxEscalations: number
}

export interface Decision {
  /** The rule (route name) that matched, or null for the default. */
  readonly route: string | null
  /** What matched, for the ledger (`model:gpt-*`, `tools`, `default`...). */
  readonly rule: string
  /** What the client asked for, verbatim. */
  readonly requestedModel: string
  /** After suffix, alias and override: the name rules matched on. */
  readonly resolvedModel: string
  /** Ordered, non-empty: the first is tried first, the rest are failover. */
  readonly targets: readonly [Target, ...Array<Target>]
  /** Considered and left out, each with why. */
  readonly skipped: ReadonlyArray<Skip>
  readonly cascade?: CascadePlan
  readonly tier?: Tier
  readonly order?: Order
  readonly trace: ReadonlyArray<TraceStep>
}

/** What a decision depends on besides config and request; absent parts count as "nothing known". */
export interface DecideContext {
  /** `Circuit.snapshot()`: targets whose breaker is open are skipped (half-open ones are kept). */
  readonly breakers?: ReadonlyArray<BreakerStatus>
  /** `Latency.snapshot()`: for `:fast` and `tollgate:fast`. */
  readonly latency?: LatencySnapshot
  /** Seeds weighted load balancing: the same seed gives the same order. Draw one per request. */
  readonly seed?: number
  /** Leave the trace out (the decision's `trace` is empty): for callers that never show it. */
  readonly untraced?: boolean
}

/** Every target of the decision was skipped: nothing can serve the request. */
export class NoRoutableTarget extends Data.TaggedError("NoRoutableTarget")<{
  readonly route: string | null
  readonly rule: string
  readonly requestedModel: string
  readonly resolvedModel: string
  readonly skipped: ReadonlyArray<Skip>
  readonly trace: ReadonlyArray<TraceStep>
}> {
  override get message(): string {
    return `no target can serve model "${this.requestedModel}" (route ${this.route ?? "default"}): ` +
      this.skipped.map((s) => `${targetName(s.target)}: ${s.reason}`).join("; ")
  }
}
