/**
 * Issue #25, "from clone to running in a minute": what the configuration says when it is wrong
 * (one line per problem, a suggestion for a near-miss key, YAML errors with their line), which
 * providers send a key, and the environment overrides. Messages are checked as exact lines.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../../src/Config.js"

const writeYaml = (text: string) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-setup-")), "tollgate.yaml")
  fs.writeFileSync(file, text)
  return file
}

/** Runs `effect` with exactly these environment variables. */
const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const failureMessage = <A>(exit: Exit.Exit<A, Config.ConfigError>): string => {
  if (Exit.isSuccess(exit)) return assert.fail("expected the config to be refused")
  const error = Option.getOrThrow(Exit.causeOption(exit).pipe(Option.flatMap((c) => Option.fromNullable(c._tag === "Fail" ? c.error : undefined))))
  return error.message
}

const loadFile = (text: string, env: Record<string, string> = {}) => {
  const file = writeYaml(text)
  return Effect.map(Effect.exit(Config.load({ configPath: file }).pipe(withEnv(env))), (exit) => ({ file, exit }))
}

const resolveEnv = (env: Record<string, string>, input: Config.FileConfigInput = {}, overrides: Config.Overrides = {}) =>
  Effect.exit(Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined, overrides)).pipe(withEnv(env)))

describe("config errors: one line per problem", () => {
  it.effect("an SDK's baseURL is an unknown key with the allowed one suggested", () =>
    Effect.gen(function*() {
      const { exit, file } = yield* loadFile(`providers:\n  openai: { kind: openai, baseURL: "http://127.0.0.1:1/v1" }\n`)
      assert.strictEqual(
        failureMessage(exit),
        `invalid configuration in ${file}:\n  providers.openai.baseURL: unknown key (did you mean baseUrl?)`
      )
    }))

  it.effect("a wrong type nested in optional sections is one line, without `Expected undefined` echoes", () =>
    Effect.gen(function*() {
      const { exit, file } = yield* loadFile(
        `server: { prot: 4100 }\ncache: { enabled: "yes" }\nroutes:\n  - { name: r, targets: [ { provider: a, modle: x } ] }\nproviders:\n  a: { kind: mock }\n`
      )
      assert.strictEqual(
        failureMessage(exit),
        [
          `invalid configuration in ${file}:`,
          "  server.prot: unknown key (did you mean port?)",
          "  routes.0.targets.0.modle: unknown key (did you mean model?)",
          `  cache.enabled: Expected boolean, actual "yes"`
        ].join("\n")
      )
    }))

  it.effect("a key that is nothing like an allowed one gets no suggestion", () =>
    Effect.gen(function*() {
      const { exit, file } = yield* loadFile(`server: { colour: blue }\n`)
      assert.strictEqual(failureMessage(exit), `invalid configuration in ${file}:\n  server.colour: unknown key`)
    }))

  it.effect("a YAML syntax error gives its line, its column and the line itself", () =>
    Effect.gen(function*() {
      const { exit, file } = yield* loadFile(`server:\n  port: 4100\nproviders: a: b\n`)
      assert.strictEqual(
        failureMessage(exit),
        `invalid YAML in ${file} at line 3, column 12: Nested mappings are not allowed in compact mappings\n` +
          `  3 | providers: a: b\n` +
          `                 ^`
      )
    }))

  it.effect("a YAML error at the end of the file shows the last line written", () =>
    Effect.gen(function*() {
      const { exit, file } = yield* loadFile(`providers: [unclosed\n`)
      assert.strictEqual(
        failureMessage(exit),
        `invalid YAML in ${file} at line 2, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]\n` +
          `  1 | providers: [unclosed`
      )
    }))
})

describe("provider keys", () => {
  it.effect("UPSTREAM_BASE_URL without UPSTREAM_API_KEY: a local server, no key, not skipped, one info line", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv({ UPSTREAM_BASE_URL: "http://127.0.0.1:7001/v1" }))
      const upstream = config.providers[0]!
      assert.strictEqual(upstream.name, "upstream")
      assert.isTrue(Option.isNone(upstream.apiKey))
      assert.isUndefined(upstream.missingKeyEnv)
      assert.deepStrictEqual(config.notices, [`provider "upstream" sends no key (UPSTREAM_API_KEY is not set)`])
    }))

  it.effect("UPSTREAM_API_KEY set: sent", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv({ UPSTREAM_BASE_URL: "http://127.0.0.1:7001/v1", UPSTREAM_API_KEY: "sk-local" }))
      assert.strictEqual(Option.getOrThrow(config.providers[0]!.apiKey).pipe(Redacted.value), "sk-local")
      assert.deepStrictEqual(config.notices, [])
    }))

  it.effect("a key variable that is set but empty: no key, not skipped", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv(
        { LOCAL_KEY: "" },
        { providers: { local: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", apiKeyEnv: "LOCAL_KEY" } } }
      ))
      assert.isTrue(Option.isNone(config.providers[0]!.apiKey))
      assert.isUndefined(config.providers[0]!.missingKeyEnv)
      assert.deepStrictEqual(config.notices, [`provider "local" sends no key (LOCAL_KEY is empty)`])
    }))

  it.effect("a key variable named but not set: start names it, the provider is marked", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv(
        {},
        { providers: { local: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", apiKeyEnv: "LOCAL_KEY" } } }
      ))
      assert.strictEqual(config.providers[0]!.missingKeyEnv, "LOCAL_KEY")
      assert.deepStrictEqual(config.notices, [
        `provider "local": its key variable LOCAL_KEY is not set; requests only it can serve are refused (503) until it is`
      ])
    }))
})

