/**
 * How `tollgate route explain` shows a decision: a plain-text trace and a JSON form. Both are
 * rendered from the `Decision` (or `NoRoutableTarget`) that `Router.decide` returned, so what is
 * printed is what the proxy would do.
 */
import * as Either from "effect/Either"
import type { RequestFacts } from "../Domain/RequestFacts.js"
import { type Decision, type NoRoutableTarget, type Skip, targetName, type TraceStep } from "./Decision.js"

export interface ExplainJson {
  readonly ok: boolean
  readonly route: string | null
  readonly rule: string
  readonly requestedModel: string
  readonly resolvedModel: string
  readonly targets: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<{ readonly target: string; readonly code: string; readonly reason: string }>
  readonly cascade: { readonly steps: ReadonlyArray<string>; readonly maxEscalations: number } | null
  readonly tier: string | null
  readonly order: string | null
  readonly trace: ReadonlyArray<TraceStep>
}

const skipJson = (s: Skip) => ({ target: targetName(s.target), code: s.code, reason: s.reason })

export const toJson = (result: Either.Either<Decision, NoRoutableTarget>): ExplainJson =>
  Either.match(result, {
    onRight: (d) => ({
      ok: true,
      route: d.route,
      rule: d.rule,
      requestedModel: d.requestedModel,
      resolvedModel: d.resolvedModel,
      targets: d.targets.map(targetName),
      skipped: d.skipped.map(skipJson),
      cascade: d.cascade === undefined ? null : { steps: d.cascade.steps.map(targetName), maxEscalations: d.cascade.maxEscalations },
      tier: d.tier ?? null,
      order: d.order ?? null,
      trace: d.trace
    }),
    onLeft: (e) => ({
      ok: false,
      route: e.route,
      rule: e.rule,
      requestedModel: e.requestedModel,
      resolvedModel: e.resolvedModel,
      targets: [],
      skipped: e.skipped.map(skipJson),
      cascade: null,
      tier: null,
      order: null,
      trace: e.trace
    })
  })

const yesNo = (b: boolean) => (b ? "yes" : "no")

/** One line about the request, as the router read it (the estimate only if it was computed). */
export const describeFacts = (facts: RequestFacts): string =>
  `request: model ${facts.model} (${facts.endpoint}, stream ${yesNo(facts.stream)}, ${facts.messageCount} message(s), ` +
  `${facts.toolCount} tool(s), images ${yesNo(facts.hasImages)}, response_format ${yesNo(facts.hasResponseFormat)}, ` +
  `max_tokens ${facts.maxTokens ?? "-"}, ${facts.byteLength} bytes, ~${facts.estimatedInputTokens()} input tokens)`

export const toText = (facts: RequestFacts, result: Either.Either<Decision, NoRoutableTarget>): string => {
  const json = toJson(result)
  const lines = [describeFacts(facts), ""]
  const width = Math.max(...json.trace.map((t) => t.step.length), 4)
  for (const step of json.trace) lines.push(`  ${step.step.padEnd(width)}  ${step.detail}`)
  lines.push("")
  if (json.ok) {
    const [first, ...rest] = json.targets
    lines.push(`decision: route ${json.route ?? "(default)"}, rule ${json.rule}: ${json.resolvedModel} -> ${first}` +
      (rest.length > 0 ? `, failover ${rest.join(", ")}` : ""))
    if (json.cascade !== null) {
      lines.push(`cascade: ${json.cascade.steps.join(" -> ")} (up to ${json.cascade.maxEscalations} escalation(s))`)
    }
  } else {
    lines.push(`decision: no target can serve this request (route ${json.route ?? "(default)"}, rule ${json.rule})`)
  }
  return lines.join("\n")
}
