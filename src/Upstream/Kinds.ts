/**
 * The provider kinds (`kind:` under `providers:`), one table: per kind its settings schema, the
 * dialect its API speaks, its adapter, its default key variable, its price family, and the other
 * facts that differ by kind. Everything that once switched on `config.kind` reads it here.
 *
 * The adapters are imported when a provider of their kind is built, not with this module: config,
 * pricing and the CLI read the table, and must not load the HTTP client (undici, ~80 ms) to learn a
 * key variable's name.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { DialectId } from "../Dialect.js"
import type { ResolvedProvider } from "../Config/Provider.js"
import { presets } from "../Config/Presets.js"
import { AnthropicProvider, MockProvider, OpenAiProvider, type Provider } from "../Config/Schema.js"
import type { Vendor } from "../Router/Catalogue.js"
import type { Adapter } from "./Exchange.js"

export type KindName = Provider["kind"]
export type SettingsOf<K extends KindName> = Extract<Provider, { readonly kind: K }>

/** How to ask a provider for its model list (`tollgate providers check`), with the key real requests send. */
export interface ModelsRequest {
  readonly url: string
  readonly headers: Record<string, string>
}

export interface ProviderKind<K extends KindName = KindName> {
  readonly kind: K
  /** Its settings under `providers:`; `Config/Schema.ts`'s `Provider` is the union of these. */
  readonly schema: Schema.Schema<SettingsOf<K>, any>
  /** The wire shape its API speaks: requests reach it through the bridge from the client's dialect. */
  readonly dialect: DialectId
  /** Its adapter: sends one request to one provider of this kind. */
  readonly adapter: (provider: ResolvedProvider, settings: SettingsOf<K>) => Effect.Effect<Adapter, never, Scope.Scope>
  /** The key variable `init` suggests for it (none: it needs none, or it depends on a preset). */
  readonly defaultKeyEnv: string | undefined
  /** The price-data provider whose models it lists (`Pricing.modelsFor`); undefined: none known. */
  readonly priceFamily: (settings: SettingsOf<K>) => string | undefined
  /** Simulated: needs no key, reaches nothing, costs $0 (never "unpriced"), no limit on an event's size. */
  readonly simulated: boolean
  /** The vendor whose bare model names it serves by default ("any": every vendor's). */
  readonly vendor: Vendor | "any"
  /** Its base URL (undefined for a simulated one). */
  readonly baseUrl: (settings: SettingsOf<K>) => string | undefined
  /** Its model list, when it has one to ask for. */
  readonly modelsRequest: (settings: SettingsOf<K>, key: Option.Option<string>) => ModelsRequest | undefined
}

/** An adapter from its module, imported when first needed (a failed import is a defect: the install is broken). */
const loaded = <M, A>(load: () => Promise<M>, make: (module: M) => Effect.Effect<A, never, Scope.Scope>) =>
  Effect.flatMap(Effect.promise(load), make)

const trimSlash = (url: string) => url.replace(/\/+$/, "")

export const KINDS: { readonly [K in KindName]: ProviderKind<K> } = {
  /** Any OpenAI-compatible API (OpenAI itself, presets, local servers). */
  openai: {
    kind: "openai",
    schema: OpenAiProvider,
    dialect: "openai-chat",
    adapter: (provider) => loaded(() => import("./OpenAi.js"), (m) => m.make(provider)),
    defaultKeyEnv: "OPENAI_API_KEY",
    priceFamily: (settings) => (settings.preset === undefined ? "openai" : presets[settings.preset].pricedAs),
    simulated: false,
    vendor: "openai",
    baseUrl: (settings) => settings.baseUrl,
    modelsRequest: (settings, key) => ({
      url: `${trimSlash(settings.baseUrl)}/models`,
      headers: { ...settings.headers, ...(Option.isSome(key) ? { authorization: `Bearer ${key.value}` } : {}) }
    })
  },
  /** Anthropic's Messages API. */
  anthropic: {
    kind: "anthropic",
    schema: AnthropicProvider,
    dialect: "anthropic-messages",
    adapter: (provider) => loaded(() => import("./Anthropic.js"), (m) => m.make(provider)),
    defaultKeyEnv: "ANTHROPIC_API_KEY",
    priceFamily: () => "anthropic",
    simulated: false,
    vendor: "anthropic",
    baseUrl: (settings) => settings.baseUrl,
    modelsRequest: (settings, key) => ({
      url: `${trimSlash(settings.baseUrl)}/v1/models`,
      headers: { ...settings.headers, "anthropic-version": settings.version, ...(Option.isSome(key) ? { "x-api-key": key.value } : {}) }
    })
  },
  /** The built-in simulated model; it imitates OpenAI's API, and lists OpenAI's models. */
  mock: {
    kind: "mock",
    schema: MockProvider,
    dialect: "openai-chat",
    adapter: (provider, settings) => loaded(() => import("./Mock.js"), (m) => m.make(provider.name, settings)),
    defaultKeyEnv: undefined,
    priceFamily: () => "openai",
    simulated: true,
    vendor: "any",
    baseUrl: () => undefined,
    modelsRequest: () => undefined
  }
}

/** The kind of these settings. */
export const kindOf = <K extends KindName>(settings: { readonly kind: K }): ProviderKind<K> => KINDS[settings.kind] as ProviderKind<K>

/** The dialect a configured provider speaks (read on every request: one property chain). */
export const dialectOf = (settings: Provider): DialectId => KINDS[settings.kind].dialect

/** A provider's adapter, from its kind. */
export const adapterOf = (provider: ResolvedProvider): Effect.Effect<Adapter, never, Scope.Scope> =>
  (KINDS[provider.config.kind] as ProviderKind).adapter(provider, provider.config)

/** A provider's base URL, or undefined for a simulated one. */
export const baseUrlOf = (settings: Provider): string | undefined => (KINDS[settings.kind] as ProviderKind).baseUrl(settings)

/** The price family a provider's models are listed from. */
export const priceFamilyOf = (settings: { readonly kind: string; readonly preset?: string | undefined }): string | undefined => {
  const kind = (KINDS as Record<string, ProviderKind | undefined>)[settings.kind]
  return kind === undefined ? settings.kind : kind.priceFamily(settings as Provider)
}

/** Settings of the kinds that reach a real API (with a key, a base URL, time limits). */
export type RealSettings = Extract<Provider, { readonly baseUrl: string }>

/** Simulated: no key, nothing to reach, free. (The kinds that are not have `RealSettings`.) */
export const isSimulated = (settings: Provider): settings is Exclude<Provider, RealSettings> => KINDS[settings.kind].simulated

/** A provider's model list request, with its key. */
export const modelsRequestOf = (provider: ResolvedProvider): ModelsRequest | undefined =>
  (KINDS[provider.config.kind] as ProviderKind).modelsRequest(provider.config, Option.map(provider.apiKey, Redacted.value))
