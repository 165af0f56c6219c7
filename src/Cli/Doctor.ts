/**
 * `tollgate doctor`: what would stop `start`, or a request, on this machine, one line each:
 * the configuration, the ledger (file or PostgreSQL), the port, the providers' keys and hosts, the Node version.
 */
import * as Command from "@effect/cli/Command"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Config from "../Config.js"
import { redactUrl } from "../Store/Url.js"
import { describeConfig } from "./ConfigValidate.js"
import { shownPath } from "./LedgerPath.js"
import { bindProbe, ChecksFailed, endpointOf, tcpConnect } from "./Probe.js"
import { configOption, jsonOption } from "./Shared.js"
import { baseUrlOf, isSimulated } from "../Upstream/Kinds.js"

export interface Check {
  readonly name: string
  readonly status: "ok" | "warn" | "fail"
  readonly detail: string
  /** What to do about a `warn` or a `fail`. */
  readonly hint?: string | undefined
}

const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail })
const warn = (name: string, detail: string, hint?: string): Check => ({ name, status: "warn", detail, hint })
const fail = (name: string, detail: string, hint: string): Check => ({ name, status: "fail", detail, hint })

const CONNECT_TIMEOUT_MS = 2_000
const NODE_MAJOR = 20

/** The nearest directory of `file` that exists: the one `start` would create the rest under. */
const existingAncestor = (dir: string): string => {
  let current = dir
  while (!fs.existsSync(current) && path.dirname(current) !== current) current = path.dirname(current)
  return current
}

const writable = (target: string) => {
  try {
    fs.accessSync(target, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** Whether an existing file is a SQLite database with tollgate's tables; read-only, nothing migrated. */
const isLedger = (file: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
    const names = new Set(tables.map((t) => t.name))
    return names.has("tollgate_migrations") && names.has("requests")
  }).pipe(
    Effect.provide(SqliteClient.layer({ filename: file, readonly: true, disableWAL: true })),
    Effect.mapError((error) => {
      const cause = (error as { cause?: unknown }).cause
      return cause instanceof Error ? cause.message : String((error as { message?: unknown }).message ?? error)
    })
  )

const TOLLGATE_DB_HINT = "point TOLLGATE_DB or database.path at a file this user can write"

/** A Postgres ledger: reachable, and whether tollgate's tables are there yet (nothing is created). */
const checkPostgres = (url: Redacted.Redacted<string>): Effect.Effect<Check> => {
  const shown = redactUrl(Redacted.value(url))
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ found: string | null }>`SELECT to_regclass('requests')::text AS found`
    return row?.found === null || row?.found === undefined ? ok("ledger", `${shown} (PostgreSQL; start creates the tables)`) : ok("ledger", `${shown} (PostgreSQL)`)
  }).pipe(
    Effect.provide(Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../Store/Postgres.js")), (pg) => pg.client(url)))),
    Effect.catchAll((error) => {
      const cause = (error as { cause?: unknown }).cause
      const why = cause instanceof Error ? cause.message : String((error as { message?: unknown }).message ?? error)
      return Effect.succeed(fail("ledger", `${shown}: ${why}`, "check that PostgreSQL runs there and accepts this user, or change database.url (DATABASE_URL)"))
    })
  )
}

export const checkLedger = (dbPath: string, databaseUrl?: Redacted.Redacted<string>): Effect.Effect<Check> =>
  Effect.gen(function*() {
    if (databaseUrl !== undefined) return yield* checkPostgres(databaseUrl)
    if (dbPath === ":memory:") return warn("ledger", ":memory: (nothing is kept after stop)", "set TOLLGATE_DB or database.path to keep the ledger")
    const file = shownPath(dbPath)
    if (!fs.existsSync(file)) {
      const dir = existingAncestor(path.dirname(file))
      return writable(dir)
        ? ok("ledger", `${file} (not created yet: start creates it)`)
        : fail("ledger", `${file}: ${dir} is not writable by this user`, TOLLGATE_DB_HINT)
    }
    if (!writable(path.dirname(file))) return fail("ledger", `${file}: its directory is not writable by this user`, TOLLGATE_DB_HINT)
    if (!writable(file)) return fail("ledger", `${file} is not writable by this user`, TOLLGATE_DB_HINT)
    return yield* isLedger(file).pipe(
      Effect.match({
        onFailure: (why) => fail("ledger", `${file} cannot be read as a ledger: ${why}`, `move the file away, or ${TOLLGATE_DB_HINT}`),
        onSuccess: (yes) =>
          yes ? ok("ledger", file) : fail("ledger", `${file} is a SQLite file but not a tollgate ledger`, `move the file away, or ${TOLLGATE_DB_HINT}`)
      })
    )
  })

