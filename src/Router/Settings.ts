/**
 * The routing sections of `tollgate.yaml`, decoded with `effect/Schema`: `routes` (rules with
 * matchers, targets with `weight`, complexity `tiers`, `cascade`) and `models` (`aliases`,
 * `overrides`, `catalogue` extensions, `quality` ranks). `Config/Schema.ts` only hooks these in.
 *
 * This module imports nothing from `Config/` so the two can reference each other without a cycle.
 */
import * as Schema from "effect/Schema"

const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "expected a positive integer" }))
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative({ message: () => "expected an integer >= 0" }))
const Weight = Schema.Number.pipe(Schema.positive({ message: () => "expected a weight > 0" }))

export const Target = Schema.Struct({
  provider: Schema.String,
  /** Defaults to the model the client asked for (after aliases and overrides). */
  model: Schema.optional(Schema.String),
  /**
   * Load balancing: consecutive targets that all carry a weight are equivalent; each request
   * orders them by a weighted draw (the first is picked with probability weight / sum).
   */
  weight: Schema.optional(Weight)
})
export type Target = typeof Target.Type

/** Inclusive bounds; either may be left out. */
export const Range = Schema.Struct({
  min: Schema.optional(NonNegativeInt),
  max: Schema.optional(NonNegativeInt)
}).pipe(
  Schema.filter((r) => r.min === undefined || r.max === undefined || r.min <= r.max || "expected min <= max")
)
export type Range = typeof Range.Type

const StringOrList = Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String))

/** Every field given must hold (AND); an empty match matches everything. */
export const Match = Schema.Struct({
  /** Glob on the requested model (after aliases and overrides): `gpt-*`, `*-mini`, `o?`. */
  model: Schema.optional(Schema.String),
  endpoint: Schema.optional(Schema.Literal("chat", "messages", "responses", "embeddings", "completions")),
  stream: Schema.optional(Schema.Boolean),
  /** The request defines at least one tool. */
  tools: Schema.optional(Schema.Boolean),
  /** A message carries an image. */
  images: Schema.optional(Schema.Boolean),
  /** The request sets `response_format` (JSON mode / structured output). */
  responseFormat: Schema.optional(Schema.Boolean),
  /** Estimated input tokens (gpt-tokenizer), inclusive. */
  inputTokens: Schema.optional(Range),
  /** `max_tokens` / `max_completion_tokens`, inclusive; a request without it never matches a range. */
  maxTokens: Schema.optional(Range),
  /** Header name (any case) -> glob on its value, e.g. `x-tollgate-project: "team-*"`. */
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** Glob(s) on the client's API key. */
  clientKey: Schema.optional(StringOrList)
})
export type Match = typeof Match.Type

/** A tier's model (served by the rule's providers), or its own targets. */
const TierChoice = Schema.Union(Schema.String, Schema.NonEmptyArray(Target))
export type TierChoice = typeof TierChoice.Type

export const Tiers = Schema.Struct({ simple: TierChoice, moderate: TierChoice, complex: TierChoice })
export type Tiers = typeof Tiers.Type

export const DEFAULT_REFUSAL_PHRASES: ReadonlyArray<string> = [
  "i can't help with",
  "i cannot help with",
  "i can't assist with",
  "i cannot assist with",
  "i'm unable to",
  "i am unable to",
  "i won't be able to"
]
export const DEFAULT_UNCERTAINTY_PHRASES: ReadonlyArray<string> = [
  "i'm not sure",
  "i am not sure",
  "i don't know",
  "i do not know",
  "i'm not certain",
  "it's unclear",
  "i cannot determine"
]

/** What in an answer sends the cascade to its next model. Phrases match case-insensitively. */
export const Signals = Schema.Struct({
  /** An error answer (after failover on that step). */
  error: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** `finish_reason: length` / `stop_reason: max_tokens`. */
  truncated: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  refusal: Schema.optionalWith(Schema.Array(Schema.String), { default: () => DEFAULT_REFUSAL_PHRASES }),
  uncertainty: Schema.optionalWith(Schema.Array(Schema.String), { default: () => DEFAULT_UNCERTAINTY_PHRASES })
})
export type Signals = typeof Signals.Type

