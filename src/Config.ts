/**
 * The `Config` service: the decoded, resolved configuration every other module reads.
 *
 * Resolution order (later wins): defaults < `tollgate.yaml` < environment < command-line flags.
 * The file is found at `--config`, `$TOLLGATE_CONFIG`, `./tollgate.yaml`,
 * `~/.config/tollgate/tollgate.yaml`, in that order. Keys are read from the environment here, once,
 * and held as `Redacted` values so they never print.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as EnvConfig from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as os from "node:os"
import * as path from "node:path"
import * as Yaml from "yaml"
import {
  AnswerLimits,
  type FileConfig,
  type FileConfigInput,
  type MockProvider,
  type ModelsSettings,
  type Price,
  type Provider,
  type Route,
  Timeouts,
  TollgateConfigSchema
} from "./Config/Schema.js"
import { providerReferences } from "./Router/Settings.js"

export * from "./Config/Schema.js"

export interface ResolvedProvider {
  readonly name: string
  readonly config: Provider
  /** The server-side key, read from `apiKeyEnv` at start. */
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
}

export interface TollgateConfig {
  readonly server: FileConfig["server"]
  readonly dbPath: string
  /** `database.onWriteFailure`, its default resolved (`block` when budgets are on). */
  readonly onWriteFailure: "block" | "continue"
  /** In configuration order; the first one is the default target when no route matches. */
  readonly providers: ReadonlyArray<ResolvedProvider>
  readonly routes: ReadonlyArray<Route>
  /** Aliases, overrides, catalogue extensions and quality ranks (see Router/Settings.ts). */
  readonly models: ModelsSettings
  readonly pricing: Readonly<Record<string, Price>>
  readonly retry: FileConfig["retry"]
  readonly circuit: FileConfig["circuit"]
  readonly cache: FileConfig["cache"]
  readonly budget: FileConfig["budget"]
  readonly alerts: FileConfig["alerts"]
  /** TOLLGATE_CACHE_KEY, decoded, when `cache.encrypt` is on. */
  readonly cacheKey: Option.Option<Redacted.Redacted<Uint8Array>>
  /** Where the file came from, if there was one. */
  readonly source: string | undefined
  /** Things the operator should know at start (a missing key, the simulated provider...). */
  readonly notices: ReadonlyArray<string>
  /** Reload routing when the file changes (`start --watch`). */
  readonly watch: boolean
  /** The flags it was loaded with, so a reload resolves the file the same way. */
  readonly overrides: Overrides
}

export class Config extends Context.Tag("tollgate/Config")<Config, TollgateConfig>() {}

/** Why a configuration was refused. `message` is meant for a human and names the key path. */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly message: string }> {}

/** What the `start` command's flags can override. */
export interface Overrides {
  readonly configPath?: string | undefined
  readonly port?: number | undefined
  readonly host?: string | undefined
  /** Serve the built-in simulated provider only, whatever else is configured. */
  readonly demo?: boolean | undefined
  /** Reload routing when the config file changes. */
  readonly watch?: boolean | undefined
}

const fromEnvError = <E>(e: E | ConfigError): ConfigError =>
  e instanceof ConfigError ? e : new ConfigError({ message: `environment: ${String(e)}` })

const optionalEnv = (name: string) => EnvConfig.option(EnvConfig.string(name))

const formatIssues = (error: ParseResult.ParseError, prefix: string): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const where = issue.path.length === 0 ? "(top level)" : issue.path.map(String).join(".")
      const message = issue._tag === "Unexpected" ? "unknown key" : issue.message
      return `${prefix}${where}: ${message}`
    })
    .join("\n")

/** Decode a parsed config object (from YAML or from a library user's code). */
export const decode = (input: unknown, origin: string): Effect.Effect<FileConfig, ConfigError> =>
  Schema.decodeUnknown(TollgateConfigSchema, { errors: "all", onExcessProperty: "error" })(input ?? {}).pipe(
    Effect.mapError((error) => new ConfigError({ message: `invalid configuration in ${origin}:\n${formatIssues(error, "  ")}` }))
  )

const discover = (explicit: string | undefined) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fromEnv = yield* optionalEnv("TOLLGATE_CONFIG")
    const required = explicit ?? Option.getOrUndefined(fromEnv)
    if (required !== undefined) {
      const exists = yield* fs.exists(required).pipe(Effect.orElseSucceed(() => false))
      if (!exists) return yield* new ConfigError({ message: `config file not found: ${required}` })
      return Option.some(required)
    }
    for (const candidate of [path.resolve("tollgate.yaml"), path.join(os.homedir(), ".config", "tollgate", "tollgate.yaml")]) {
      if (yield* fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))) return Option.some(candidate)
    }
    return Option.none<string>()
  })

