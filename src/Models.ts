/**
 * The models a client may ask for, as `GET /v1/models` lists them: what each configured provider
 * serves (its own `/models`, fetched at start and refreshed), tollgate's aliases and the models
 * routes name. A provider that cannot be listed (down, no key, the simulated one) contributes the
 * models the price data knows for its kind, so the list degrades to a catalogue, never to nothing.
 * Answers come in OpenAI's list shape, or Anthropic's when the client sends `anthropic-version`
 * (Claude Code's model discovery).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { type ResolvedProvider, TollgateConfig } from "./Config.js"
import { type ModelsRequest, modelsRequestOf } from "./Upstream/Kinds.js"
import { Pricing } from "./Pricing.js"

export interface ModelEntry {
  readonly id: string
  /** Who serves it: a provider's name, or `tollgate` for aliases. */
  readonly ownedBy: string
  /** Unix seconds, as the provider said, else tollgate's fixed date. */
  readonly created: number
  readonly displayName?: string | undefined
}

export class Models extends Context.Tag("tollgate/Models")<Models, {
  /** Every model, providers' first (in configuration order), each id once. */
  readonly list: Effect.Effect<ReadonlyArray<ModelEntry>>
  /** Lists every provider again now (also done on a schedule). */
  readonly refresh: Effect.Effect<void>
}>() {}

/** The date tollgate gives models that carry none (aliases, catalogue entries). */
export const CREATED = Math.floor(Date.parse("2025-01-01T00:00:00Z") / 1000)

/** How often providers are listed again. */
const REFRESH = Duration.minutes(10)
/** How long one provider's list may take. */
const FETCH_TIMEOUT = Duration.seconds(10)
/** How long the first `list` waits for the providers' first answers after start. */
const FIRST_WAIT = Duration.seconds(2)

/** A provider's model list: OpenAI's (`created` in seconds) and Anthropic's (`created_at`, `display_name`) in one shape. */
const ModelList = Schema.Struct({
  data: Schema.Array(Schema.Struct({
    id: Schema.String,
    created: Schema.optional(Schema.Number),
    created_at: Schema.optional(Schema.String),
    display_name: Schema.optional(Schema.String)
  }))
})

/** Unix seconds from an ISO date, or tollgate's fixed date. */
const secondsOf = (iso: string | undefined): number => {
  const at = iso === undefined ? NaN : Date.parse(iso)
  return Number.isNaN(at) ? CREATED : Math.floor(at / 1000)
}

/** One provider's list, asked with the request its kind says (`Upstream/Kinds.ts`, as `providers check` asks it). */
const fetchList = (client: HttpClient.HttpClient, provider: ResolvedProvider, request: ModelsRequest) =>
  client.execute(HttpClientRequest.get(request.url).pipe(HttpClientRequest.setHeaders(request.headers))).pipe(
    Effect.flatMap(HttpClientResponse.schemaBodyJson(ModelList)),
    Effect.map(({ data }) =>
      data.map((m): ModelEntry => ({
        id: m.id,
        ownedBy: provider.name,
        created: m.created ?? secondsOf(m.created_at),
        displayName: m.display_name
      }))
    )
  )

export const make = Effect.gen(function*() {
  const config = yield* TollgateConfig
  const pricing = yield* Pricing
  const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)

  const local: ReadonlyArray<ModelEntry> = [
    ...Object.keys(config.models.aliases),
    "tollgate:fast",
    "tollgate:cheap",
    "tollgate:best",
    "tollgate:auto",
    ...config.routes.flatMap((r) => [
      ...r.targets.flatMap((t) => t.model ?? []),
      ...(r.cascade?.models ?? []),
      ...(r.cascade?.targets ?? []).flatMap((t) => t.model ?? [])
    ])
  ].map((id) => ({ id, ownedBy: "tollgate", created: CREATED }))
  const catalogueOf = (provider: ResolvedProvider): ReadonlyArray<ModelEntry> =>
    pricing.modelsFor([provider.config]).map((id) => ({ id, ownedBy: provider.name, created: CREATED }))

  // Each provider's list: the catalogue until its own answer comes (and whenever it fails).
  const listed = yield* Ref.make<ReadonlyMap<string, ReadonlyArray<ModelEntry>>>(
    new Map(config.providers.map((p) => [p.name, catalogueOf(p)]))
  )
  const firstRound = yield* Deferred.make<void>()

  const listOne = (provider: ResolvedProvider) => {
    // Simulated providers have no list; a provider without its key is not asked.
    const request = Option.isNone(provider.apiKey) ? undefined : modelsRequestOf(provider)
    if (request === undefined) return Effect.void
    return fetchList(client, provider, request).pipe(
      Effect.timeout(FETCH_TIMEOUT),
      Effect.flatMap((models) => Ref.update(listed, (all) => new Map(all).set(provider.name, models))),
      Effect.catchAllCause((cause) =>
        Effect.logWarning(`could not list the models of provider "${provider.name}"; listing its catalogue instead`, cause)
      )
    )
  }
  const refresh = Effect.forEach(config.providers, listOne, { concurrency: "unbounded", discard: true })

  yield* Effect.forkScoped(
    Effect.zipRight(
      Effect.ensuring(refresh, Deferred.succeed(firstRound, undefined)),
      Effect.repeat(Effect.delay(refresh, REFRESH), Schedule.forever)
    )
  )

  const list = Effect.zipRight(
    Effect.ignore(Effect.timeout(Deferred.await(firstRound), FIRST_WAIT)),
    Effect.map(Ref.get(listed), (all) => {
      const seen = new Set<string>()
      const out: Array<ModelEntry> = []
      const add = (entry: ModelEntry) => {
        if (seen.has(entry.id)) return
        seen.add(entry.id)
        out.push(entry)
      }
      for (const provider of config.providers) for (const entry of all.get(provider.name) ?? []) add(entry)
      for (const entry of local) add(entry)
      return out
    })
  )
  return Models.of({ list, refresh })
})

/** The list, on the platform's fetch client (a handful of calls at start and every few minutes: not the hot path). */
export const layer: Layer.Layer<Models, never, TollgateConfig | Pricing> = Layer.scoped(Models, make).pipe(
  Layer.provide(FetchHttpClient.layer)
)

/** `GET /v1/models` in OpenAI's shape. */
export const openAiList = (models: ReadonlyArray<ModelEntry>) => ({
  object: "list",
  data: models.map(openAiModel)
})

export const openAiModel = (m: ModelEntry) => ({ id: m.id, object: "model", created: m.created, owned_by: m.ownedBy })

/** `GET /v1/models` in Anthropic's shape (one page: the whole list). */
export const anthropicList = (models: ReadonlyArray<ModelEntry>) => ({
  data: models.map(anthropicModel),
  has_more: false,
  first_id: models[0]?.id ?? null,
  last_id: models[models.length - 1]?.id ?? null
})

export const anthropicModel = (m: ModelEntry) => ({
  type: "model",
  id: m.id,
  display_name: m.displayName ?? m.id,
  created_at: new Date(m.created * 1000).toISOString()
})
