/**
 * The `Router` service: which provider and model serve a request, and why.
 *
 * Today: the first route (top to bottom) whose `match.model` glob matches the requested model
 * gives the targets; with no route matching, the first configured provider serves the model as
 * asked. Pure given the config and the request, so `route explain` can print the same decision.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Config, type ResolvedProvider, type TollgateConfig } from "./Config.js"

export interface Target {
  readonly provider: ResolvedProvider
  readonly model: string
}

export interface Decision {
  /** The route that matched, or null for the default. */
  readonly route: string | null
  /** What matched, for the ledger (`model:gpt-*`, `default`). */
  readonly rule: string
  /** Ordered: the first is tried first. */
  readonly targets: readonly [Target, ...Array<Target>]
}

export class Router extends Context.Tag("tollgate/Router")<Router, {
  readonly decide: (request: { readonly model: string }) => Decision
}>() {}

/** `*` matches any run of characters, `?` one character; everything else is literal. */
export const globToRegExp = (glob: string): RegExp =>
  new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`)

export const make = (config: TollgateConfig): Router["Type"] => {
  const byName = new Map(config.providers.map((p) => [p.name, p]))
  const routes = config.routes.map((route) => ({
    route,
    pattern: route.match.model === undefined ? undefined : globToRegExp(route.match.model)
  }))
  const fallback = config.providers[0]!
  return {
    decide: ({ model }) => {
      for (const { pattern, route } of routes) {
        if (pattern !== undefined && !pattern.test(model)) continue
        const [first, ...rest] = route.targets.map((t) => ({ provider: byName.get(t.provider)!, model: t.model ?? model }))
        return { route: route.name, rule: route.match.model === undefined ? "any" : `model:${route.match.model}`, targets: [first!, ...rest] }
      }
      return { route: null, rule: "default", targets: [{ provider: fallback, model }] }
    }
  }
}

export const layer: Layer.Layer<Router, never, Config> = Layer.effect(Router, Effect.map(Config, make))
