/**
 * Bounded label values for the request metrics. A client chooses model names, so a label that
 * took them as they come would let it create a series per name: model, route and provider labels
 * only take values the configuration knows (route names, providers, models named anywhere in the
 * config or served by the providers), and anything else is `other`.
 */
import type { TollgateSettings } from "../Config.js"

/** The label value of anything the configuration does not know. */
export const OTHER = "other"

/** The route label of a request no route matched. */
export const DEFAULT_ROUTE = "default"

/** A value with glob characters is a pattern, not a model a row can name. */
const isGlob = (value: string): boolean => /[*?[\]{}]/.test(value)

/** Models named anywhere in the routes: each target's, each tier's, each cascade step's. */
const modelsOfRoutes = (value: unknown, into: Set<string>, key?: string): void => {
  if (typeof value === "string") {
    if ((key === "model" || key === "tier" || key === "models") && !isGlob(value)) into.add(value)
    return
  }
  if (Array.isArray(value)) {
    for (const item of value) modelsOfRoutes(item, into, key === "models" ? "models" : key === "tiers" ? "tier" : undefined)
    return
  }
  if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      modelsOfRoutes(v, into, key === "tiers" ? "tier" : k)
    }
  }
}

export class Labels {
  private readonly providers: ReadonlySet<string>
  private readonly routes: ReadonlySet<string>
  private readonly models = new Set<string>()
  private readonly budgetKeys: ReadonlySet<string>

  constructor(config: TollgateSettings) {
    this.providers = new Set(config.providers.map((p) => p.name))
    this.routes = new Set(config.routes.map((r) => r.name))
    this.budgetKeys = new Set(config.budget.limits.flatMap((l) => (l.key === undefined ? [] : [l.key])))
    modelsOfRoutes(config.routes, this.models)
    const { aliases, catalogue, overrides, quality } = config.models
    for (const [alias, model] of Object.entries(aliases)) this.allowModel(alias), this.allowModel(model)
    for (const [from, to] of Object.entries(overrides)) this.allowModel(from), this.allowModel(to)
    for (const model of [...Object.keys(catalogue), ...Object.keys(quality), ...Object.keys(config.pricing)]) this.allowModel(model)
  }

  /** A model a provider serves (its listing), allowed as a label from now on. */
  allowModel(model: string): void {
    if (!isGlob(model)) this.models.add(model)
  }

  provider(name: string | null): string {
    return name === null ? "none" : this.providers.has(name) ? name : OTHER
  }

  model(name: string | null): string {
    return name === null ? "none" : this.models.has(name) ? name : OTHER
  }

  route(name: string | null): string {
    return name === null ? DEFAULT_ROUTE : this.routes.has(name) ? name : OTHER
  }

  /** A budget line's key: one a limit names in the config, else `*` (the lines counted per client, project or session, summed). */
  budgetKey(key: string): string {
    return this.budgetKeys.has(key) ? key : "*"
  }

  /** Whether `model` is a label value of its own (for tests and `/debug/status`). */
  knowsModel(model: string): boolean {
    return this.models.has(model)
  }

  get modelCount(): number {
    return this.models.size
  }
}
