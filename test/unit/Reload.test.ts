import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Stream, SubscriptionRef } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../../src/Config.js"
import * as Reload from "../../src/Reload.js"
import * as Router from "../../src/Router.js"

const routed = Effect.map(Router.Router, (router) => router.decide({ model: "any" }).route)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-reload-"))
const file = path.join(dir, "tollgate.yaml")
const yaml = (route: string, provider = "a") => `
providers:
  a: { kind: mock }
  b: { kind: mock }
routes:
  - name: ${route}
    targets: [ { provider: ${provider} } ]
`
fs.writeFileSync(file, yaml("first"))

const Live = Router.layerLive.pipe(Layer.provideMerge(Reload.layer), Layer.provide(Config.layer({ configPath: file, watch: true })))

const routeNames = (config: Config.TollgateSettings) => config.routes.map((r) => r.name).join(",")

const awaitStatus = (ok: (status: Reload.ReloadStatus) => boolean) =>
  Effect.flatMap(Reload.LiveConfig, (live) => live.status.changes.pipe(Stream.takeUntil(ok), Stream.runLast)).pipe(
    Effect.timeout("20 seconds")
  )

describe("config hot reload (--watch)", () => {
  layer(Live, { excludeTestServices: true })((it) => {
    it.effect("a valid change takes effect; an invalid one is refused and the old config keeps serving", () =>
      Effect.gen(function*() {
        const live = yield* Reload.LiveConfig
        assert.strictEqual(routeNames(yield* SubscriptionRef.get(live.current)), "first")
        assert.strictEqual(yield* routed, "first")

        fs.writeFileSync(file, yaml("second", "b"))
        yield* awaitStatus((s) => s.applied >= 1)
        const second = yield* SubscriptionRef.get(live.current)
        assert.strictEqual(routeNames(second), "second")
        assert.strictEqual(second.routes[0]?.targets[0]?.provider, "b")
        assert.strictEqual(yield* routed, "second", "the next decision follows the new rules")

        // Invalid: fails schema validation (a route without targets).
        fs.writeFileSync(file, "routes:\n  - name: broken\n")
        const refused = yield* awaitStatus((s) => s.rejected >= 1)
        assert.match(refused._tag === "Some" ? refused.value.lastError ?? "" : "", /routes\.0: expected targets, tiers or cascade/)
        assert.strictEqual(routeNames(yield* SubscriptionRef.get(live.current)), "second")
        assert.strictEqual(yield* routed, "second", "the old rules keep serving")

        // Valid YAML, but routing to a provider that is not running: refused too.
        fs.writeFileSync(file, `${yaml("third")}  - name: fourth\n    targets: [ { provider: c } ]\n`.replace("  b: { kind: mock }", "  b: { kind: mock }\n  c: { kind: mock }"))
        yield* awaitStatus((s) => s.rejected >= 2)
        assert.strictEqual(routeNames(yield* SubscriptionRef.get(live.current)), "second")

        // Fixed again: applied.
        fs.writeFileSync(file, yaml("fifth"))
        yield* awaitStatus((s) => s.applied >= 2)
        assert.strictEqual(routeNames(yield* SubscriptionRef.get(live.current)), "fifth")
        assert.strictEqual(yield* routed, "fifth")
      }))
  })
})

describe("Reload.apply", () => {
  it.effect("keeps server, providers and other sections; takes routes", () =>
    Effect.gen(function*() {
      const running = yield* Effect.provide(Config.TollgateConfig, Config.layerFrom({ providers: { a: { kind: "mock" } }, retry: { attempts: 1 } }))
      const next = yield* Effect.provide(
        Config.TollgateConfig,
        Config.layerFrom({ providers: { a: { kind: "mock" } }, retry: { attempts: 5 }, routes: [{ name: "r", targets: [{ provider: "a" }] }] })
      )
      const applied = Reload.apply(running, next)
      assert.isTrue(applied._tag === "Right")
      if (applied._tag !== "Right") return
      assert.strictEqual(applied.right.config.retry.attempts, 1)
      assert.strictEqual(applied.right.config.routes[0]?.name, "r")
      assert.deepStrictEqual(applied.right.ignored, ["retry"])
    }))

  it.effect("a change to cloud ingest, its key included, waits for a restart", () =>
    Effect.gen(function*() {
      const cloud = (key: string) => ({ url: "https://ingest.example.com/x", workspaceId: "ws", key })
      const running = yield* Effect.provide(Config.TollgateConfig, Config.layerFrom({ telemetry: { cloud: cloud("k1") } }))
      const next = yield* Effect.provide(Config.TollgateConfig, Config.layerFrom({ telemetry: { cloud: cloud("k2") } }))
      const applied = Reload.apply(running, next)
      assert.isTrue(applied._tag === "Right" && applied.right.ignored.includes("telemetry.cloud"))
      const same = Reload.apply(running, running)
      assert.isTrue(same._tag === "Right" && same.right.ignored.length === 0)
    }))
})
