/** Which ledger a configuration names: `database.url`, `TOLLGATE_DB`, `database.path`, `DATABASE_URL`, in that order. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import * as Config from "../../src/Config.js"
import { describeLedger } from "../../src/Store/Url.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const resolved = (input: Config.FileConfigInput, env: Record<string, string>) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined)).pipe(withEnv(env))

const urlOf = (config: Config.TollgateSettings) => config.databaseUrl === undefined ? undefined : Redacted.value(config.databaseUrl)

describe("the ledger a configuration names", () => {
  it.effect("database.url wins over the environment, and is never shown with its password", () =>
    Effect.gen(function*() {
      const config = yield* resolved({ database: { url: "postgres://tg:s3cret@db:5432/ledger" } }, {
        DATABASE_URL: "postgres://other@elsewhere/app",
        TOLLGATE_DB: "/tmp/x.db"
      })
      assert.strictEqual(urlOf(config), "postgres://tg:s3cret@db:5432/ledger")
      assert.strictEqual(describeLedger(config), "postgres://tg:***@db:5432/ledger")
      assert.notInclude(JSON.stringify(config), "s3cret")
    }))

  it.effect("DATABASE_URL only when nothing of tollgate's names a SQLite file, and only a postgres:// one", () =>
    Effect.gen(function*() {
      assert.strictEqual(urlOf(yield* resolved({}, { DATABASE_URL: "postgresql://u@h/db" })), "postgresql://u@h/db")
      assert.isUndefined(urlOf(yield* resolved({}, { DATABASE_URL: "postgres://u@h/db", TOLLGATE_DB: "/tmp/x.db" })))
      assert.isUndefined(urlOf(yield* resolved({ database: { path: "/tmp/y.db" } }, { DATABASE_URL: "postgres://u@h/db" })))
      assert.isUndefined(urlOf(yield* resolved({}, { DATABASE_URL: "mysql://u@h/db" })))
      const sqlite = yield* resolved({}, {})
      assert.isUndefined(sqlite.databaseUrl)
      assert.strictEqual(describeLedger(sqlite), sqlite.dbPath)
    }))

  it.effect("a database.url that is not a postgres:// URL is refused with its key path", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.decode({ database: { url: "mysql://u@h/db" } }, "test"))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(JSON.stringify(exit), "database.url")
      assert.include(JSON.stringify(exit), "expected a postgres:// or postgresql:// URL")
    }))
})