export const Cascade = Schema.Struct({
  /** The ladder as model names, each served by the default provider for it... */
  models: Schema.optional(Schema.NonEmptyArray(Schema.String)),
  /** ...or as explicit targets. */
  targets: Schema.optional(Schema.NonEmptyArray(Target)),
  signals: Schema.optionalWith(Signals, { default: () => Signals.make({}) }),
  /** Escalations allowed after the first answer (default: the ladder's length - 1). */
  maxEscalations: Schema.optional(NonNegativeInt)
}).pipe(
  Schema.filter((c) => (c.models === undefined) !== (c.targets === undefined) || "expected exactly one of models or targets")
)
export type Cascade = typeof Cascade.Type

export const Route = Schema.Struct({
  name: Schema.String,
  match: Schema.optionalWith(Match, { default: () => ({}) }),
  /** Who serves a match; with `tiers`, the providers that serve a tier given as a model name. */
  targets: Schema.optionalWith(Schema.Array(Target), { default: () => [] }),
  tiers: Schema.optional(Tiers),
  cascade: Schema.optional(Cascade)
}).pipe(
  Schema.filter((r) => {
    if (r.tiers !== undefined && r.cascade !== undefined) return "expected tiers or cascade, not both"
    if (r.cascade !== undefined && r.targets.length > 0) return "a cascade names its own targets: drop targets"
    return r.targets.length > 0 || r.tiers !== undefined || r.cascade !== undefined ||
      "expected targets, tiers or cascade"
  })
)
export type Route = typeof Route.Type

/** A catalogue entry written in config: overrides or extends the built-in one field by field. */
export const CatalogueEntry = Schema.Struct({
  contextWindow: Schema.optional(PositiveInt),
  maxOutput: Schema.optional(PositiveInt),
  tools: Schema.optional(Schema.Boolean),
  vision: Schema.optional(Schema.Boolean),
  json: Schema.optional(Schema.Boolean),
  quality: Schema.optional(Schema.Number),
  /** Providers that serve this model when it is asked for without a rule (default: the first provider). */
  providers: Schema.optional(Schema.NonEmptyArray(Schema.String))
})
export type CatalogueEntry = typeof CatalogueEntry.Type

export const Models = Schema.Struct({
  /** `fast: gpt-4o-mini`: a name clients may ask for, and the model it means. */
  aliases: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** `gpt-4o: gpt-4o-mini` (keys may be globs): silent rewrites; the ledger keeps the requested model. */
  overrides: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  catalogue: Schema.optionalWith(Schema.Record({ key: Schema.String, value: CatalogueEntry }), { default: () => ({}) }),
  /** Quality rank per model (higher is better), for `:quality` and `tollgate:best`. */
  quality: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Number }), { default: () => ({}) })
})
export type Models = typeof Models.Type

/** Every provider a route refers to, with its key path (for validation at load and reload). */
export const providerReferences = (route: Route, index: number): ReadonlyArray<{ readonly path: string; readonly provider: string }> => {
  const refs: Array<{ path: string; provider: string }> = []
  const add = (prefix: string, targets: ReadonlyArray<Target>) =>
    targets.forEach((t, j) => refs.push({ path: `${prefix}.${j}.provider`, provider: t.provider }))
  add(`routes.${index}.targets`, route.targets)
  if (route.tiers !== undefined) {
    for (const tier of ["simple", "moderate", "complex"] as const) {
      const choice = route.tiers[tier]
      if (typeof choice !== "string") add(`routes.${index}.tiers.${tier}`, choice)
    }
  }
  if (route.cascade?.targets !== undefined) add(`routes.${index}.cascade.targets`, route.cascade.targets)
  return refs
}
