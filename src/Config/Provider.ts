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
}
