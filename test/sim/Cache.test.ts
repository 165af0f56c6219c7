import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Option, TestClock } from "effect"
import * as fs from "node:fs"
import * as Cache from "../../src/Cache.js"
import * as Config from "../../src/Config.js"
import * as Redis from "../../src/Redis.js"
import * as Store from "../../src/Store.js"
import { tempDbPath } from "../support/Tollgate.js"

const usage = { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" } as const
const SECRET_TEXT = "the completion text that must never be readable on disk"

const answer = (text: string): Cache.CachedAnswer => ({
  kind: "json",
  json: JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 5 } }),
  events: [],
  provider: "p",
  model: "m",
  usage,
  costUsd: 0.001
})

const KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const cacheLayer = (cache: Config.FileConfigInput["cache"], dbPath = ":memory:", env: Record<string, string> = {}) =>
  Cache.layerWithoutDependencies.pipe(
    Layer.provide(Redis.layer),
    Layer.provideMerge(Store.layerAt(dbPath)),
    Layer.provide(Config.layerFrom({ cache: cache ?? {} }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))))
  )

describe("cache keys", () => {
  const base = { model: "gpt-4o", temperature: 0, messages: [{ role: "user", content: "hi" }] }
  const key = (body: Record<string, unknown>, tenant = "t", target = "p/gpt-4o") => Cache.cacheKey({ endpoint: "/v1/chat/completions", body, tenant, target })

  it("reordered keys, and fields that cannot change the answer, give the same key", () => {
    assert.strictEqual(key(base), key({ messages: [{ content: "hi", role: "user" }], temperature: 0, model: "gpt-4o" }))
    assert.strictEqual(key(base), key({ ...base, stream: true, stream_options: { include_usage: true }, user: "u1", metadata: { a: 1 } }))
  })

  it("the canonical form sorts keys at every depth, in any number, and leaves out undefined", () => {
    assert.strictEqual(Cache.canonical({ b: 1, a: [{ d: null, c: undefined, "é": "x", E: true }] }), "{\"a\":[{\"E\":true,\"d\":null,\"é\":\"x\"}],\"b\":1}")
    // Past a few dozen keys the sort takes another path: the same order as Array.prototype.sort.
    const names = Array.from({ length: 40 }, (_, i) => `k${(i * 7919) % 40}`)
    const wide = Object.fromEntries(names.map((name) => [name, 1]))
    assert.strictEqual(Cache.canonical(wide), `{${[...names].sort().map((name) => `"${name}":1`).join(",")}}`)
    assert.strictEqual(key({ ...base, logit_bias: wide }), key({ logit_bias: Object.fromEntries([...names].reverse().map((n) => [n, 1])), ...base }))
  })

  it("anything that can change the answer changes the key", () => {
    const k = key(base)
    for (const changed of [
      { ...base, temperature: 0.5 },
      { ...base, seed: 7 },
      { ...base, tools: [{ type: "function", function: { name: "f", parameters: {} } }] },
      { ...base, response_format: { type: "json_object" } },
      { ...base, messages: [{ role: "user", content: "hi!" }] },
      { ...base, model: "gpt-4o-mini" }
    ]) assert.notStrictEqual(key(changed), k, JSON.stringify(changed))
    assert.notStrictEqual(key(base, "another tenant"), k)
    assert.notStrictEqual(key(base, "t", "backup/gpt-4o"), k)
  })

  it("deterministic mode caches temperature 0 or a seed only", () => {
    assert.isTrue(Cache.isCacheableRequest({ temperature: 0 }, "deterministic"))
    assert.isTrue(Cache.isCacheableRequest({ seed: 1 }, "deterministic"))
    assert.isFalse(Cache.isCacheableRequest({}, "deterministic"))
    assert.isFalse(Cache.isCacheableRequest({ temperature: 1 }, "deterministic"))
    assert.isTrue(Cache.isCacheableRequest({}, "all"))
  })
})

