/**
 * The shape of `tollgate.yaml`, decoded with `effect/Schema`. Every field is optional; defaults are
 * applied here so the rest of the program reads a complete value. Unknown keys are rejected, so a
 * typo (`provders:`) is reported with its path instead of being silently ignored.
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AlertSettings, BudgetSettings } from "../Budget/Settings.js"

export { AlertSettings, BudgetSettings }
import { Millis } from "./Duration.js"
import { applyPreset, PRESET_NAMES } from "./Presets.js"
import { Models, Route } from "../Router/Settings.js"

export { Millis }

const Url = Schema.String.pipe(
  Schema.filter((s) => URL.canParse(s) && /^https?:/.test(s), { message: () => "expected a URL" })
)
const Port = Schema.Int.pipe(
  Schema.between(0, 65535, { message: () => "expected a port number between 0 and 65535" })
)
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "expected a positive integer" }))
const NonNegativeNumber = Schema.Number.pipe(Schema.nonNegative({ message: () => "expected a number >= 0" }))
const HttpStatus = Schema.Int.pipe(Schema.between(400, 599, { message: () => "expected an HTTP error status" }))

/** Per-provider time limits. Each one that fires counts as a failure for retries and breakers. */
export const Timeouts = Schema.Struct({
  /** Establishing the TCP/TLS connection. */
  connect: Schema.optionalWith(Millis, { default: () => 10_000 }),
  /** From sending the request to the response headers. */
  firstByte: Schema.optionalWith(Millis, { default: () => 120_000 }),
  /** Longest silence between two chunks of a streamed answer (and before its first chunk). */
  idle: Schema.optionalWith(Millis, { default: () => 120_000 }),
  /** The whole exchange, body included. */
  total: Schema.optionalWith(Millis, { default: () => 600_000 })
})
export type Timeouts = typeof Timeouts.Type

/**
 * How much of one answer from a provider tollgate holds in memory. Past each bound it does what
 * is said here instead of running out of memory (a provider's answer is never trusted to be small).
 */
export const AnswerLimits = Schema.Struct({
  /**
   * A whole (JSON) answer is read into memory up to this size: exact usage, translation, caching.
   * A larger one is passed through to the client as it comes, its usage read from its end or
   * estimated; one that would need translating is refused (502, `upstream_answer_too_large`).
   */
  bufferBytes: Schema.optionalWith(PositiveInt, { default: () => 8 * 1024 * 1024 }),
  /** One SSE event may be this large; a larger one ends the stream with an error event (`stream_event_too_large`). */
  eventBytes: Schema.optionalWith(PositiveInt, { default: () => 8 * 1024 * 1024 }),
  /** An error answer (status >= 400) is kept up to this size for the client; the rest is dropped. */
  errorBytes: Schema.optionalWith(PositiveInt, { default: () => 64 * 1024 })
})
export type AnswerLimits = typeof AnswerLimits.Type

/**
 * A second key for some of a provider's models (`modelKeys:`): the models matching one of its
 * globs (`*` any run, `?` one character, as in routes) are sent with the key in `apiKeyEnv`
 * instead of the provider's. `as` says how it is sent: `bearer` (`Authorization: Bearer`) or
 * `x-api-key`; by default as the provider's own key is (bearer for openai, x-api-key for
 * anthropic). The first entry whose globs match wins.
 */
export const ModelKey = Schema.Struct({
  models: Schema.NonEmptyArray(Schema.String.pipe(Schema.minLength(1))),
  /** Name of the environment variable that holds the key. The key itself never goes in the file. */
  apiKeyEnv: Schema.String.pipe(Schema.minLength(1)),
  as: Schema.optional(Schema.Literal("bearer", "x-api-key"))
})
export type ModelKey = typeof ModelKey.Type