const readFile = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new ConfigError({ message: `cannot read config file ${file}: ${e.message}` }))
    )
    const doc = Yaml.parseDocument(text)
    const first = doc.errors[0]
    if (first !== undefined) {
      return yield* new ConfigError({ message: `invalid YAML in ${file}: ${first.message.split("\n")[0]}` })
    }
    return doc.toJS() as unknown
  })

const parsePort = (name: string, value: string) => {
  const n = Number(value)
  return Number.isInteger(n) && n >= 0 && n <= 65535
    ? Effect.succeed(n)
    : Effect.fail(new ConfigError({ message: `${name}: expected a port number between 0 and 65535, got "${value}"` }))
}

const firstSome = <A>(...options: ReadonlyArray<Option.Option<A>>): Option.Option<A> =>
  options.find(Option.isSome) ?? Option.none()

/** Providers from the plain environment variables other sidecars use, when the file has none. */
const providersFromEnv = Effect.gen(function*() {
  const upstreamUrl = yield* optionalEnv("UPSTREAM_BASE_URL")
  const openAiKey = yield* optionalEnv("OPENAI_API_KEY")
  const anthropicKey = yield* optionalEnv("ANTHROPIC_API_KEY")
  const providers: Record<string, Provider> = {}
  if (Option.isSome(upstreamUrl)) {
    providers.upstream = {
      kind: "openai",
      baseUrl: upstreamUrl.value,
      apiKeyEnv: "UPSTREAM_API_KEY",
      passthroughAuth: false,
      timeouts: Timeouts.make({}),
      limits: AnswerLimits.make({}),
      headers: {}
    }
  }
  if (Option.isSome(openAiKey)) {
    providers.openai = {
      kind: "openai",
      baseUrl: "https://api.openai.com/v1",
      apiKeyEnv: "OPENAI_API_KEY",
      passthroughAuth: false,
      timeouts: Timeouts.make({}),
      limits: AnswerLimits.make({}),
      headers: {}
    }
  }
  if (Option.isSome(anthropicKey)) {
    providers.anthropic = {
      kind: "anthropic",
      baseUrl: "https://api.anthropic.com",
      apiKeyEnv: "ANTHROPIC_API_KEY",
      passthroughAuth: false,
      version: "2023-06-01",
      timeouts: Timeouts.make({}),
      limits: AnswerLimits.make({}),
      headers: {}
    }
  }
  return providers
})

/** A 256-bit key written as 64 hex characters or as base64. */
const decodeCacheKey = (text: string): Uint8Array | undefined => {
  const trimmed = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, "hex")
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, "base64") : undefined
  return bytes !== undefined && bytes.length === 32 ? bytes : undefined
}

const builtInMock: MockProvider = { kind: "mock", latencyMs: 0, chunkDelayMs: 0, chunks: 8, failEvery: 1 }

/**
 * Turn a decoded file into the running configuration: environment and flag overrides, default
 * providers, keys read from the environment, references checked.
 */