describe("cache tiers", () => {
  it.effect("entries expire after the TTL, on the clock", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.set("k", answer("a"))
      yield* TestClock.adjust("59 seconds")
      assert.isTrue(Option.isSome(yield* cache.get("k")))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* cache.get("k")))
    }).pipe(Effect.provide(cacheLayer({ ttl: "60s" }))))

  it.effect("the memory tier evicts the least recently used entries past maxBytes", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const size = Cache.sizeOf(answer("x".repeat(100)))
      // Room for three entries of this size.
      assert.isBelow(size * 3, 4000)
      for (const k of ["a", "b", "c"]) yield* cache.set(k, answer("x".repeat(100)))
      yield* cache.get("a") // a is now the most recent
      yield* cache.set("d", answer("x".repeat(100)))
      assert.isTrue(Option.isSome(yield* cache.get("a")))
      assert.isTrue(Option.isNone(yield* cache.get("b")), "b was the least recently used")
      assert.isTrue(Option.isSome(yield* cache.get("c")))
      assert.isTrue(Option.isSome(yield* cache.get("d")))
      yield* cache.set("huge", answer("x".repeat(10_000)))
      assert.isTrue(Option.isNone(yield* cache.get("huge")), "an entry larger than the budget is not kept")
    }).pipe(Effect.provide(cacheLayer({ maxBytes: Cache.sizeOf(answer("x".repeat(100))) * 3 + 10 }))))

  it.live("persisted entries survive a restart; encrypted, the file holds none of the text", () =>
    Effect.gen(function*() {
      const dbPath = tempDbPath()
      const settings = { persist: true, encrypt: true }
      const env = { TOLLGATE_CACHE_KEY: KEY_HEX }
      yield* Effect.flatMap(Cache.Cache, (c) => c.set("k", answer(SECRET_TEXT))).pipe(Effect.provide(cacheLayer(settings, dbPath, env)))
      const again = yield* Effect.flatMap(Cache.Cache, (c) => c.get("k")).pipe(Effect.provide(cacheLayer(settings, dbPath, env)))
      assert.include(Option.getOrThrow(again).json, SECRET_TEXT)
      const bytes = [dbPath, `${dbPath}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f).toString("latin1")).join("")
      assert.isAbove(bytes.length, 0)
      assert.notInclude(bytes, SECRET_TEXT)
      assert.notInclude(bytes, "completion text")
      // Another key cannot read it: a miss, not an error.
      const other = yield* Effect.flatMap(Cache.Cache, (c) => c.get("k")).pipe(
        Effect.provide(cacheLayer(settings, dbPath, { TOLLGATE_CACHE_KEY: "ff".repeat(32) }))
      )
      assert.isTrue(Option.isNone(other))
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT COUNT(*) AS n FROM cache_entries`).pipe(
        Effect.provide(Store.layerAt(dbPath))
      )
      assert.strictEqual(rows[0]!.n, 1)
    }))

  it.effect("encryption without a valid TOLLGATE_CACHE_KEY refuses to start", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.exit(Config.resolve(yield* Config.decode({ cache: { persist: true, encrypt: true } }, "t"), undefined).pipe(withEnv({})))
      assert.isTrue(Exit.isFailure(missing))
      assert.include(String(Exit.isFailure(missing) && missing.cause._tag === "Fail" ? missing.cause.error.message : ""), "TOLLGATE_CACHE_KEY is not set")
      const bad = yield* Effect.exit(Config.resolve(yield* Config.decode({ cache: { persist: true, encrypt: true } }, "t"), undefined).pipe(withEnv({ TOLLGATE_CACHE_KEY: "short" })))
      assert.include(String(Exit.isFailure(bad) && bad.cause._tag === "Fail" ? bad.cause.error.message : ""), "expected 32 bytes")
    }))
})

describe("one answer, both shapes", () => {
  it("a stream assembles into the completion it adds up to, tool calls included", () => {
    const base = { id: "c1", object: "chat.completion.chunk", created: 5, model: "m" }
    const events = [
      { ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" } }] },
      { ...base, choices: [{ index: 0, delta: { content: "Hel" } }] },
      { ...base, choices: [{ index: 0, delta: { content: "lo" } }] },
      { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get", arguments: "{\"a\"" } }] } }] },
      { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: ":1}" } }] } }] },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
      { ...base, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }
    ].map((e) => JSON.stringify(e))
    const completion = Cache.assemble(events)
    assert.deepStrictEqual(completion, {
      id: "c1",
      object: "chat.completion",
      created: 5,
      model: "m",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "Hello", refusal: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get", arguments: "{\"a\":1}" } }] },
        logprobs: null,
        finish_reason: "tool_calls"
      }],
      usage: { prompt_tokens: 3, completion_tokens: 4 }
    })
    // And back: the synthesised stream assembles to the same completion.
    assert.deepStrictEqual(Cache.assemble(Cache.synthesize(completion)), completion)
  })

  it("the usage chunk is replayed only to clients that asked for it", () => {
    const cached = answer("hello")
    const withUsage = Cache.sseEvents(cached, true)
    const without = Cache.sseEvents(cached, false)
    assert.strictEqual(withUsage.length, without.length + 1)
    assert.strictEqual(without[without.length - 1], "data: [DONE]\n\n")
    assert.isTrue(withUsage.some((e) => e.includes("\"usage\"")))
    assert.isFalse(without.some((e) => e.includes("\"usage\"")))
  })
})
