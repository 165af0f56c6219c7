/**
 * A configured provider as the running program sees it: its settings and the key read for it.
 * Its own module so that what only needs this type (the adapters, the provider-kinds table) does
 * not import the config service, which reads the kinds table.
 */
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { Provider } from "./Schema.js"

export interface ResolvedProvider {
  readonly name: string
  readonly config: Provider
  /** The server-side key, read from `apiKeyEnv` at start; none when it names no variable or an empty one. */
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  /**
   * The variable `apiKeyEnv` names when it is not set at all (and `passthroughAuth` is off): the
   * provider is skipped, and a request only it could serve gets 503 `provider_key_missing`.
   */
  readonly missingKeyEnv?: string | undefined
  /** Its `modelKeys`, read at start with their globs compiled; none: every model uses `apiKey`. */
  readonly modelKeys?: ReadonlyArray<ResolvedModelKey> | undefined
}

/** A `modelKeys` entry as the running program sees it. */
export interface ResolvedModelKey {
  /** The globs as written (for messages) and compiled. */
  readonly models: ReadonlyArray<string>
  readonly patterns: ReadonlyArray<RegExp>
  readonly apiKeyEnv: string
  /** The key; none when the variable is empty (nothing is sent) or not set (see `missing`). */
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  /** How it is sent (the kind's default already applied). */
  readonly as: "bearer" | "x-api-key"
  /** Its variable is not set: its models' targets are skipped (`no_key`) and refused with 503. */
  readonly missing: boolean
}

/** The model key that applies to `model` at this provider, if one does (the first that matches). */
export const modelKeyOf = (provider: ResolvedProvider, model: string): ResolvedModelKey | undefined =>
  provider.modelKeys === undefined ? undefined : modelKeyIn(provider.modelKeys, model)

/** The first of these model keys whose globs match `model`. */
export const modelKeyIn = (keys: ReadonlyArray<ResolvedModelKey>, model: string): ResolvedModelKey | undefined => {
  for (const key of keys) {
    for (const pattern of key.patterns) if (pattern.test(model)) return key
  }
  return undefined
}

/**
 * The key variable a request for `model` at this provider needs and lacks (not set at start), if
 * any: the model key's when one applies to it, else the provider's `apiKeyEnv`.
 */
export const missingKeyOf = (provider: ResolvedProvider, model: string): string | undefined => {
  if (provider.modelKeys === undefined || provider.modelKeys.length === 0) return provider.missingKeyEnv
  const key = modelKeyOf(provider, model)
  return key === undefined ? provider.missingKeyEnv : key.missing ? key.apiKeyEnv : undefined
}
