/**
 * The `Router` service: which targets (provider + model) serve a request, in what order, and why.
 *
 * The decision, in this order (each step is recorded in `Decision.trace`):
 * 1. suffix `:cost | :fast | :quality` is stripped; it orders the targets at the end.
 * 2. alias: `models.aliases`, or a built-in `tollgate:fast|cheap|best|auto` (see Router/Aliases.ts).
 * 3. override: `models.overrides` (exact name first, then globs in file order).
 * 4. rules, top to bottom, first match wins (Router/Rules.ts); a rule gives targets, a tier map
 *    (Router/Complexity.ts) or a cascade. No rule: the model's catalogue `providers`, else an
 *    `anthropic` provider for an Anthropic model, else the first provider serves it as asked.
 * 5. weighted load balancing: runs of consecutive targets with `weight` are ordered by a weighted
 *    draw from a PRNG seeded by `context.seed` (Router/Balance.ts).
 * 6. the suffix's order: by blended price, by TTFB average, or by quality rank (stable).
 * 7. capabilities: a target is skipped, with a reason, when its provider needs a key it does not
 *    have (an `apiKeyEnv` that is not set, without `passthroughAuth`; providers with no
 *    `apiKeyEnv` or an empty one, like a local server, need none), its breaker is open in `context.breakers`, or
 *    its model (when the catalogue knows it) lacks tools / vision / JSON mode the request uses,
 *    allows fewer output tokens than `max_tokens`, or has a context window smaller than the
 *    estimated input + `max_tokens`.
 *
 * Pure: the same config, facts and context give the same decision, so `tollgate route explain`
 * prints what the proxy does. Config is compiled once in `make(config)`; a reload calls `make` again.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type { TollgateConfig, ResolvedProvider, TollgateSettings } from "./Config.js"
import { missingKeyOf } from "./Config/Provider.js"
import type { Price } from "./Config/Schema.js"
import * as RequestFacts from "./Domain/RequestFacts.js"
import { LiveConfig } from "./Reload.js"
import * as Reload from "./Reload.js"
import * as Pricing from "./Pricing.js"
import { kindOf } from "./Upstream/Kinds.js"
import * as Aliases from "./Router/Aliases.js"
import { seeded, weightedOrder } from "./Router/Balance.js"
import * as Catalogue from "./Router/Catalogue.js"
import * as Complexity from "./Router/Complexity.js"
import {
  type CascadePlan,
  type DecideContext,
  type Decision,
  NoRoutableTarget,
  type Order,
  type Skip,
  type Target,
  targetName,
  type TraceStep
} from "./Router/Decision.js"
import { compileMatch, globToRegExp } from "./Router/Rules.js"
import type { Route, Target as TargetSettings, TierChoice } from "./Router/Settings.js"

export { globToRegExp, NoRoutableTarget, targetName }
export type { CascadePlan, DecideContext, Decision, Order, Skip, Target, TraceStep }

/** The request as the decision needs it; the legacy form is the model alone. */
export interface Decide {
  (facts: RequestFacts.RequestFacts, context: DecideContext): Either.Either<Decision, NoRoutableTarget>
  /**
   * Model only, nothing skipped, never fails: what `src/Proxy.ts` calls until it builds
   * `RequestFacts` (aliases, overrides and rules still apply).
   */
  (request: { readonly model: string }): Decision
}

export class Router extends Context.Tag("tollgate/Router")<Router, {
  readonly decide: Decide
}>() {}

const SUFFIX = /:(cost|fast|quality)$/

/** A candidate before skipping: where it came from decides whether it is load-balanced. */
interface Candidate {
  readonly target: Target
  readonly weight: number | undefined
}

const emptyFacts = (model: string): RequestFacts.RequestFacts => ({
  endpoint: "chat",
  model,
  stream: false,
  maxTokens: undefined,
  toolCount: 0,
  hasImages: false,
  hasResponseFormat: false,
  messageCount: 0,
  headers: {},
  clientKey: undefined,
  byteLength: 0,
  estimatedInputTokens: () => 0,
  inputTokensAtMost: () => 0,
  text: () => ""
})

const int = (n: number) => (Number.isFinite(n) ? n.toLocaleString("en-US") : "unbounded")

interface CompiledRule {
  readonly route: Route
  readonly test: (facts: RequestFacts.RequestFacts, model: string) => boolean
  readonly label: string
}

/** The trace of an untraced decision. */
const NO_TRACE: ReadonlyArray<TraceStep> = []