const openAiProviderFields = {
  kind: Schema.Literal("openai"),
  baseUrl: Url,
  /** Name of the environment variable that holds the key. The key itself never goes in the file. */
  apiKeyEnv: Schema.optional(Schema.String),
  /** Forward the client's own `Authorization` header instead of adding a server-side key. */
  passthroughAuth: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Other keys for some models (see `ModelKey`); other models use `apiKeyEnv`. */
  modelKeys: Schema.optional(Schema.Array(ModelKey)),
  timeouts: Schema.optionalWith(Timeouts, { default: () => Timeouts.make({}) }),
  limits: Schema.optionalWith(AnswerLimits, { default: () => AnswerLimits.make({}) }),
  /** Extra headers sent on every request to this provider. */
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Most connections open to this provider at once (requests beyond wait for one); default 128. */
  maxConnections: Schema.optional(PositiveInt),
  /** A known OpenAI-compatible service: fills `baseUrl`, `apiKeyEnv` and headers (`Config/Presets.ts`). */
  preset: Schema.optional(Schema.Literal(...PRESET_NAMES)),
  /**
   * It serves OpenAI's Responses API (`/responses`): Responses requests pass through; without it
   * they are translated to chat completions. Default: on for OpenAI itself (api.openai.com), off
   * for every other OpenAI-compatible API.
   */
  responsesApi: Schema.optional(Schema.Boolean)
}

/** OpenAI's own API, the one known to serve the Responses API. */
const isOpenAiItself = (baseUrl: string): boolean => {
  try {
    return new URL(baseUrl).hostname === "api.openai.com"
  } catch {
    return false
  }
}

/** Decodes with the preset applied, so `baseUrl` is always there for the adapters. */
export const OpenAiProvider = Schema.transformOrFail(
  Schema.Struct({ ...openAiProviderFields, baseUrl: Schema.optional(Url) }),
  Schema.typeSchema(Schema.Struct(openAiProviderFields)),
  {
    strict: true,
    decode: (declared, _, ast) => {
      const resolved = declared.preset === undefined ? declared : applyPreset(declared.preset, declared)
      const { baseUrl } = resolved
      return baseUrl === undefined
        ? ParseResult.fail(new ParseResult.Pointer("baseUrl", declared, new ParseResult.Type(ast, undefined, "expected a URL, or a preset that supplies one")))
        : ParseResult.succeed({ ...resolved, baseUrl, responsesApi: resolved.responsesApi ?? isOpenAiItself(baseUrl) })
    },
    encode: (provider) => ParseResult.succeed(provider)
  }
)
export type OpenAiProvider = typeof OpenAiProvider.Type

/** Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`). */
export const AnthropicProvider = Schema.Struct({
  kind: Schema.Literal("anthropic"),
  baseUrl: Schema.optionalWith(Url, { default: () => "https://api.anthropic.com" }),
  /** Name of the environment variable that holds the key (sent as `x-api-key`). */
  apiKeyEnv: Schema.optionalWith(Schema.String, { default: () => "ANTHROPIC_API_KEY" }),
  /** Forward the client's own `x-api-key` or `Authorization: Bearer` (Claude Code subscription tokens). */
  passthroughAuth: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Other keys for some models, e.g. a Claude Code OAuth token for `*opus*` sent `as: bearer` (see `ModelKey`). */
  modelKeys: Schema.optional(Schema.Array(ModelKey)),
  /** `anthropic-version` sent when the client sent none. */
  version: Schema.optionalWith(Schema.String, { default: () => "2023-06-01" }),
  timeouts: Schema.optionalWith(Timeouts, { default: () => Timeouts.make({}) }),
  limits: Schema.optionalWith(AnswerLimits, { default: () => AnswerLimits.make({}) }),
  /** Extra headers sent on every request to this provider. */
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Most connections open to this provider at once (requests beyond wait for one); default 128. */
  maxConnections: Schema.optional(PositiveInt)
})
export type AnthropicProvider = typeof AnthropicProvider.Type