export const checkPort = (config: Config.TollgateSettings): Effect.Effect<Check> => {
  const { host, port } = config.server
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`
  if (port === 0) return Effect.succeed(ok("port", `${where} (any free port)`))
  return Effect.map(bindProbe(host, port), (code) =>
    code === undefined
      ? ok("port", `${where} is free`)
      : code === "EADDRINUSE"
      ? fail("port", `${where} is in use`, "stop what listens there (another tollgate?), or set TOLLGATE_PORT or server.port")
      : code === "EACCES"
      ? fail("port", `${where} needs privileges to bind`, "use a port above 1023 (TOLLGATE_PORT or server.port)")
      : fail("port", `${where} cannot be bound: ${code}`, "set TOLLGATE_HOST to an address of this machine, or TOLLGATE_PORT"))
}

/** Whether each provider has the key it is configured to send. */
export const checkKey = (provider: Config.ResolvedProvider): Check => {
  const name = `key ${provider.name}`
  const config = provider.config
  if (isSimulated(config)) return ok(name, "simulated provider, needs no key")
  if (config.passthroughAuth) return ok(name, "passes the client's own key through")
  if (provider.missingKeyEnv !== undefined) {
    return fail(name, `${provider.missingKeyEnv} is not set`, `export ${provider.missingKeyEnv}=... before start; until then, requests only this provider can serve get 503`)
  }
  if (Option.isSome(provider.apiKey)) return ok(name, `${config.apiKeyEnv} is set`)
  return ok(name, config.apiKeyEnv === undefined ? "sends no key (no apiKeyEnv)" : `sends no key (${config.apiKeyEnv} is empty)`)
}

/** Whether each of a provider's `modelKeys` has its key: one check per entry. */
export const checkModelKeys = (provider: Config.ResolvedProvider): ReadonlyArray<Check> =>
  (provider.modelKeys ?? []).map((key) => {
    const name = `key ${provider.name} (${key.models.join(", ")})`
    if (key.missing) {
      return fail(name, `${key.apiKeyEnv} is not set`, `export ${key.apiKeyEnv}=... before start; until then, requests for ${key.models.join(", ")} only this provider can serve get 503`)
    }
    return ok(name, Option.isSome(key.apiKey) ? `${key.apiKeyEnv} is set (sent as ${key.as === "bearer" ? "Authorization: Bearer" : "x-api-key"})` : `sends no key (${key.apiKeyEnv} is empty)`)
  })

/** A TCP connect to the provider's host, with nothing sent. */
export const checkReach = (provider: Config.ResolvedProvider): Effect.Effect<Check> => {
  const name = `reach ${provider.name}`
  const baseUrl = baseUrlOf(provider.config)
  if (baseUrl === undefined) return Effect.succeed(ok(name, "simulated, nothing to reach"))
  const { host, port } = endpointOf(baseUrl)
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`
  return Effect.match(tcpConnect(host, port, CONNECT_TIMEOUT_MS), {
    onSuccess: (ms) => ok(name, `${where} connects (${ms.toFixed(0)} ms)`),
    onFailure: (why) => fail(name, `${where}: ${why}`, `check the baseUrl ${baseUrl}, the network, or a firewall`)
  })
}

export const checkNode = (version: string = process.versions.node): Check => {
  const major = Number(version.split(".")[0])
  return major >= NODE_MAJOR
    ? ok("node", `v${version}`)
    : fail("node", `v${version} is older than ${NODE_MAJOR}`, `install Node.js ${NODE_MAJOR} or later`)
}

/** Every check, in the order printed; the ones that need a configuration are left out without one. */
export const runChecks = (configPath: string | undefined): Effect.Effect<ReadonlyArray<Check>> =>
  Effect.gen(function*() {
    const loaded = yield* Effect.either(Config.load({ configPath }))
    if (loaded._tag === "Left") {
      const [first, ...rest] = loaded.left.message.split("\n")
      const problems = rest.map((line) => line.trim()).filter((line) => line !== "")
      return [
        fail("config", problems.length === 0 ? first! : `${first!} ${problems.join("; ")}`, "run tollgate config validate, fix the file, run doctor again"),
        checkNode()
      ]
    }
    const config = loaded.right
    const [ledger, port, reach] = yield* Effect.all([
      checkLedger(config.dbPath, config.databaseUrl),
      checkPort(config),
      Effect.forEach(config.providers, checkReach, { concurrency: "unbounded" })
    ], { concurrency: "unbounded" })
    return [
      ok("config", describeConfig(config)),
      ledger,
      port,
      ...config.providers.flatMap((p) => [checkKey(p), ...checkModelKeys(p)]),
      ...reach,
      checkNode()
    ]
  })

export const renderCheck = (check: Check): string =>
  `${check.status.padEnd(4)}  ${check.name}: ${check.detail}${check.hint === undefined ? "" : ` (hint: ${check.hint})`}`

export const doctor = Command.make(
  "doctor",
  { config: configOption, json: jsonOption },
  (flags) =>
    Effect.gen(function*() {
      const checks = yield* runChecks(Option.getOrUndefined(flags.config))
      const failed = checks.filter((c) => c.status === "fail").length
      if (flags.json) {
        yield* Console.log(JSON.stringify({ ok: failed === 0, checks }, null, 2))
      } else {
        for (const check of checks) yield* Console.log(renderCheck(check))
        const warned = checks.filter((c) => c.status === "warn").length
        yield* Console.log(failed === 0 ? `\nready${warned === 0 ? "" : ` (${warned} warning${warned === 1 ? "" : "s"})`}` : `\n${failed} check${failed === 1 ? "" : "s"} failed`)
      }
      if (failed > 0) return yield* new ChecksFailed({ failed })
    })
).pipe(Command.withDescription(
  "Check what start needs, one line each (ok, warn, fail with a hint): the configuration, the ledger file and its " +
    "directory, the port, each provider's key variable and host (a TCP connect, 2 s timeout, nothing sent), the Node " +
    "version. Exits 1 if a check fails"
))
