/** `server.admin`: its default address, port 0 following the public listener's, the deprecated `server.adminPort`, `false`. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as Config from "../../src/Config.js"

const resolve = (input: Config.FileConfigInput, overrides: Config.Overrides = {}, env: Record<string, string> = {}) =>
  Effect.flatMap(Config.decode(input, "test"), (file) => Config.resolve(file, undefined, overrides)).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

describe("server.admin", () => {
  it.effect("127.0.0.1:4101 by default", () =>
    Effect.gen(function*() {
      const config = yield* resolve({})
      assert.deepStrictEqual(config.server.admin, { host: "127.0.0.1", port: 4101 })
    }))

  it.effect("a free port when the public listener asks for one and nothing sets the admin port", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* resolve({}, { port: 0 })).server.admin, { host: "127.0.0.1", port: 0 })
      assert.deepStrictEqual((yield* resolve({ server: { admin: { port: 4200 } } }, { port: 0 })).server.admin, { host: "127.0.0.1", port: 4200 })
    }))

  it.effect("--admin-port over TOLLGATE_ADMIN_PORT over the file", () =>
    Effect.gen(function*() {
      const file = { server: { admin: { host: "::1", port: 4300 } } }
      assert.deepStrictEqual((yield* resolve(file)).server.admin, { host: "::1", port: 4300 })
      assert.deepStrictEqual((yield* resolve(file, {}, { TOLLGATE_ADMIN_PORT: "4301" })).server.admin, { host: "::1", port: 4301 })
      assert.deepStrictEqual((yield* resolve(file, { adminPort: 0 }, { TOLLGATE_ADMIN_PORT: "4301" })).server.admin, { host: "::1", port: 0 })
    }))

  it.effect("the deprecated server.adminPort is read as admin.port, with a notice naming the new key", () =>
    Effect.gen(function*() {
      const config = yield* resolve({ server: { adminPort: 4400 } })
      assert.deepStrictEqual(config.server.admin, { host: "127.0.0.1", port: 4400 })
      assert.include(config.notices.join("\n"), "server.adminPort is deprecated: write server.admin: { port: 4400 }")
    }))

  it.effect("false turns it off, whatever sets a port", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* resolve({ server: { admin: false } }, { adminPort: 1 })).server.admin)
    }))
})