describe("environment overrides", () => {
  it.effect("budget limits, cache, log level and admin port from TOLLGATE_*", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv(
        {
          TOLLGATE_BUDGET_DAILY_LIMIT_USD: "10",
          TOLLGATE_BUDGET_MONTHLY_LIMIT_USD: "150.5",
          TOLLGATE_CACHE_ENABLED: "false",
          TOLLGATE_LOG_LEVEL: "debug",
          TOLLGATE_ADMIN_PORT: "4199"
        },
        { budget: { limits: [{ window: "daily", usd: 99 }, { scope: "project", key: "x", window: "daily", usd: 1 }] } }
      ))
      assert.isTrue(config.budget.enabled)
      assert.deepStrictEqual(config.budget.limits, [
        { scope: "project", key: "x", window: "daily", usd: 1 },
        { scope: "global", window: "daily", usd: 10 },
        { scope: "global", window: "monthly", usd: 150.5 }
      ])
      // Budgets on: the ledger write failure default follows them.
      assert.strictEqual(config.onWriteFailure, "block")
      assert.isFalse(config.cache.enabled)
      assert.strictEqual(config.logLevel, "debug")
      assert.deepStrictEqual(config.server.admin, { host: "127.0.0.1", port: 4199 })
    }))

  it.effect("the environment wins over the file", () =>
    Effect.gen(function*() {
      const config = yield* Effect.flatten(resolveEnv({ TOLLGATE_CACHE_ENABLED: "true" }, { cache: { enabled: false } }))
      assert.isTrue(config.cache.enabled)
    }))

  it.effect("an invalid value is one line naming the variable", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, string]> = [
        [{ TOLLGATE_BUDGET_DAILY_LIMIT_USD: "ten" }, `TOLLGATE_BUDGET_DAILY_LIMIT_USD: expected an amount in USD (a number >= 0, such as 10 or 2.5), got "ten"`],
        [{ TOLLGATE_BUDGET_MONTHLY_LIMIT_USD: "-1" }, `TOLLGATE_BUDGET_MONTHLY_LIMIT_USD: expected an amount in USD (a number >= 0, such as 10 or 2.5), got "-1"`],
        [{ TOLLGATE_CACHE_ENABLED: "yes" }, `TOLLGATE_CACHE_ENABLED: expected true or false, got "yes"`],
        [{ TOLLGATE_LOG_LEVEL: "verbose" }, `TOLLGATE_LOG_LEVEL: expected one of debug, info, warning, error, got "verbose"`],
        [{ TOLLGATE_ADMIN_PORT: "70000" }, `TOLLGATE_ADMIN_PORT: expected a port number between 0 and 65535, got "70000"`],
        [{ PORT: "http" }, `PORT: expected a port number between 0 and 65535, got "http"`]
      ]
      for (const [env, message] of cases) assert.strictEqual(failureMessage(yield* resolveEnv(env)), message)
    }))

  it.effect("port: --port > TOLLGATE_PORT > PORT > file; a generic PORT is said at start", () =>
    Effect.gen(function*() {
      const file = { server: { port: 4200 } }
      const fromPort = yield* Effect.flatten(resolveEnv({ PORT: "4115" }, file))
      assert.strictEqual(fromPort.server.port, 4115)
      assert.strictEqual(fromPort.bindFrom.port, "PORT")
      assert.include(fromPort.notices, "port 4115 comes from the environment variable PORT (TOLLGATE_PORT and --port take precedence)")
      const fromTollgate = yield* Effect.flatten(resolveEnv({ PORT: "4115", TOLLGATE_PORT: "4116" }, file))
      assert.strictEqual(fromTollgate.server.port, 4116)
      const fromFlag = yield* Effect.flatten(resolveEnv({ PORT: "4115", TOLLGATE_PORT: "4116" }, file, { port: 4117 }))
      assert.strictEqual(fromFlag.server.port, 4117)
      assert.strictEqual(fromFlag.bindFrom.port, "--port")
      assert.strictEqual((yield* Effect.flatten(resolveEnv({}, file))).server.port, 4200)
    }))
})
