/**
 * Where cloud ingest sends the ledger: `telemetry.cloud` field by field over `CLOUD_INGEST_URL`,
 * `WORKSPACE_ID` and `WORKSPACE_INGEST_KEY`; off by default; all three or none; the key redacted.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import * as Config from "../../src/Config.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const resolved = (input: Config.FileConfigInput, env: Record<string, string> = {}) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined)).pipe(withEnv(env))

const ENV = { CLOUD_INGEST_URL: "https://ingest.example.com/v1/rows", WORKSPACE_ID: "ws-env", WORKSPACE_INGEST_KEY: "wk-env-secret" }

const refusal = (exit: Exit.Exit<unknown, unknown>): string => {
  assert.isTrue(Exit.isFailure(exit))
  return JSON.stringify(exit)
}

describe("cloud ingest's configuration", () => {
  it.effect("off by default, and with telemetry.cloud: false whatever the environment says", () =>
    Effect.gen(function*() {
      assert.isUndefined((yield* resolved({})).cloud)
      assert.isUndefined((yield* resolved({ telemetry: { cloud: false } }, ENV)).cloud)
    }))

  it.effect("from the environment alone, with the defaults", () =>
    Effect.gen(function*() {
      const cloud = (yield* resolved({}, ENV)).cloud!
      assert.strictEqual(cloud.url, ENV.CLOUD_INGEST_URL)
      assert.strictEqual(cloud.workspaceId, "ws-env")
      assert.strictEqual(Redacted.value(cloud.key), "wk-env-secret")
      assert.deepStrictEqual(
        [cloud.batchSize, cloud.interval, cloud.baseDelay, cloud.maxDelay, cloud.timeout],
        [500, 5_000, 1_000, 300_000, 30_000]
      )
    }))

  it.effect("the file wins each field it gives, with a notice naming the variable it overrides; the environment fills the rest", () =>
    Effect.gen(function*() {
      const config = yield* resolved(
        { telemetry: { cloud: { url: "https://file.example.com/ingest", workspaceId: "ws-file", batchSize: 50, interval: "250ms" } } },
        ENV
      )
      const cloud = config.cloud!
      assert.strictEqual(cloud.url, "https://file.example.com/ingest")
      assert.strictEqual(cloud.workspaceId, "ws-file")
      assert.strictEqual(Redacted.value(cloud.key), "wk-env-secret")
      assert.deepStrictEqual([cloud.batchSize, cloud.interval], [50, 250])
      assert.isTrue(config.notices.some((n) => n.includes("CLOUD_INGEST_URL is set but telemetry.cloud.url")))
      assert.isTrue(config.notices.some((n) => n.includes("WORKSPACE_ID is set but telemetry.cloud.workspaceId")))
      // The key came from the environment only: nothing to say about it.
      assert.isFalse(config.notices.some((n) => n.includes("WORKSPACE_INGEST_KEY")))
    }))

  it.effect("some of the three but not all is refused, naming what is missing and where to set it", () =>
    Effect.gen(function*() {
      const onlyUrl = refusal(yield* Effect.exit(resolved({}, { CLOUD_INGEST_URL: ENV.CLOUD_INGEST_URL })))
      assert.include(onlyUrl, "workspaceId (WORKSPACE_ID)")
      assert.include(onlyUrl, "key (WORKSPACE_INGEST_KEY)")
      const noKey = refusal(yield* Effect.exit(resolved({ telemetry: { cloud: { url: "https://a.example/x", workspaceId: "w" } } })))
      assert.include(noKey, "missing key (WORKSPACE_INGEST_KEY)")
      const empty = refusal(yield* Effect.exit(resolved({ telemetry: { cloud: {} } })))
      assert.include(empty, "needs url, workspaceId and key")
    }))

  it.effect("a URL that is not http(s) is refused, from the file or the environment; plain http off loopback is said", () =>
    Effect.gen(function*() {
      const file = refusal(yield* Effect.exit(Config.decode({ telemetry: { cloud: { url: "ftp://a.example/x" } } }, "test")))
      assert.include(file, "expected a URL")
      const env = refusal(yield* Effect.exit(resolved({}, { ...ENV, CLOUD_INGEST_URL: "ingest.example.com" })))
      assert.include(env, "CLOUD_INGEST_URL: expected an http:// or https:// URL")
      const plain = yield* resolved({}, { ...ENV, CLOUD_INGEST_URL: "http://ingest.example.com/rows" })
      assert.isTrue(plain.notices.some((n) => n.includes("plain http")))
      const loopback = yield* resolved({}, { ...ENV, CLOUD_INGEST_URL: "http://127.0.0.1:9000/rows" })
      assert.isFalse(loopback.notices.some((n) => n.includes("plain http")))
    }))

  it.effect("the key never prints: not in the settings' string form, not in a notice", () =>
    Effect.gen(function*() {
      const config = yield* resolved({ telemetry: { cloud: { key: "wk-file-secret" } } }, ENV)
      assert.strictEqual(Redacted.value(config.cloud!.key), "wk-file-secret")
      assert.isTrue(config.notices.some((n) => n.includes("WORKSPACE_INGEST_KEY is set but telemetry.cloud.key")))
      const shown = `${String(config.cloud!.key)} ${JSON.stringify(config.cloud)} ${config.notices.join(" ")}`
      assert.notInclude(shown, "wk-file-secret")
      assert.notInclude(shown, "wk-env-secret")
    }))

  it.effect("batchSize is bounded", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.decode({ telemetry: { cloud: { batchSize: 0 } } }, "test"))
      assert.include(refusal(exit), "expected 1 to 5000")
    }))
})
