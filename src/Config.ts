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
import * as Cloud from "./Config/Cloud.js"
import type { CloudTarget } from "./Config/Cloud.js"
import * as Redis from "./Config/Redis.js"
import type { RedisTarget } from "./Config/Redis.js"
import { providerReferences } from "./Router/Settings.js"
import { isSimulated } from "./Upstream/Kinds.js"

export * from "./Config/Schema.js"

export type { ResolvedModelKey, ResolvedProvider } from "./Config/Provider.js"
import type { ResolvedModelKey, ResolvedProvider } from "./Config/Provider.js"
import { globToRegExp } from "./Router/Rules.js"

/** The admin listener's address once resolved (`false`: off). */
export type AdminAddress = false | { readonly host: string; readonly port: number }

export interface TollgateSettings {
  readonly server: Omit<FileConfig["server"], "admin" | "adminPort"> & { readonly admin: AdminAddress }
  readonly dbPath: string
  /**
   * The ledger on PostgreSQL, when set: `database.url`, else `DATABASE_URL` (a postgres:// one) when
   * neither `TOLLGATE_DB` nor `database.path` names a SQLite file. Then `dbPath` is not used.
   */
  readonly databaseUrl: Redacted.Redacted<string> | undefined
  /** The Redis server replicas share budgets, alerts and (with `cache.redis`) the cache through (`Config/Redis.ts`). */
  readonly redis: RedisTarget | undefined
  /** Cloud ingest's endpoint, workspace and key (`telemetry.cloud` over the environment, `Config/Cloud.ts`); undefined: off. */
  readonly cloud: CloudTarget | undefined
  /** `database.onWriteFailure`, its default resolved (`block` when budgets are on). */
  readonly onWriteFailure: "block" | "continue"
  /** `database.durable`, its default resolved (on with a PostgreSQL ledger). */
  readonly durable: boolean
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
  /** Where `server.port` and `server.host` came from when it was a generic variable (`PORT`, `HOST`). */
  readonly bindFrom: BindFrom
  /** `TOLLGATE_LOG_LEVEL`, when set: the least severe log line `start` prints. */
  readonly logLevel: LogLevelName | undefined
  /** Reload routing when the file changes (`start --watch`). */
  readonly watch: boolean
  /** The flags it was loaded with, so a reload resolves the file the same way. */
  readonly overrides: Overrides
}

export class TollgateConfig extends Context.Tag("tollgate/Config")<TollgateConfig, TollgateSettings>() {}

/** Why a configuration was refused. `message` is meant for a human and names the key path. */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly message: string }> {}

/** Which source gave the listener its port and host: a flag, an environment variable, the file, the default. */
export interface BindFrom {
  readonly port: string
  readonly host: string
}

export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const
export type LogLevelName = typeof LOG_LEVELS[number]

/** What the `start` command's flags can override. */
export interface Overrides {
  readonly configPath?: string | undefined
  readonly port?: number | undefined
  readonly host?: string | undefined
  /** Serve the built-in simulated provider only, whatever else is configured. */
  readonly demo?: boolean | undefined
  /** Reload routing when the config file changes. */
  readonly watch?: boolean | undefined
  /** The admin listener's port (`start --admin-port`; 0 picks a free one). */
  readonly adminPort?: number | undefined
}

const fromEnvError = <E>(e: E | ConfigError): ConfigError =>
  e instanceof ConfigError ? e : new ConfigError({ message: `environment: ${String(e)}` })

const optionalEnv = (name: string) => EnvConfig.option(EnvConfig.string(name))

/**
 * The Postgres ledger's URL: `database.url` in the file first; then `DATABASE_URL`, but only when
 * nothing tollgate's own names a SQLite ledger (`TOLLGATE_DB`, `database.path`) and only a
 * postgres:// one. `DATABASE_URL` is a name many apps use: a shell that has one for another app
 * must not move tollgate's ledger into that app's database behind an explicit setting.
 */