export const MockProvider = Schema.Struct({
  kind: Schema.Literal("mock"),
  /** Simulated time to first byte. */
  latencyMs: Schema.optionalWith(NonNegativeNumber, { default: () => 0 }),
  /** Simulated gap between stream chunks. */
  chunkDelayMs: Schema.optionalWith(NonNegativeNumber, { default: () => 0 }),
  /** How many content chunks a streamed answer is cut into. */
  chunks: Schema.optionalWith(PositiveInt, { default: () => 8 }),
  /** Fixed answer text; without it the mock echoes the last user message. */
  reply: Schema.optional(Schema.String),
  /** Failure injection: answer this status instead of a completion... */
  failStatus: Schema.optional(HttpStatus),
  /** ...on every n-th request (1 = always). */
  failEvery: Schema.optionalWith(PositiveInt, { default: () => 1 })
})
export type MockProvider = typeof MockProvider.Type

export const Provider = Schema.Union(OpenAiProvider, AnthropicProvider, MockProvider)
export type Provider = typeof Provider.Type

// Routing (rules, targets, tiers, cascade, aliases, catalogue) is decoded by the Router's own schemas.
export { Route, Target } from "../Router/Settings.js"
export type { Models as ModelsSettings } from "../Router/Settings.js"

const priceRates = {
  /** USD per 1M input tokens. */
  input: NonNegativeNumber,
  /** USD per 1M cached input tokens (defaults to `input`). */
  cachedInput: Schema.optional(NonNegativeNumber),
  /** USD per 1M tokens written to the prompt cache with the 5-minute TTL (defaults to `input`). */
  cacheWrite5m: Schema.optional(NonNegativeNumber),
  /** USD per 1M tokens written with the 1-hour TTL (defaults to `cacheWrite5m`). */
  cacheWrite1h: Schema.optional(NonNegativeNumber),
  /** USD per 1M output tokens. */
  output: NonNegativeNumber,
  /** USD per 1M reasoning tokens, only where billed apart from output (otherwise they are output). */
  reasoning: Schema.optional(NonNegativeNumber)
}

/** Rates that replace the base ones when a request's input tokens exceed `above`. */
export const PriceTier = Schema.Struct({ above: PositiveInt, ...priceRates })
export type PriceTier = typeof PriceTier.Type

export const Price = Schema.Struct({
  ...priceRates,
  /** Long-context tiers (e.g. above 200k input tokens); the highest one exceeded applies. */
  longContext: Schema.optional(Schema.Array(PriceTier))
})
export type Price = typeof Price.Type

const Server = Schema.Struct({
  host: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1" }),
  port: Schema.optionalWith(Port, { default: () => 4100 }),
  /**
   * The admin listener (`/metrics`, `/admin/*`, `/debug/*`); `false` turns it off. Port 0 picks a
   * free port. Off loopback it needs `adminKeys`.
   */
  admin: Schema.optionalWith(
    Schema.Union(
      Schema.Literal(false),
      Schema.Struct({
        host: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1" }),
        /** Default 4101; 0 (a free port) when the public listener's port is 0 and nothing sets this one. */
        port: Schema.optional(Port)
      })
    ),
    { default: () => ({ host: "127.0.0.1" }) }
  ),
  /** Deprecated: `admin.port`. Still read (with a notice at start) so existing files keep working. */
  adminPort: Schema.optional(Port),
  /** When non-empty, admin requests must present one of these as `Authorization: Bearer ...`; required off loopback. */
  adminKeys: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** When non-empty, clients must present one of these as `Authorization: Bearer ...`. */
  apiKeys: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: Schema.optionalWith(PositiveInt, { default: () => 10 * 1024 * 1024 }),
  /**
   * Most bytes of request bodies read into memory at once, over all requests; a request that
   * would pass it gets 503 with Retry-After (one request alone is always let through).
   */
  maxBodyBytesInFlight: Schema.optionalWith(PositiveInt, { default: () => 64 * 1024 * 1024 }),
  /** A request's headers and body must have arrived within this; else 408. */
  bodyTimeout: Schema.optionalWith(Millis, { default: () => 30_000 }),
  /** On shutdown, how long requests in flight may take to finish before they are cut off. */
  drainTimeout: Schema.optionalWith(Millis, { default: () => 10_000 }),
  /**
   * Processes serving the port (`start --workers`): 1 to 64, or `auto` (one per core). More than one
   * needs a shared ledger and, with budgets, a shared store (docs/scale-out.md).
   */
  workers: Schema.optional(Schema.Union(
    Schema.Int.pipe(Schema.between(1, 64, { message: () => "expected an integer from 1 to 64, or auto" })),
    Schema.Literal("auto")
  ))
})