export const make = (config: TollgateSettings, priceOf: (model: string) => Price | undefined = Pricing.make(config.pricing).priceOf): Router["Type"] => {
  const providers = new Map(config.providers.map((p) => [p.name, p]))
  const first = config.providers[0]!
  const anthropic = config.providers.find((p) => kindOf(p.config).vendor === "anthropic")
  const catalogue = Catalogue.make(config.models.catalogue, config.models.quality)
  const builtIns = Aliases.make(config, catalogue, priceOf)
  const aliases = new Map(Object.entries(config.models.aliases))
  const exactOverrides = new Map(Object.entries(config.models.overrides).filter(([k]) => !/[*?]/.test(k)))
  const globOverrides = Object.entries(config.models.overrides)
    .filter(([k]) => /[*?]/.test(k))
    .map(([k, v]) => ({ glob: k, pattern: globToRegExp(k), to: v }))
  const rules: ReadonlyArray<CompiledRule> = config.routes.map((route) => ({ route, ...compileMatch(route.match) }))

  /** Who serves a bare model name outside any rule's targets. */
  const defaultProviders = (model: string): Array<ResolvedProvider> => {
    const info = catalogue.lookup(model)
    if (info?.providers !== undefined) return info.providers.map((name) => providers.get(name)!)
    if (info?.vendor === "anthropic" && anthropic !== undefined) return [anthropic]
    return [first]
  }
  const fromSettings = (targets: ReadonlyArray<TargetSettings>, model: string): Array<Candidate> =>
    targets.map((t) => ({ target: { provider: providers.get(t.provider)!, model: t.model ?? model }, weight: t.weight }))
  const forModel = (model: string): Array<Candidate> =>
    defaultProviders(model).map((provider) => ({ target: { provider, model }, weight: undefined }))
  const tierCandidates = (route: Route, choice: TierChoice, model: string): Array<Candidate> => {
    if (typeof choice !== "string") return fromSettings(choice, model)
    return route.targets.length > 0
      ? route.targets.map((t) => ({ target: { provider: providers.get(t.provider)!, model: choice }, weight: t.weight }))
      : forModel(choice)
  }

  const priceKey = (t: Target) => {
    const price = priceOf(t.model)
    return price === undefined ? Number.POSITIVE_INFINITY : Aliases.blendedPrice(price)
  }

  /** Why `target` cannot serve `facts`, or undefined when it can. Cheap checks first. */
  const skipReason = (target: Target, facts: RequestFacts.RequestFacts, open: ReadonlySet<string>): Omit<Skip, "target"> | undefined => {
    // The key variable its model needs is not set (its `apiKeyEnv`, or a `modelKeys` entry's; read once, at start).
    const lacking = missingKeyOf(target.provider, target.model)
    if (lacking !== undefined) {
      const which = lacking === target.provider.missingKeyEnv ? "" : ` for ${target.model}`
      return { code: "no_key", reason: `provider ${target.provider.name} has no key${which} (${lacking} is not set)` }
    }
    if (open.has(targetName(target))) return { code: "circuit_open", reason: "circuit breaker open" }
    const info = catalogue.lookup(target.model)
    if (info === undefined) return undefined
    if (facts.toolCount > 0 && !info.tools) return { code: "tools", reason: `${target.model} does not support tools` }
    if (facts.hasImages && !info.vision) return { code: "vision", reason: `${target.model} does not accept images` }
    if (facts.hasResponseFormat && !info.json) return { code: "json_mode", reason: `${target.model} has no JSON mode (response_format)` }
    const output = facts.maxTokens ?? 0
    if (output > info.maxOutput) {
      return { code: "max_output", reason: `max_tokens ${int(output)} > ${target.model}'s max output ${int(info.maxOutput)}` }
    }
    // The byte length bounds the tokens from above: tokenise only when it does not prove a fit.
    if (facts.byteLength + output > info.contextWindow) {
      const input = facts.estimatedInputTokens()
      if (input + output > info.contextWindow) {
        return {
          code: "context_window",
          reason: `~${int(input)} input + ${int(output)} max output tokens > ${target.model}'s context window ${int(info.contextWindow)}`
        }
      }
    }
    return undefined
  }

  const run = (facts: RequestFacts.RequestFacts, context: DecideContext | undefined): Either.Either<Decision, NoRoutableTarget> => {
    // Only what explains a decision reads its trace: the proxy asks for none (`untraced`), and its
    // steps' texts are not even formatted (`trace?.push(...)` skips its argument).
    const trace: Array<TraceStep> | undefined = context?.untraced === true ? undefined : []
    const requestedModel = facts.model
    let model = requestedModel
    let tier: Complexity.Tier | undefined
    const classify = () => {
      if (tier === undefined) {
        const score = Complexity.classify(facts)
        tier = score.tier
        trace?.push({ step: "tier", detail: `${score.tier} (${score.points} points: ${score.reasons.join("; ") || "no signal"})` })
      }
      return tier
    }

    // 1. suffix
    let order: Order | undefined
    const suffix = SUFFIX.exec(model)
    if (suffix !== null && suffix.index > 0 && model.slice(0, suffix.index) !== "tollgate") {
      order = suffix[1] as Order
      model = model.slice(0, suffix.index)
      trace?.push({ step: "suffix", detail: `:${order} stripped (targets ordered by ${order === "cost" ? "price" : order === "fast" ? "latency" : "quality"})` })
    }

    // 2. alias
    const alias = aliases.get(model)
    if (alias !== undefined) {
      trace?.push({ step: "alias", detail: `${model} -> ${alias}` })
      model = alias
    } else if (model.startsWith("tollgate:")) {
      const name = model.slice("tollgate:".length)
      let to: string | undefined
      if (name === "cheap") to = builtIns.cheap
      else if (name === "best") to = builtIns.best
      else if (name === "auto") to = builtIns.byTier[classify()]
      else if (name === "fast") {
        const latency = context?.latency
        to = builtIns.fast((m) => {
          if (latency === undefined) return undefined
          const target = forModel(m)[0]
          return target === undefined ? undefined : latency.get(targetName(target.target))
        })
      }
      if (to !== undefined) {
        trace?.push({ step: "alias", detail: `${model} -> ${to} (built-in, among ${builtIns.candidates.length} models)` })
        model = to
      } else {
        trace?.push({ step: "alias", detail: `${model}: no model to resolve it to; kept as asked` })
      }
    }

    // 3. override
    const override = exactOverrides.get(model) ?? globOverrides.find((o) => o.pattern.test(model))?.to
    if (override !== undefined) {
      trace?.push({ step: "override", detail: `${model} -> ${override}` })
      model = override
    }

    // 4. rules
    let route: string | null = null
    let rule = "default"
    let candidates: Array<Candidate> | undefined
    let cascadeOf: Route["cascade"]
    for (const compiled of rules) {
      if (!compiled.test(facts, model)) continue
      route = compiled.route.name
      rule = compiled.label
      trace?.push({ step: "rule", detail: `${compiled.route.name} matched (${compiled.label})` })
      const { cascade, tiers } = compiled.route
      if (tiers !== undefined) {
        const t = classify()
        candidates = tierCandidates(compiled.route, tiers[t], model)
      } else if (cascade !== undefined) {
        candidates = cascade.targets !== undefined
          ? fromSettings(cascade.targets, model)
          : cascade.models!.map((m) => forModel(m)[0]!)
        cascadeOf = cascade
      } else {
        candidates = fromSettings(compiled.route.targets, model)
      }
      break
    }
    if (candidates === undefined) {
      trace?.push({ step: "rule", detail: "no rule matched: default" })
      candidates = forModel(model)
    }

    // 5. weighted load balancing over runs of weighted targets
    if (candidates.some((c) => c.weight !== undefined)) {
      const random = seeded(context?.seed ?? 0)
      const balanced: Array<Candidate> = []
      for (let i = 0; i < candidates.length;) {
        if (candidates[i]!.weight === undefined) {
          balanced.push(candidates[i++]!)
          continue
        }
        const run: Array<Candidate> = []
        while (i < candidates.length && candidates[i]!.weight !== undefined) run.push(candidates[i++]!)
        balanced.push(...weightedOrder(run, (c) => c.weight!, random))
      }
      candidates = balanced
      trace?.push({ step: "balance", detail: `weighted order: ${candidates.map((c) => targetName(c.target)).join(", ")}` })
    }

    // 6. the suffix's order (stable: equal keys keep the configured order)
    let targets = candidates.map((c) => c.target)
    if (order !== undefined) {
      const latency = context?.latency
      const key = order === "cost"
        ? priceKey
        : order === "fast"
        ? (t: Target) => latency?.get(targetName(t)) ?? Number.POSITIVE_INFINITY
        : (t: Target) => -(catalogue.qualityOf(t.model) ?? Number.NEGATIVE_INFINITY)
      targets = targets.map((t, i) => ({ t, i, k: key(t) }))
        .sort((a, b) => (a.k === b.k ? a.i - b.i : a.k < b.k ? -1 : 1))
        .map((x) => x.t)
      trace?.push({ step: "order", detail: `by ${order}: ${targets.map(targetName).join(", ")}` })
    }

    // 7. capabilities (the legacy model-only call skips nothing)
    const kept: Array<Target> = []
    const skipped: Array<Skip> = []
    const open = new Set<string>()
    for (const b of context?.breakers ?? []) if (b.state === "open") open.add(b.target)
    for (const target of targets) {
      const why = context === undefined ? undefined : skipReason(target, facts, open)
      if (why === undefined) {
        kept.push(target)
        trace?.push({
          step: "target",
          detail: `${targetName(target)} kept${catalogue.lookup(target.model) !== undefined ? "" : " (model not in the catalogue: capabilities not checked)"}`
        })
      } else {
        skipped.push({ target, ...why })
        trace?.push({ step: "target", detail: `${targetName(target)} skipped: ${why.reason}` })
      }
    }
    if (kept.length === 0) {
      return Either.left(new NoRoutableTarget({ route, rule, requestedModel, resolvedModel: model, skipped, trace: trace ?? NO_TRACE }))
    }

    let cascade: CascadePlan | undefined
    let served = kept as [Target, ...Array<Target>]
    if (cascadeOf !== undefined) {
      if (facts.stream) {
        // A stream's bytes go to the client as they come: an answer cannot be judged before it is sent.
        trace?.push({ step: "cascade", detail: "streaming request: no cascade, the ladder is plain failover" })
      } else {
        const maxEscalations = Math.min(cascadeOf.maxEscalations ?? kept.length - 1, kept.length - 1)
        cascade = { steps: served, signals: cascadeOf.signals, maxEscalations }
        served = [kept[0]!]
        trace?.push({ step: "cascade", detail: `${kept.map(targetName).join(" -> ")}, up to ${maxEscalations} escalation(s)` })
      }
    }

    return Either.right({
      route,
      rule,
      requestedModel,
      resolvedModel: model,
      targets: served,
      skipped,
      ...(cascade === undefined ? {} : { cascade }),
      ...(tier === undefined ? {} : { tier }),
      ...(order === undefined ? {} : { order }),
      trace: trace ?? NO_TRACE
    })
  }

  const decide = ((facts: RequestFacts.RequestFacts | { readonly model: string }, context?: DecideContext) => {
    if (context !== undefined) return run(facts as RequestFacts.RequestFacts, context)
    // Nothing is skipped without a context, so this never fails.
    return Either.getOrThrow(run("byteLength" in facts ? facts as RequestFacts.RequestFacts : emptyFacts(facts.model), undefined))
  }) as Decide

  return Router.of({ decide })
}