const resolveDatabaseUrl = (file: FileConfig) =>
  Effect.gen(function*() {
    if (file.database.url !== undefined) return Redacted.make(file.database.url)
    if (file.database.path !== undefined || Option.isSome(yield* optionalEnv("TOLLGATE_DB"))) return undefined
    const fromEnv = yield* optionalEnv("DATABASE_URL")
    return Option.isSome(fromEnv) && /^postgres(ql)?:\/\//.test(fromEnv.value) ? Redacted.make(fromEnv.value) : undefined
  })

/**
 * Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, ignoring case:
 * `baseURL` is 0 from `baseUrl`, `prot` 1 from `port`.
 */
const editDistance = (a: string, b: string): number => {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  const d: Array<Array<number>> = Array.from({ length: x.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= y.length; j++) d[0]![j] = j
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[x.length]![y.length]!
}

/** The allowed key closest to `key`, if one is close enough to be a typo of it. */
export const closestKey = (key: string, allowed: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1
  for (const candidate of allowed) {
    const distance = editDistance(key, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/**
 * One line per problem. An optional field fails twice (its type, then `undefined`), and its
 * parents repeat it as `Expected undefined, actual <the subtree>`: those echoes are dropped. An
 * unknown key is offered the allowed key it is closest to (Schema lists them in the issue).
 */
const formatIssues = (error: ParseResult.ParseError, prefix: string): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const real = issues.filter((issue) => !(issue._tag === "Type" && issue.message.startsWith("Expected undefined, actual ")))
  const lines = (real.length > 0 ? real : issues).map((issue) => {
    const where = issue.path.length === 0 ? "(top level)" : issue.path.map(String).join(".")
    if (issue._tag !== "Unexpected") return `${prefix}${where}: ${issue.message}`
    const key = String(issue.path[issue.path.length - 1] ?? "")
    const allowed = Array.from(issue.message.matchAll(/"([^"]+)"/g), (m) => m[1]!)
    const suggestion = closestKey(key, allowed)
    return `${prefix}${where}: unknown key${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`
  })
  return Array.from(new Set(lines)).join("\n")
}

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
    if (first !== undefined) return yield* new ConfigError({ message: describeYamlError(file, text, first) })
    return doc.toJS() as unknown
  })

/**
 * `invalid YAML in FILE at line L, column C: what`, then the line with a caret under the column
 * (or, when the error is at the end of the file, the last line written before it).
 */
const describeYamlError = (file: string, text: string, error: Yaml.YAMLError): string => {
  const what = error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, "").split("\n")[0]!
  const at = error.linePos?.[0]
  if (at === undefined) return `invalid YAML in ${file}: ${what}`
  const lines = text.split(/\r?\n/)
  let line = at.line
  while (line > 1 && (lines[line - 1] ?? "").trim() === "") line--
  const shown = lines[line - 1] ?? ""
  const gutter = `  ${line} | `
  const caret = line === at.line ? `\n${" ".repeat(gutter.length + at.col - 1)}^` : ""
  return `invalid YAML in ${file} at line ${at.line}, column ${at.col}: ${what}\n${gutter}${shown}${caret}`
}

const parsePort = (name: string, value: string) => {
  const n = Number(value)
  return Number.isInteger(n) && n >= 0 && n <= 65535
    ? Effect.succeed(n)
    : Effect.fail(new ConfigError({ message: `${name}: expected a port number between 0 and 65535, got "${value}"` }))
}