const Database = Schema.Struct({
  /** The SQLite ledger file (the default store). */
  path: Schema.optional(Schema.String),
  /**
   * `postgres://user:password@host:5432/db`: the ledger on PostgreSQL instead of the SQLite file
   * (docs/scale-out.md). Wins over `path` and over the environment's `DATABASE_URL`.
   */
  url: Schema.optional(Schema.String.pipe(Schema.filter((url) =>
    /^postgres(ql)?:\/\//.test(url) || "expected a postgres:// or postgresql:// URL"
  ))),
  /**
   * When the ledger cannot be written: `block` holds the rows in memory, retries, and refuses new
   * requests (503) until it can; `continue` serves on and counts the rows lost. Default: `block`
   * when `budget.enabled`, else `continue`.
   */
  onWriteFailure: Schema.optional(Schema.Literal("block", "continue")),
  /**
   * An answer waits until its row is committed (or in the spill file): a process killed at any
   * moment leaves no answered request without a row. Default: on with a PostgreSQL ledger
   * (replicas, where a process may be killed under load), off with SQLite.
   */
  durable: Schema.optional(Schema.Boolean)
})

/** `redis://` or `rediss://` (TLS). */
export const RedisUrl = Schema.String.pipe(Schema.filter((url) =>
  /^rediss?:\/\//.test(url) || "expected a redis:// or rediss:// URL"
))

/**
 * The Redis server replicas share state through (budgets, alert deduplication, the cache with
 * `cache.redis`, response items): a URL, or a URL with the prefix of every key tollgate writes.
 */
const RedisSettings = Schema.Union(
  RedisUrl,
  Schema.Struct({
    url: RedisUrl,
    keyPrefix: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => "tollgate:" })
  })
)

export const Retry = Schema.Struct({
  /** Retries per target after the first try (0 = no retry). */
  attempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 10, { message: () => "expected 0 to 10" })), {
    default: () => 2
  }),
  /** First backoff; doubles on each retry. */
  baseDelay: Schema.optionalWith(Millis, { default: () => 200 }),
  /** Longest backoff; a Retry-After longer than this fails over at once instead of waiting. */
  maxDelay: Schema.optionalWith(Millis, { default: () => 20_000 })
})
export type Retry = typeof Retry.Type

export const CircuitSettings = Schema.Struct({
  /** Consecutive failures that open a target's breaker. */
  failureThreshold: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  /** How long an open breaker skips its target before letting one probe through. */
  cooldown: Schema.optionalWith(Millis, { default: () => 30_000 }),
  /** Also open when the failure rate over `window` reaches `threshold` (with at least `minRequests`). */
  failureRate: Schema.optional(Schema.Struct({
    threshold: Schema.Number.pipe(Schema.between(0, 1, { message: () => "expected a fraction between 0 and 1" })),
    window: Millis,
    minRequests: Schema.optionalWith(PositiveInt, { default: () => 10 })
  }))
})
export type CircuitSettings = typeof CircuitSettings.Type

