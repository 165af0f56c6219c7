/**
 * examples/scale-out: the compose file's inline tollgate configuration is one tollgate reads and
 * one that several processes may share (a Postgres ledger, budgets on Redis), and the load
 * balancer sends to every replica the compose file defines. No Docker engine is needed.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Yaml from "yaml"
import * as Config from "../../src/Config.js"
import * as Workers from "../../src/Node/Workers.js"

const DIR = path.resolve(import.meta.dirname, "../../examples/scale-out")
const compose = Yaml.parse(fs.readFileSync(path.join(DIR, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, { image?: string; volumes?: Array<string>; environment?: Array<string>; depends_on?: unknown }>
  configs: { tollgate: { content: string } }
  volumes: Record<string, unknown>
}

/** What Compose does to `${NAME}` and `${NAME:?message}` with these variables set. */
const interpolate = (text: string, env: Record<string, string>) =>
  text.replace(/\$\{([A-Z_]+)(?::\?[^}]*)?\}/g, (_, name: string) => env[name] ?? "")

describe("examples/scale-out", () => {
  const replicas = Object.keys(compose.services).filter((name) => /^tollgate-\d+$/.test(name))

  it("three tollgate replicas, PostgreSQL, Redis and a load balancer; each replica its own volume", () => {
    assert.deepStrictEqual(replicas, ["tollgate-1", "tollgate-2", "tollgate-3"])
    for (const service of ["postgres", "redis", "lb"]) assert.property(compose.services, service)
    const volumes = replicas.map((name) => compose.services[name]!.volumes?.[0]?.split(":")[0])
    assert.deepStrictEqual(volumes, replicas)
    for (const volume of volumes) assert.property(compose.volumes, volume!)
    for (const name of replicas) assert.include(compose.services[name]!.environment ?? [], "TOLLGATE_CONFIG=/config/tollgate.yaml")
  })

  it("HAProxy sends to every replica, checked on /readyz", () => {
    const haproxy = fs.readFileSync(path.join(DIR, "haproxy.cfg"), "utf8")
    const servers = [...haproxy.matchAll(/^\s*server (\S+) (\S+):4100\s*$/gm)].map((m) => [m[1], m[2]])
    assert.deepStrictEqual(servers, replicas.map((name) => [name, name]))
    assert.include(haproxy, "option httpchk GET /readyz")
  })

  it.effect("the inline configuration decodes, and several processes may share it", () =>
    Effect.gen(function*() {
      const text = interpolate(compose.configs.tollgate.content, { TOLLGATE_CLIENT_KEY: "client-key", POSTGRES_PASSWORD: "secret" })
      const file = yield* Config.decode(Yaml.parse(text), "examples/scale-out")
      const config = yield* Config.resolve(file, "examples/scale-out").pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-test"]])))
      )
      assert.strictEqual(config.databaseUrl === undefined ? undefined : Redacted.value(config.databaseUrl), "postgres://tollgate:secret@postgres:5432/tollgate")
      assert.strictEqual(config.redis === undefined ? undefined : Redacted.value(config.redis.url), "redis://redis:6379")
      assert.isTrue(config.budget.enabled)
      assert.deepStrictEqual(config.server.apiKeys, ["client-key"])
      // What `--workers` checks is what replicas need too: nothing kept in one process alone.
      assert.isUndefined(Workers.refusal(config, 3))
    }))
})