export const resolve = (file: FileConfig, source: string | undefined, overrides: Overrides = {}) =>
  Effect.gen(function*() {
    const notices: Array<string> = []

    const envPort = firstSome(yield* optionalEnv("TOLLGATE_PORT"), yield* optionalEnv("PORT"))
    const port = overrides.port ??
      (Option.isSome(envPort) ? yield* parsePort("TOLLGATE_PORT/PORT", envPort.value) : file.server.port)
    const host = overrides.host ??
      Option.getOrElse(firstSome(yield* optionalEnv("TOLLGATE_HOST"), yield* optionalEnv("HOST")), () => file.server.host)
    const dbPath = Option.getOrElse(
      yield* optionalEnv("TOLLGATE_DB"),
      () => file.database.path ?? path.join(os.homedir(), ".tollgate", "tollgate.db")
    )

    let declared: Record<string, Provider> = file.providers
    let routes = file.routes
    let models = file.models
    if (overrides.demo === true) {
      declared = { mock: builtInMock }
      routes = []
      models = { aliases: {}, overrides: {}, catalogue: {}, quality: {} }
      notices.push("demo mode: serving the built-in simulated provider (mock); no request leaves this machine")
    } else if (Object.keys(declared).length === 0) {
      declared = yield* providersFromEnv
      if (Object.keys(declared).length === 0) {
        declared = { mock: builtInMock }
        notices.push(
          "no provider configured: serving the built-in simulated provider (mock). " +
            "Set OPENAI_API_KEY, ANTHROPIC_API_KEY, UPSTREAM_BASE_URL + UPSTREAM_API_KEY, or write a tollgate.yaml to proxy a real one"
        )
      }
    }

    const providers: Array<ResolvedProvider> = []
    for (const [name, config] of Object.entries(declared)) {
      let apiKey = Option.none<Redacted.Redacted<string>>()
      if (config.kind !== "mock" && config.apiKeyEnv !== undefined) {
        apiKey = yield* EnvConfig.option(EnvConfig.redacted(config.apiKeyEnv))
        if (Option.isNone(apiKey) && !config.passthroughAuth) {
          notices.push(`provider "${name}": ${config.apiKeyEnv} is not set, requests will carry no key`)
        }
      }
      providers.push({ name, config, apiKey })
    }

    let cacheKey = Option.none<Redacted.Redacted<Uint8Array>>()
    if (file.cache.persist && file.cache.encrypt) {
      const raw = yield* optionalEnv("TOLLGATE_CACHE_KEY")
      const bytes = Option.map(raw, decodeCacheKey)
      if (Option.isNone(bytes) || bytes.value === undefined) {
        return yield* new ConfigError({
          message: Option.isNone(raw)
            ? "cache.encrypt is on but TOLLGATE_CACHE_KEY is not set (32 bytes, as 64 hex characters or base64)"
            : "TOLLGATE_CACHE_KEY: expected 32 bytes, as 64 hex characters or base64"
        })
      }
      cacheKey = Option.some(Redacted.make(bytes.value))
    }

    const known = new Set(providers.map((p) => p.name))
    const problems: Array<string> = []
    routes.forEach((route, i) =>
      providerReferences(route, i).forEach(({ path, provider }) => {
        if (!known.has(provider)) problems.push(`  ${path}: unknown provider "${provider}"`)
      })
    )
    for (const [model, entry] of Object.entries(models.catalogue)) {
      for (const provider of entry.providers ?? []) {
        if (!known.has(provider)) problems.push(`  models.catalogue.${model}.providers: unknown provider "${provider}"`)
      }
    }
    if (problems.length > 0) {
      return yield* new ConfigError({ message: `invalid configuration in ${source ?? "config"}:\n${problems.join("\n")}` })
    }

    const config: TollgateConfig = {
      server: { ...file.server, port, host },
      dbPath,
      onWriteFailure: file.database.onWriteFailure ?? (file.budget.enabled ? "block" : "continue"),
      providers,
      routes,
      models,
      pricing: file.pricing,
      retry: file.retry,
      circuit: file.circuit,
      cache: file.cache,
      budget: file.budget,
      alerts: file.alerts,
      cacheKey,
      source,
      notices,
      watch: overrides.watch === true,
      overrides
    }
    return config
  }).pipe(Effect.mapError(fromEnvError))

/** Discover, read, decode and resolve: what `tollgate start` does. */
export const load = (overrides: Overrides = {}): Effect.Effect<TollgateConfig, ConfigError> =>
  Effect.gen(function*() {
    const file = yield* discover(overrides.configPath)
    const raw = Option.isSome(file) ? yield* readFile(file.value) : {}
    const decoded = yield* decode(raw, Option.getOrElse(file, () => "defaults"))
    return yield* resolve(decoded, Option.getOrUndefined(file), overrides)
  }).pipe(Effect.mapError(fromEnvError), Effect.provide(NodeFileSystem.layer))

/** The configuration found on disk and in the environment. */
export const layer = (overrides: Overrides = {}): Layer.Layer<Config, ConfigError> =>
  Layer.effect(Config, load(overrides))

/**
 * A configuration given in code, for programs that compose tollgate's layers into their own:
 * the same schema and defaults as the file, keys still read from the environment.
 */
export const layerFrom = (input: FileConfigInput, overrides: Omit<Overrides, "configPath"> = {}): Layer.Layer<Config, ConfigError> =>
  Layer.effect(Config, Effect.flatMap(decode(input, "code"), (file) => resolve(file, undefined, overrides)))


export const isMockOnly = (config: TollgateConfig): boolean => config.providers.every((p) => p.config.kind === "mock")