export const CacheSettings = Schema.Struct({
  /** Store answers and serve exact repeats. */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** `deterministic`: only requests with temperature 0 or a seed (and answers without tool calls). */
  mode: Schema.optionalWith(Schema.Literal("deterministic", "all"), { default: () => "deterministic" as const }),
  ttl: Schema.optionalWith(Millis, { default: () => 3_600_000 }),
  /** Memory budget of the in-process tier. */
  maxBytes: Schema.optionalWith(PositiveInt, { default: () => 64 * 1024 * 1024 }),
  /** Also keep entries in the SQLite ledger file (gzip), so they survive a restart. */
  persist: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Encrypt entries stored outside the process (`persist`, `redis`) with AES-256-GCM; the key comes from TOLLGATE_CACHE_KEY. */
  encrypt: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Identical cacheable requests in flight at once share one upstream call. */
  coalesce: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * A tier shared by every replica on Redis, behind the memory tier (docs/scale-out.md): a URL, or
   * `true` for the server `redis:` names.
   */
  redis: Schema.optional(Schema.Union(Schema.Boolean, RedisUrl))
})
export type CacheSettings = typeof CacheSettings.Type


/**
 * Cloud ingest (docs/operations.md, "Cloud ingest"): ledger rows, metadata only, POSTed in batches
 * to a workspace's ingest URL in the background. `false` turns it off even when the environment
 * (`CLOUD_INGEST_URL`, `WORKSPACE_ID`, `WORKSPACE_INGEST_KEY`) names one. A field the file leaves
 * out is taken from the environment, so the key can stay out of the file.
 */
export const CloudIngest = Schema.Struct({
  url: Schema.optional(Url),
  workspaceId: Schema.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "expected a workspace id" }))),
  /** The workspace's ingest key; prefer `WORKSPACE_INGEST_KEY` in the environment to writing it here. */
  key: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.minLength(1, { message: () => "expected a key" })))),
  /** Most rows in one POST. */
  batchSize: Schema.optionalWith(
    Schema.Int.pipe(Schema.between(1, 5_000, { message: () => "expected 1 to 5000" })),
    { default: () => 500 }
  ),
  /** How often the ledger is looked at for rows not yet sent, when the last batch was not full. */
  interval: Schema.optionalWith(Millis, { default: () => 5_000 }),
  /** First backoff after a failed POST; doubles (with jitter) up to `maxDelay`. */
  baseDelay: Schema.optionalWith(Millis, { default: () => 1_000 }),
  /** Longest wait between two tries (a longer `Retry-After` is honoured). */
  maxDelay: Schema.optionalWith(Millis, { default: () => 300_000 }),
  /** One POST may take this long before it counts as failed. */
  timeout: Schema.optionalWith(Millis, { default: () => 30_000 })
})
export type CloudIngest = typeof CloudIngest.Type

export const TelemetrySettings = Schema.Struct({
  cloud: Schema.optional(Schema.Union(Schema.Literal(false), CloudIngest))
})

export const TollgateConfigSchema = Schema.Struct({
  server: Schema.optionalWith(Server, { default: () => Server.make({}) }),
  database: Schema.optionalWith(Database, { default: () => ({}) }),
  redis: Schema.optional(RedisSettings),
  providers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Provider }), { default: () => ({}) }),
  routes: Schema.optionalWith(Schema.Array(Route), { default: () => [] }),
  pricing: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Price }), { default: () => ({}) }),
  retry: Schema.optionalWith(Retry, { default: () => Retry.make({}) }),
  circuit: Schema.optionalWith(CircuitSettings, { default: () => CircuitSettings.make({}) }),
  cache: Schema.optionalWith(CacheSettings, { default: () => CacheSettings.make({}) }),
  budget: Schema.optionalWith(BudgetSettings, { default: () => BudgetSettings.make({}) }),
  alerts: Schema.optionalWith(AlertSettings, { default: () => AlertSettings.make({}) }),
  telemetry: Schema.optionalWith(TelemetrySettings, { default: () => ({}) }),
  models: Schema.optionalWith(Models, { default: () => Models.make({}) })
})

/** What the file says, after defaults. */
export type FileConfig = typeof TollgateConfigSchema.Type
/** What a file (or a library user) may write: every field optional. */
export type FileConfigInput = typeof TollgateConfigSchema.Encoded