/**
 * The router for the configuration in force, recompiled whenever `LiveConfig` swaps it (hot
 * reload): a request is decided entirely by one compiled router, never by a mix of two. The
 * tokenizer is loaded when the layer is built if the rules count tokens, else when first needed.
 */
export const layerLive: Layer.Layer<Router, never, LiveConfig> = Layer.scoped(
  Router,
  Effect.gen(function*() {
    const live = yield* LiveConfig
    // Rules that count tokens on every request: load the tokenizer now, not on the first request.
    // (Otherwise it loads the first time a decision needs it: memory that most configs never use.)
    if (live.get().routes.some((r) => r.match.inputTokens !== undefined || r.tiers !== undefined)) yield* RequestFacts.warm
    // Recompiled on the first decision after a swap: no fiber to wait for, so the very next
    // request after a reload is routed by the new rules.
    let compiledFor = live.get()
    let current = make(compiledFor)
    const router = () => {
      const config = live.get()
      if (config !== compiledFor) {
        compiledFor = config
        current = make(config)
      }
      return current
    }
    const decide = ((facts: RequestFacts.RequestFacts | { readonly model: string }, context?: DecideContext) =>
      context === undefined
        ? router().decide(facts as { readonly model: string })
        : router().decide(facts as RequestFacts.RequestFacts, context)) as Decide
    return Router.of({ decide })
  })
)

/** The router for the configuration given (reloaded when it is watched: `start --watch`). */
export const layer: Layer.Layer<Router, never, TollgateConfig> = layerLive.pipe(Layer.provide(Reload.layer))
