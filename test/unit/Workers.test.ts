/** `start --workers N`'s decisions, before anything is forked: the count, the refusals, the admin ports, the restart backoff. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit } from "effect"
import * as os from "node:os"
import * as Config from "../../src/Config.js"
import * as Workers from "../../src/Node/Workers.js"

const resolved = (input: Config.FileConfigInput) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined)).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
  )

const PG = { database: { url: "postgres://tollgate@db:5432/tollgate" } }
const BUDGET = { budget: { enabled: true, limits: [{ window: "daily" as const, usd: 10 }] } }

describe("start --workers", () => {
  it("counts: 1 to 64, or auto (one per core); anything else says what is expected", () => {
    assert.strictEqual(Workers.parseCount("2", "--workers"), 2)
    assert.strictEqual(Workers.parseCount(64, "server.workers"), 64)
    assert.strictEqual(Workers.parseCount("auto", "--workers"), Math.min(64, os.availableParallelism()))
    for (const bad of ["0", "65", "-1", "1.5", "two", "", "0x2"]) {
      const parsed = Workers.parseCount(bad, "--workers")
      assert.isObject(parsed, bad)
      assert.include((parsed as { problem: string }).problem, "--workers: expected an integer from 1 to 64, or auto")
    }
  })

  it.effect("server.workers is decoded: 1 to 64 or auto", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolved({ server: { workers: 4 } })).server.workers, 4)
      assert.strictEqual((yield* resolved({ server: { workers: "auto" } })).server.workers, "auto")
      const refused = yield* Effect.exit(resolved({ server: { workers: 0 } }))
      assert.isTrue(Exit.isFailure(refused))
      assert.include(JSON.stringify(refused), "expected an integer from 1 to 64, or auto")
    }))

  it.effect("one worker is never refused; more need PostgreSQL, and with budgets Redis", () =>
    Effect.gen(function*() {
      assert.isUndefined(Workers.refusal(yield* resolved({}), 1))
      assert.include(Workers.refusal(yield* resolved({}), 2), "SQLite is one process's file; set database.url to a postgres:// URL")
      assert.isUndefined(Workers.refusal(yield* resolved(PG), 2))
      assert.include(Workers.refusal(yield* resolved({ ...PG, ...BUDGET }), 2), "set redis: redis://host:6379")
      assert.isUndefined(Workers.refusal(yield* resolved({ ...PG, ...BUDGET, redis: "redis://r:6379" }), 2))
    }))

  it.effect("each worker's admin port: admin.port + i - 1 (or a free one for 0); a range over the public port is refused", () =>
    Effect.gen(function*() {
      const config = yield* resolved(PG)
      assert.deepStrictEqual(Workers.adminFor(config.server.admin, 3), { host: "127.0.0.1", port: 4103 })
      assert.deepStrictEqual(Workers.adminFor({ host: "127.0.0.1", port: 0 }, 3), { host: "127.0.0.1", port: 0 })
      assert.strictEqual(Workers.adminFor(false, 2), false)
      const clash = yield* resolved({ ...PG, server: { port: 4102 } })
      assert.include(Workers.refusal(clash, 3), "admin ports 4101-4103 (one per worker) include the public port 4102")
      assert.isUndefined(Workers.refusal(clash, 1))
      assert.include(Workers.refusal(yield* resolved({ ...PG, server: { admin: { port: 65_535 } } }), 2), "pass 65535")
    }))

  it.effect("a cache without redis: is allowed, said once: each worker has its own", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(Workers.notes(yield* resolved({ ...PG, cache: { enabled: true } }), 1), [])
      assert.include(Workers.notes(yield* resolved({ ...PG, cache: { enabled: true } }), 3)[0], "each of the 3 workers has a cache of its own")
      assert.deepStrictEqual(Workers.notes(yield* resolved({ ...PG, cache: { enabled: false } }), 3), [])
    }))

  it("restarts back off: the first delay doubled per quick death, bounded", () => {
    const delays = [1, 2, 3, 4, 10, 100].map((n) => Duration.toMillis(Workers.restartDelay(n, "500 millis", "30 seconds")))
    assert.deepStrictEqual(delays, [500, 1000, 2000, 4000, 30_000, 30_000])
  })
})