/** Providers from the plain environment variables other sidecars use, when the file has none. */
const providersFromEnv = Effect.gen(function*() {
  const upstreamUrl = yield* optionalEnv("UPSTREAM_BASE_URL")
  const upstreamKey = yield* optionalEnv("UPSTREAM_API_KEY")
  const openAiKey = yield* optionalEnv("OPENAI_API_KEY")
  const anthropicKey = yield* optionalEnv("ANTHROPIC_API_KEY")
  const providers: Record<string, Provider> = {}
  if (Option.isSome(upstreamUrl)) {
    providers.upstream = {
      kind: "openai",
      baseUrl: upstreamUrl.value,
      // A local server (vLLM, Ollama, LM Studio) needs no key: without UPSTREAM_API_KEY it gets none.
      ...(Option.isSome(upstreamKey) ? { apiKeyEnv: "UPSTREAM_API_KEY" } : {}),
      passthroughAuth: false,
      timeouts: Timeouts.make({}),
      limits: AnswerLimits.make({}),
      headers: {}
    }
  }
  if (Option.isSome(openAiKey) && openAiKey.value !== "") {
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
  if (Option.isSome(anthropicKey) && anthropicKey.value !== "") {
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

/** The listener's port and host: flag, then `TOLLGATE_*`, then the generic `PORT`/`HOST`, then the file. */
const resolveBind = (server: FileConfig["server"], overrides: Overrides) =>
  Effect.gen(function*() {
    const tollgatePort = yield* optionalEnv("TOLLGATE_PORT")
    const genericPort = yield* optionalEnv("PORT")
    const tollgateHost = yield* optionalEnv("TOLLGATE_HOST")
    const genericHost = yield* optionalEnv("HOST")
    let port = server.port
    let portFrom = "file"
    if (overrides.port !== undefined) [port, portFrom] = [overrides.port, "--port"]
    else if (Option.isSome(tollgatePort)) [port, portFrom] = [yield* parsePort("TOLLGATE_PORT", tollgatePort.value), "TOLLGATE_PORT"]
    else if (Option.isSome(genericPort)) [port, portFrom] = [yield* parsePort("PORT", genericPort.value), "PORT"]
    let host = server.host
    let hostFrom = "file"
    if (overrides.host !== undefined) [host, hostFrom] = [overrides.host, "--host"]
    else if (Option.isSome(tollgateHost)) [host, hostFrom] = [tollgateHost.value, "TOLLGATE_HOST"]
    else if (Option.isSome(genericHost)) [host, hostFrom] = [genericHost.value, "HOST"]
    return { port, host, from: { port: portFrom, host: hostFrom } satisfies BindFrom }
  })

const parseBoolean = (name: string, value: string) => {
  const text = value.trim().toLowerCase()
  return text === "true" ? Effect.succeed(true) : text === "false" ? Effect.succeed(false) :
    Effect.fail(new ConfigError({ message: `${name}: expected true or false, got "${value}"` }))
}

const parseUsd = (name: string, value: string) => {
  const n = Number(value.trim())
  return value.trim() !== "" && Number.isFinite(n) && n >= 0
    ? Effect.succeed(n)
    : Effect.fail(new ConfigError({ message: `${name}: expected an amount in USD (a number >= 0, such as 10 or 2.5), got "${value}"` }))
}

const parseLogLevel = (name: string, value: string) => {
  const text = value.trim().toLowerCase()
  return (LOG_LEVELS as ReadonlyArray<string>).includes(text)
    ? Effect.succeed(text as LogLevelName)
    : Effect.fail(new ConfigError({ message: `${name}: expected one of ${LOG_LEVELS.join(", ")}, got "${value}"` }))
}

/** A global limit for `window` at `usd`, replacing the file's global one for that window. */
const withGlobalLimit = (budget: FileConfig["budget"], window: "daily" | "monthly", usd: number): FileConfig["budget"] => ({
  ...budget,
  enabled: true,
  limits: [
    ...budget.limits.filter((l) => !(l.window === window && (l.scope ?? "global") === "global" && l.key === undefined)),
    { scope: "global", window, usd }
  ]
})

/**
 * The settings people change most, from the environment (over the file, under flags):
 * `TOLLGATE_BUDGET_DAILY_LIMIT_USD`, `TOLLGATE_BUDGET_MONTHLY_LIMIT_USD` (a global limit, and
 * budgets on), `TOLLGATE_CACHE_ENABLED`, `TOLLGATE_LOG_LEVEL`, `TOLLGATE_ADMIN_PORT`.
 */
const environmentSettings = (file: FileConfig) =>
  Effect.gen(function*() {
    let budget = file.budget
    const daily = yield* optionalEnv("TOLLGATE_BUDGET_DAILY_LIMIT_USD")
    if (Option.isSome(daily)) budget = withGlobalLimit(budget, "daily", yield* parseUsd("TOLLGATE_BUDGET_DAILY_LIMIT_USD", daily.value))
    const monthly = yield* optionalEnv("TOLLGATE_BUDGET_MONTHLY_LIMIT_USD")
    if (Option.isSome(monthly)) {
      budget = withGlobalLimit(budget, "monthly", yield* parseUsd("TOLLGATE_BUDGET_MONTHLY_LIMIT_USD", monthly.value))
    }
    let cache = file.cache
    const cacheEnabled = yield* optionalEnv("TOLLGATE_CACHE_ENABLED")
    if (Option.isSome(cacheEnabled)) cache = { ...cache, enabled: yield* parseBoolean("TOLLGATE_CACHE_ENABLED", cacheEnabled.value) }
    const logLevel = yield* optionalEnv("TOLLGATE_LOG_LEVEL")
    const adminPort = yield* optionalEnv("TOLLGATE_ADMIN_PORT")
    return {
      budget,
      cache,
      logLevel: Option.isSome(logLevel) ? yield* parseLogLevel("TOLLGATE_LOG_LEVEL", logLevel.value) : undefined,
      adminPort: Option.isSome(adminPort) ? yield* parsePort("TOLLGATE_ADMIN_PORT", adminPort.value) : undefined
    }
  })

/**
 * The provider's key. No `apiKeyEnv`, or an empty variable: it sends none (a local server needs
 * none), said once at start. A variable named but not set: the provider is left out of routing,
 * and start names the variable.
 */
const resolveKey = (name: string, config: Provider, whyNoKey = "no apiKeyEnv") =>
  Effect.gen(function*() {
    const none = Option.none<Redacted.Redacted<string>>()
    if (isSimulated(config)) return { provider: { name, config, apiKey: none }, notice: undefined }
    if (config.apiKeyEnv === undefined) {
      return {
        provider: { name, config, apiKey: none },
        notice: config.passthroughAuth ? undefined : `provider "${name}" sends no key (${whyNoKey})`
      }
    }
    const value = yield* optionalEnv(config.apiKeyEnv)
    if (Option.isNone(value)) {
      return config.passthroughAuth
        ? { provider: { name, config, apiKey: none }, notice: undefined }
        : {
          provider: { name, config, apiKey: none, missingKeyEnv: config.apiKeyEnv },
          notice: `provider "${name}": its key variable ${config.apiKeyEnv} is not set; ` +
            `requests only it can serve are refused (503) until it is`
        }
    }
    if (value.value === "") {
      return {
        provider: { name, config, apiKey: none },
        notice: config.passthroughAuth ? undefined : `provider "${name}" sends no key (${config.apiKeyEnv} is empty)`
      }
    }
    return { provider: { name, config, apiKey: Option.some(Redacted.make(value.value)) }, notice: undefined }
  })

/**
 * A provider's `modelKeys`, read like its `apiKeyEnv`: a variable not set leaves that entry's
 * models out of routing (`no_key`), said at start; an empty one sends no key. None with
 * `passthroughAuth` (the client's own key goes, whatever the model) or a simulated kind.
 */
const resolveModelKeys = (name: string, config: Provider) =>
  Effect.gen(function*() {
    const notices: Array<string> = []
    if (isSimulated(config) || config.modelKeys === undefined || config.modelKeys.length === 0) return { modelKeys: undefined, notices }
    if (config.passthroughAuth) {
      notices.push(`provider "${name}": modelKeys are not used with passthroughAuth (the client's own key is forwarded)`)
      return { modelKeys: undefined, notices }
    }
    const modelKeys: Array<ResolvedModelKey> = []
    for (const entry of config.modelKeys) {
      const value = yield* optionalEnv(entry.apiKeyEnv)
      const missing = Option.isNone(value)
      const models = entry.models.join(", ")
      if (missing) {
        notices.push(
          `provider "${name}": the key variable ${entry.apiKeyEnv} for models ${models} is not set; ` +
            `requests for those models only it can serve are refused (503) until it is`
        )
      } else if (value.value === "") {
        notices.push(`provider "${name}" sends no key for models ${models} (${entry.apiKeyEnv} is empty)`)
      }
      modelKeys.push({
        models: entry.models,
        patterns: entry.models.map(globToRegExp),
        apiKeyEnv: entry.apiKeyEnv,
        apiKey: Option.isSome(value) && value.value !== "" ? Option.some(Redacted.make(value.value)) : Option.none(),
        as: entry.as ?? (config.kind === "anthropic" ? "x-api-key" : "bearer"),
        missing
      })
    }
    return { modelKeys, notices }
  })

const builtInMock: MockProvider = { kind: "mock", latencyMs: 0, chunkDelayMs: 0, chunks: 8, failEvery: 1 }

/**
 * The admin listener's address: `server.admin`, its port from the deprecated `server.adminPort`
 * (with a notice naming the new key), then `TOLLGATE_ADMIN_PORT`, then `--admin-port`. `false`
 * stays off whatever the port says.
 */
const resolveAdmin = (
  server: FileConfig["server"],
  envPort: number | undefined,
  publicPort: number,
  overrides: Overrides,
  notices: Array<string>
): AdminAddress => {
  const admin = server.admin
  if (server.adminPort !== undefined) {
    notices.push(`server.adminPort is deprecated: write server.admin: { port: ${server.adminPort} } instead (read as that this time)`)
  }
  if (admin === false) return false
  // A public listener on a free port (tests, several instances on one machine) gets a free admin
  // port too, unless one is set: two of them would otherwise fight over 4101.
  const port = overrides.adminPort ?? envPort ?? admin.port ?? server.adminPort ?? (publicPort === 0 ? 0 : DEFAULT_ADMIN_PORT)
  return { host: admin.host, port }
}

export const DEFAULT_ADMIN_PORT = 4101

/**
 * Turn a decoded file into the running configuration: environment and flag overrides, default
 * providers, keys read from the environment, references checked.
 */
export const resolve = (file: FileConfig, source: string | undefined, overrides: Overrides = {}) =>
  Effect.gen(function*() {
    const notices: Array<string> = []

    const bind = yield* resolveBind(file.server, overrides)
    if (bind.from.port === "PORT") {
      notices.push(`port ${bind.port} comes from the environment variable PORT (TOLLGATE_PORT and --port take precedence)`)
    }
    if (bind.from.host === "HOST") {
      notices.push(`host ${bind.host} comes from the environment variable HOST (TOLLGATE_HOST and --host take precedence)`)
    }
    const dbPath = Option.getOrElse(
      yield* optionalEnv("TOLLGATE_DB"),
      () => file.database.path ?? path.join(os.homedir(), ".tollgate", "tollgate.db")
    )
    const databaseUrl = yield* resolveDatabaseUrl(file)
    const redis = yield* Effect.mapError(Redis.resolve(file), fromEnvError)
    if (redis !== undefined && "problem" in redis) return yield* new ConfigError({ message: redis.problem })
    const cloud = yield* Effect.mapError(Cloud.resolve(file), fromEnvError)
    if ("problem" in cloud) return yield* new ConfigError({ message: cloud.problem })
    notices.push(...cloud.notices)
    const settings = yield* environmentSettings(file)

    let declared: Record<string, Provider> = file.providers
    let fromEnv = false
    let routes = file.routes
    let models = file.models
    if (overrides.demo === true) {
      declared = { mock: builtInMock }
      routes = []
      models = { aliases: {}, overrides: {}, catalogue: {}, quality: {} }
      notices.push("demo mode: serving the built-in simulated provider (mock); no request leaves this machine")
    } else if (Object.keys(declared).length === 0) {
      declared = yield* providersFromEnv
      fromEnv = true
      if (Object.keys(declared).length === 0) {
        declared = { mock: builtInMock }
        notices.push(
          "no provider configured: serving the built-in simulated provider (mock). " +
            "Set OPENAI_API_KEY, ANTHROPIC_API_KEY, UPSTREAM_BASE_URL (and UPSTREAM_API_KEY if that server wants a key), or write a tollgate.yaml to proxy a real one"
        )
      }
    }

    const providers: Array<ResolvedProvider> = []
    for (const [name, config] of Object.entries(declared)) {
      const resolved = yield* resolveKey(name, config, fromEnv ? `${name.toUpperCase()}_API_KEY is not set` : undefined)
      if (resolved.notice !== undefined) notices.push(resolved.notice)
      const keys = yield* resolveModelKeys(name, config)
      notices.push(...keys.notices)
      providers.push(keys.modelKeys === undefined ? resolved.provider : { ...resolved.provider, modelKeys: keys.modelKeys })
    }

    let cacheKey = Option.none<Redacted.Redacted<Uint8Array>>()
    // Entries leave the process in the persisted tier and the shared one (`cache.redis`).
    const sealed = settings.cache.persist || (settings.cache.redis !== undefined && settings.cache.redis !== false)
    if (sealed && settings.cache.encrypt) {
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

    const { adminPort: _deprecated, ...server } = file.server
    const config: TollgateSettings = {
      server: { ...server, port: bind.port, host: bind.host, admin: resolveAdmin(file.server, settings.adminPort, bind.port, overrides, notices) },
      dbPath,
      databaseUrl,
      redis,
      cloud: cloud.target,
      onWriteFailure: file.database.onWriteFailure ?? (settings.budget.enabled ? "block" : "continue"),
      durable: file.database.durable ?? (databaseUrl !== undefined),
      providers,
      routes,
      models,
      pricing: file.pricing,
      retry: file.retry,
      circuit: file.circuit,
      cache: settings.cache,
      budget: settings.budget,
      alerts: file.alerts,
      cacheKey,
      source,
      notices,
      bindFrom: bind.from,
      logLevel: settings.logLevel,
      watch: overrides.watch === true,
      overrides
    }
    return config
  }).pipe(Effect.mapError(fromEnvError))

/** Discover, read, decode and resolve: what `tollgate start` does. */
export const load = (overrides: Overrides = {}): Effect.Effect<TollgateSettings, ConfigError> =>
  Effect.gen(function*() {
    const file = yield* discover(overrides.configPath)
    const raw = Option.isSome(file) ? yield* readFile(file.value) : {}
    const decoded = yield* decode(raw, Option.getOrElse(file, () => "defaults"))
    return yield* resolve(decoded, Option.getOrUndefined(file), overrides)
  }).pipe(Effect.mapError(fromEnvError), Effect.provide(NodeFileSystem.layer))

/** The configuration found on disk and in the environment. */
export const layer = (overrides: Overrides = {}): Layer.Layer<TollgateConfig, ConfigError> =>
  Layer.effect(TollgateConfig, load(overrides))

/**
 * A configuration given in code, for programs that compose tollgate's layers into their own:
 * the same schema and defaults as the file, keys still read from the environment.
 */
export const layerFrom = (input: FileConfigInput, overrides: Omit<Overrides, "configPath"> = {}): Layer.Layer<TollgateConfig, ConfigError> =>
  Layer.effect(TollgateConfig, Effect.flatMap(decode(input, "code"), (file) => resolve(file, undefined, overrides)))


export const isMockOnly = (config: TollgateSettings): boolean => config.providers.every((p) => isSimulated(p.config))
