import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../../src/Config.js"

const writeYaml = (text: string) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-config-")), "tollgate.yaml")
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

describe("Config", () => {
  it.effect("a bad URL is refused with its key path and the reason", () =>
    Effect.gen(function*() {
      const file = writeYaml(`providers:\n  openai: { kind: openai, baseUrl: "not a url" }\n`)
      const exit = yield* Effect.exit(Config.load({ configPath: file }).pipe(withEnv({})))
      assert.include(failureMessage(exit), "providers.openai.baseUrl: expected a URL")
    }))

  it.effect("every problem is listed, unknown keys included", () =>
    Effect.gen(function*() {
      const file = writeYaml(`server: { port: 99999, colour: blue }\nprovders: {}\nproviders:\n  sim: { kind: mock, chunks: 0 }\n`)
      const message = failureMessage(yield* Effect.exit(Config.load({ configPath: file }).pipe(withEnv({}))))
      assert.include(message, "server.port: expected a port number between 0 and 65535")
      assert.include(message, "server.colour: unknown key")
      assert.include(message, "provders: unknown key")
      assert.include(message, "providers.sim.chunks: expected a positive integer")
    }))

  it.effect("a route that names an unknown provider is refused", () =>
    Effect.gen(function*() {
      const file = writeYaml(`providers:\n  a: { kind: mock }\nroutes:\n  - name: r\n    targets: [ { provider: b } ]\n`)
      const message = failureMessage(yield* Effect.exit(Config.load({ configPath: file }).pipe(withEnv({}))))
      assert.include(message, `routes.0.targets.0.provider: unknown provider "b"`)
    }))

  it.effect("durations are read in ms, s, m and h", () =>
    Effect.gen(function*() {
      const file = writeYaml(`providers:\n  a: { kind: openai, baseUrl: "http://127.0.0.1:1/v1", timeouts: { total: 1.5m } }\n`)
      const config = yield* Config.load({ configPath: file }).pipe(withEnv({}))
      const provider = config.providers[0]!.config
      assert.strictEqual(provider.kind === "openai" ? provider.timeouts.total : -1, 90_000)
      const bad = writeYaml(`providers:\n  a: { kind: openai, baseUrl: "http://127.0.0.1:1/v1", timeouts: { idle: soon } }\n`)
      assert.include(failureMessage(yield* Effect.exit(Config.load({ configPath: bad }).pipe(withEnv({})))), "providers.a.timeouts.idle: expected a duration")
    }))

  it.effect("invalid YAML and a missing file are refused with the file name", () =>
    Effect.gen(function*() {
      const file = writeYaml(`providers: [unclosed\n`)
      assert.include(failureMessage(yield* Effect.exit(Config.load({ configPath: file }).pipe(withEnv({})))), `invalid YAML in ${file}`)
      assert.include(
        failureMessage(yield* Effect.exit(Config.load({ configPath: "/nonexistent/tollgate.yaml" }).pipe(withEnv({})))),
        "config file not found: /nonexistent/tollgate.yaml"
      )
    }))

  it.effect("with no provider anywhere, the built-in mock serves and says so", () =>
    Effect.gen(function*() {
      const config = yield* Config.resolve(yield* Config.decode({}, "test"), undefined).pipe(withEnv({}))
      assert.deepStrictEqual(config.providers.map((p) => [p.name, p.config.kind]), [["mock", "mock"]])
      assert.isTrue(Config.isMockOnly(config))
      assert.match(config.notices[0]!, /simulated provider/)
      assert.strictEqual(config.server.port, 4100)
      assert.strictEqual(config.server.host, "127.0.0.1")
      assert.strictEqual(config.server.maxBodyBytes, 10 * 1024 * 1024)
    }))

  it.effect("environment: OPENAI_API_KEY, UPSTREAM_BASE_URL + key, ports, ledger path", () =>
    Effect.gen(function*() {
      const file = yield* Config.decode({}, "test")
      const config = yield* Config.resolve(file, undefined).pipe(withEnv({
        OPENAI_API_KEY: "sk-env",
        UPSTREAM_BASE_URL: "http://127.0.0.1:6556/v1",
        UPSTREAM_API_KEY: "sk-up",
        PORT: "5000",
        TOLLGATE_PORT: "5001",
        HOST: "0.0.0.0",
        TOLLGATE_DB: "/tmp/x.db"
      }))
      assert.deepStrictEqual(config.providers.map((p) => p.name), ["upstream", "openai"])
      assert.isTrue(Option.isSome(config.providers[0]!.apiKey))
      assert.strictEqual(config.server.port, 5001, "TOLLGATE_PORT wins over PORT")
      assert.strictEqual(config.server.host, "0.0.0.0")
      assert.strictEqual(config.dbPath, "/tmp/x.db")
      assert.notInclude(JSON.stringify(config), "sk-env", "keys are redacted")

      const flagged = yield* Config.resolve(file, undefined, { port: 7000, demo: true }).pipe(withEnv({ OPENAI_API_KEY: "k", PORT: "5000" }))
      assert.strictEqual(flagged.server.port, 7000, "flags win over the environment")
      assert.deepStrictEqual(flagged.providers.map((p) => p.name), ["mock"], "--demo serves the simulated provider only")
    }))

  it.effect("a bad port in the environment is refused by name", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.resolve(yield* Config.decode({}, "test"), undefined).pipe(withEnv({ TOLLGATE_PORT: "http" })))
      assert.include(failureMessage(exit), "TOLLGATE_PORT: expected a port number")
    }))
})
