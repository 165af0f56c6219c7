/**
 * The shared cache tier on a real Redis (`cache.redis`): two tollgates in this process (two real
 * listeners, each with its own memory tier) on one key prefix and one PostgreSQL ledger (as
 * replicas run: the ledger's salt makes a client's tenant, so replicas on one ledger agree on it),
 * in front of one real mock upstream. An answer stored through one is a hit on the other; identical requests sent to both
 * at once make one upstream call; tenants do not see each other's entries; entries are sealed
 * (never a plaintext body with `cache.encrypt`); a Redis server that goes away is skipped (one log
 * line) and used again once back (one more). Redis is real (`test/support/Redis.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Console, Context, Effect, Either, Exit, Fiber, FiberRef, HashMap, HashSet, Layer, Logger, Option, Scope, Stream, SubscriptionRef } from "effect"
import { NodeContext } from "@effect/platform-node"
import { Redis as IoRedis } from "ioredis"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../../src/Cache.js"
import * as Cli from "../../src/Cli.js"
import * as SharedTier from "../../src/Cache/Redis.js"
import * as Seal from "../../src/Cache/Seal.js"
import * as Config from "../../src/Config.js"
import * as Redis from "../../src/Redis.js"
import * as Store from "../../src/Store.js"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Pg from "../support/Postgres.js"
import * as RedisSupport from "../support/Redis.js"
import * as Tollgate from "../support/Tollgate.js"

interface Shared {
  readonly redis: { readonly url: string; readonly keyPrefix: string }
  readonly ledger: string
}

const replicaLayer = ({ ledger, redis }: Shared, upstream: MockUpstream.MockUpstream) =>
  Tollgate.layer({
    database: { url: ledger },
    retry: { attempts: 0 },
    pricing: { gated: { input: 1, output: 2 }, "gpt-4o-mini": { input: 1, output: 2 } },
    providers: { up: { kind: "openai", baseUrl: upstream.url } },
    redis,
    cache: { redis: true }
  })

type Replica = Context.Context<Layer.Layer.Success<ReturnType<typeof replicaLayer>>>

/** A tollgate on this Redis, in the test's scope (its listener stopped when the test ends). */
const replica = (shared: Shared, upstream: MockUpstream.MockUpstream) =>
  Layer.build(replicaLayer(shared, upstream)) as Effect.Effect<Replica, unknown, Scope.Scope>

const on = <A, E>(r: Replica, effect: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof replicaLayer>>>) => Effect.provide(effect, r)

const baseUrlOf = (r: Replica) => Context.get(r, Tollgate.TestInfo).baseUrl

const body = (model: string, prompt: string) => JSON.stringify({ model, temperature: 0, messages: [{ role: "user", content: prompt }] })

const post = (r: Replica, json: string, key = "k") =>
  Effect.promise(() =>
    fetch(`${baseUrlOf(r)}/chat/completions`, { method: "POST", body: json, headers: { authorization: `Bearer ${key}` } })
      .then(async (response) => ({ response, text: await response.text() }))
  )

const receivedFor = (upstream: MockUpstream.MockUpstream, prompt: string) => upstream.received.filter((r) => r.body.includes(prompt)).length

const rowOf = (r: Replica, response: Response) =>
  on(r, Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])).pipe(Effect.map((rows) => rows[0]!))

/** The keys under a prefix, their values (raw bytes) and what they have left to live (ms). */
const storedUnder = (url: string, prefix: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new IoRedis(url, { maxRetriesPerRequest: 1 })),
    (client) =>
      Effect.promise(async () => {
        const keys = await client.keys(`${prefix}*`)
        return Promise.all(keys.map(async (key) => ({ key, value: await client.getBuffer(key), ttl: await client.pttl(key) })))
      }),
    (client) => Effect.sync(() => client.disconnect())
  )

/** Waits for the replica's Redis client to be connected again (its own event). */
const reconnected = Effect.flatMap(Redis.Redis, (store) =>
  Option.getOrThrow(store).use((client) =>
    client.status === "ready" ? Promise.resolve() : new Promise<void>((resolve) => client.once("ready", () => resolve()))
  )).pipe(Effect.orDie, Effect.timeout("20 seconds"))

interface Line {
  readonly level: string
  readonly message: string
  readonly event: unknown
}

/** Collects log lines; `seen` waits (on the lines themselves, not on time) until one has this event. */
const captureLogs = Effect.gen(function*() {
  const lines = yield* SubscriptionRef.make<ReadonlyArray<Line>>([])
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    const line = { level: logLevel.label, message: text, event: Option.getOrUndefined(HashMap.get(annotations, "event")) }
    Effect.runSync(SubscriptionRef.update(lines, (all) => [...all, line]))
  })
  const seen = (event: string) =>
    lines.changes.pipe(
      Stream.map((all) => all.filter((l) => l.event === event)),
      Stream.filter((found) => found.length > 0),
      Stream.runHead,
      Effect.map(Option.getOrThrow),
      Effect.timeout("20 seconds")
    )
  return { lines, logger, seen }
})

const unreachable = RedisSupport.unreachable ?? Pg.unreachable

describe.skipIf(unreachable !== undefined)(
  `the shared cache on Redis${unreachable === undefined ? "" : ` (skipped: ${unreachable})`}`,
  () => {
    it.scopedLive("an answer stored through one replica is a hit on another: one upstream call, the row says hit", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const shared = { redis: { url: RedisSupport.URL, keyPrefix }, ledger: (yield* Pg.freshDatabase).url }
        const upstream = yield* MockUpstream.make
        const a = yield* replica(shared, upstream)
        const b = yield* replica(shared, upstream)

        const first = yield* post(a, body("gpt-4o-mini", "shared across replicas"))
        assert.strictEqual(first.response.headers.get("x-tollgate-cache"), "miss")
        const second = yield* post(b, body("gpt-4o-mini", "shared across replicas"))
        assert.strictEqual(second.response.status, 200)
        assert.strictEqual(second.response.headers.get("x-tollgate-cache"), "hit")
        assert.strictEqual(second.text, first.text)
        assert.strictEqual(receivedFor(upstream, "shared across replicas"), 1)

        const missRow = yield* rowOf(a, first.response)
        const hitRow = yield* rowOf(b, second.response)
        assert.strictEqual(missRow.cache_status, "miss")
        assert.isAbove(missRow.cost_usd as number, 0)
        assert.deepInclude(hitRow, { cache_status: "hit", cost_usd: 0, saved_usd: missRow.cost_usd, provider: "up" })

        // b's memory tier has it now: a repeat on b is a hit too, still one call.
        const third = yield* post(b, body("gpt-4o-mini", "shared across replicas"))
        assert.strictEqual(third.response.headers.get("x-tollgate-cache"), "hit")
        assert.strictEqual(receivedFor(upstream, "shared across replicas"), 1)

        // One entry under the prefix, expiring (PX cache.ttl), its body gzip'd, not in plain text.
        const stored = (yield* storedUnder(RedisSupport.URL, keyPrefix)).filter((s) => s.key.startsWith(`${keyPrefix}cache:`))
        assert.strictEqual(stored.length, 1)
        assert.notInclude(stored[0]!.value!.toString("latin1"), "shared across replicas")
        assert.isAbove(stored[0]!.ttl, 0)
        assert.isAtMost(stored[0]!.ttl, 3_600_000)
      }))

    it.scopedLive("identical requests sent to two replicas at once make one upstream call", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const shared = { redis: { url: RedisSupport.URL, keyPrefix }, ledger: (yield* Pg.freshDatabase).url }
        const upstream = yield* MockUpstream.make
        const a = yield* replica(shared, upstream)
        const b = yield* replica(shared, upstream)
        const json = body("gated", "ten at once on two replicas")
        const sent = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b)), (r) => post(r, json), {
          concurrency: "unbounded"
        }).pipe(Effect.fork)
        // Every request is waiting on a flight on its replica, and one call is held upstream.
        yield* on(a, Tollgate.awaitSubscribers(5))
        yield* on(b, Tollgate.awaitSubscribers(5))
        yield* upstream.awaitHeld(1)
        assert.strictEqual(receivedFor(upstream, "ten at once"), 1)
        upstream.release()
        const all = yield* Fiber.join(sent)
        assert.strictEqual(receivedFor(upstream, "ten at once"), 1)
        assert.isTrue(all.every((s) => s.response.status === 200))
        assert.strictEqual(new Set(all.map((s) => s.text)).size, 1)

        const rows = yield* Effect.forEach(all, (s, i) => rowOf(i % 2 === 0 ? a : b, s.response))
        const statuses = rows.map((r) => r.cache_status as string)
        // One request paid; its replica's others were coalesced; the other replica's were served its stored answer.
        assert.strictEqual(statuses.filter((s) => s === "miss").length, 1)
        const leader = statuses.indexOf("miss") % 2
        statuses.forEach((status, i) => {
          if (status === "miss") return
          assert.strictEqual(status, i % 2 === leader ? "coalesced" : "hit")
        })
        assert.strictEqual(rows.filter((r) => (r.cost_usd as number) > 0).length, 1)
      }))

    it.scopedLive("a stream does not wait for another replica's call: it follows its own, live", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const shared = { redis: { url: RedisSupport.URL, keyPrefix }, ledger: (yield* Pg.freshDatabase).url }
        const upstream = yield* MockUpstream.make
        const a = yield* replica(shared, upstream)
        const b = yield* replica(shared, upstream)
        const json = JSON.stringify({ model: "gated", temperature: 0, stream: true, messages: [{ role: "user", content: "streamed twice" }] })
        const first = yield* Effect.fork(post(a, json))
        yield* upstream.awaitHeld(1)
        const second = yield* Effect.fork(post(b, json))
        // b's call is upstream too, while a's is still held: nobody waited.
        yield* upstream.awaitHeld(2)
        upstream.release()
        const answers = [yield* Fiber.join(first), yield* Fiber.join(second)]
        assert.isTrue(answers.every((s) => s.response.status === 200 && s.text.includes("[DONE]")))
        assert.strictEqual(receivedFor(upstream, "streamed twice"), 2)
      }))

    it.scopedLive("a tenant does not see another tenant's entries on another replica", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const shared = { redis: { url: RedisSupport.URL, keyPrefix }, ledger: (yield* Pg.freshDatabase).url }
        const upstream = yield* MockUpstream.make
        const a = yield* replica(shared, upstream)
        const b = yield* replica(shared, upstream)
        const json = body("gpt-4o-mini", "whose answer is this")
        assert.strictEqual((yield* post(a, json, "alice")).response.headers.get("x-tollgate-cache"), "miss")
        assert.strictEqual((yield* post(b, json, "bob")).response.headers.get("x-tollgate-cache"), "miss")
        assert.strictEqual(receivedFor(upstream, "whose answer is this"), 2)
        // Each one's own entry is shared with that tenant on the other replica.
        assert.strictEqual((yield* post(b, json, "alice")).response.headers.get("x-tollgate-cache"), "hit")
        assert.strictEqual((yield* post(a, json, "bob")).response.headers.get("x-tollgate-cache"), "hit")
        assert.strictEqual(receivedFor(upstream, "whose answer is this"), 2)
      }))

    it.scopedLive.skipIf(RedisSupport.serverBinary === undefined)(
      "Redis stopped: requests are served from upstream, one log line; restarted: the tier is used again, one more",
      () =>
        Effect.gen(function*() {
          const { lines, logger, seen } = yield* captureLogs
          yield* Effect.gen(function*() {
            const server = yield* RedisSupport.privateServer
            const keyPrefix = "tollgate-test:outage:"
            const upstream = yield* MockUpstream.make
            const shared = { redis: { url: server.url, keyPrefix }, ledger: (yield* Pg.freshDatabase).url }
            const a = yield* replica(shared, upstream)
            const b = yield* replica(shared, upstream)
            assert.strictEqual((yield* post(a, body("gpt-4o-mini", "before the outage"))).response.headers.get("x-tollgate-cache"), "miss")

            yield* Effect.promise(() => server.stop())
            const during = yield* Effect.forEach(["during the outage 1", "during the outage 2", "during the outage 3"], (prompt) =>
              post(a, body("gpt-4o-mini", prompt)))
            assert.isTrue(during.every((d) => d.response.status === 200 && d.response.headers.get("x-tollgate-cache") === "miss"))
            assert.include(during[0]!.text, "during the outage 1")
            // Served from memory on the replica that stored it, while the server is away.
            const again = yield* post(a, body("gpt-4o-mini", "during the outage 1"))
            assert.strictEqual(again.response.headers.get("x-tollgate-cache"), "hit")
            const down = yield* seen("cache_shared_down")
            assert.strictEqual(down.length, 1)
            assert.strictEqual(down[0]!.level, "WARN")

            yield* Effect.promise(() => server.start())
            // The replica's connection is back (it reconnects on its own): the tier is used again.
            yield* on(a, reconnected)
            yield* on(b, reconnected)
            const after = yield* post(a, body("gpt-4o-mini", "after the outage"))
            assert.strictEqual(after.response.headers.get("x-tollgate-cache"), "miss")
            const up = yield* seen("cache_shared_up")
            assert.strictEqual(up.length, 1)
            const elsewhere = yield* post(b, body("gpt-4o-mini", "after the outage"))
            assert.strictEqual(elsewhere.response.headers.get("x-tollgate-cache"), "hit")
            assert.strictEqual(receivedFor(upstream, "after the outage"), 1)
            const all = yield* SubscriptionRef.get(lines)
            assert.strictEqual(all.filter((l) => l.event === "cache_shared_down").length, 1)
            assert.strictEqual(all.filter((l) => l.event === "cache_shared_up").length, 1)
          }).pipe(Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)))
        })
    )

    it.scopedLive("with cache.encrypt the shared entries are sealed: another key reads nothing, and no body is in plain text", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const cacheWith = (key: string) =>
          Layer.build(
            Cache.layerWithoutDependencies.pipe(
              Layer.provide(Redis.layer),
              Layer.provide(Store.layerAt(Tollgate.tempDbPath())),
              Layer.provide(
                Config.layerFrom({ redis: { url: RedisSupport.URL, keyPrefix }, cache: { redis: true, encrypt: true } }).pipe(
                  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["TOLLGATE_CACHE_KEY", key]]))))
                )
              )
            )
          ).pipe(Effect.map((context) => Context.get(context, Cache.Cache)))
        const a = yield* cacheWith("11".repeat(32))
        const b = yield* cacheWith("11".repeat(32))
        const other = yield* cacheWith("22".repeat(32))
        const answer: Cache.CachedAnswer = {
          kind: "json",
          json: JSON.stringify({ choices: [{ message: { content: "a secret answer" } }] }),
          events: [],
          provider: "up",
          model: "m",
          usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" },
          costUsd: 0.01
        }
        yield* a.set("some-key", answer)
        assert.deepStrictEqual(yield* b.get("some-key"), Option.some(answer))
        assert.isTrue(Option.isNone(yield* other.get("some-key")))
        const stored = yield* storedUnder(RedisSupport.URL, keyPrefix)
        assert.strictEqual(stored.length, 1)
        assert.notInclude(stored[0]!.value!.toString("latin1"), "secret")
        // Nor gzip alone: sealed bytes are not a gzip stream (magic 1f 8b).
        assert.notStrictEqual(stored[0]!.value!.readUInt16BE(0), 0x1f8b)
      }))
  }
)

/** The lease itself, on the tier alone: who calls, who waits, and when a waiter stops waiting. */
describe.skipIf(RedisSupport.unreachable !== undefined)(
  `the shared tier's lease${RedisSupport.unreachable === undefined ? "" : ` (skipped: ${RedisSupport.unreachable})`}`,
  () => {
    const LEASE_MS = 400
    const answer: Cache.CachedAnswer = {
      kind: "json",
      json: "{\"choices\":[]}",
      events: [],
      provider: "up",
      model: "m",
      usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" },
      costUsd: null
    }
    /** A tier on its own connection, and that connection (to look at the keys). */
    const tierOn = (prefix: string) =>
      Effect.gen(function*() {
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const client = new IoRedis(RedisSupport.URL, { lazyConnect: true, enableOfflineQueue: false })
            await client.connect()
            return client
          }),
          (client) => Effect.sync(() => client.disconnect())
        )
        const store = Redis.storeOf(client, { prefix, describe: RedisSupport.URL })
        return { tier: yield* SharedTier.make(store, Seal.make(Option.none()), 60_000, LEASE_MS), client }
      })

    it.scopedLive("the first flight leads; a second waits and is answered with what the first stored", () =>
      Effect.gen(function*() {
        const prefix = yield* RedisSupport.freshPrefix
        const a = yield* tierOn(prefix)
        const b = yield* tierOn(prefix)
        yield* a.tier.lead("k1")
        const waiter = yield* Effect.fork(Effect.either(b.tier.lead("k1")))
        yield* a.tier.set("k1", answer)
        yield* a.tier.release("k1")
        const waited = yield* Fiber.join(waiter)
        assert.isTrue(Either.isLeft(waited) && waited.left._tag === "AnsweredElsewhere")
        assert.deepStrictEqual(Either.isLeft(waited) ? waited.left.answer : undefined, answer)
      }))

    it.scopedLive("an owner that ends without storing (a failure, an answer not to cache): its waiters call at once, none takes the lease", () =>
      Effect.gen(function*() {
        const prefix = yield* RedisSupport.freshPrefix
        const a = yield* tierOn(prefix)
        const b = yield* tierOn(prefix)
        yield* a.tier.lead("k2")
        const waiters = yield* Effect.fork(Effect.all([b.tier.lead("k2"), b.tier.lead("k2")], { concurrency: 2 }))
        yield* a.tier.release("k2")
        yield* Fiber.join(waiters).pipe(Effect.timeout("5 seconds"))
        // Released, and left as a marker that lapses on its own.
        assert.strictEqual(yield* Effect.promise(() => a.client.get(`${prefix}cache-lease:k2`)), "-")
      }))

    it.scopedLive("an owner that died: its lease lapses and one waiter takes it over; a live owner's lease is renewed", () =>
      Effect.gen(function*() {
        const prefix = yield* RedisSupport.freshPrefix
        const a = yield* tierOn(prefix)
        const b = yield* tierOn(prefix)
        // A dead replica's lease: nobody renews it.
        yield* Effect.promise(() => a.client.set(`${prefix}cache-lease:k3`, "dead", "PX", LEASE_MS))
        // A live one's, on another key: it outlives several lease periods while its flight runs.
        yield* a.tier.lead("k4")
        const heldBefore = yield* Effect.promise(() => a.client.get(`${prefix}cache-lease:k4`))
        yield* b.tier.lead("k3").pipe(Effect.timeout("5 seconds"))
        // The waiter holds it now (its own token), until it lets it go.
        const holder = yield* Effect.promise(() => b.client.get(`${prefix}cache-lease:k3`))
        assert.isTrue(holder !== null && holder !== "dead" && holder !== "-")
        yield* b.tier.release("k3")
        // Another dead lease, set now, lapses too: the live one was taken more than two lease
        // periods ago, so only its renewals keep it.
        yield* Effect.promise(() => a.client.set(`${prefix}cache-lease:k5`, "dead", "PX", LEASE_MS))
        yield* b.tier.lead("k5").pipe(Effect.timeout("5 seconds"))
        yield* b.tier.release("k5")
        const pttl = yield* Effect.promise(() => a.client.pttl(`${prefix}cache-lease:k4`))
        assert.strictEqual(yield* Effect.promise(() => a.client.get(`${prefix}cache-lease:k4`)), heldBefore)
        assert.isAbove(pttl, 0)
        yield* a.tier.release("k4")
        assert.strictEqual(yield* Effect.promise(() => a.client.get(`${prefix}cache-lease:k4`)), "-")
      }))
  }
)

describe.skipIf(RedisSupport.unreachable !== undefined)(
  `tollgate cache stats|clear with a shared tier${RedisSupport.unreachable === undefined ? "" : ` (skipped: ${RedisSupport.unreachable})`}`,
  () => {
    const tollgate = (...args: Array<string>) =>
      Effect.gen(function*() {
        const out: Array<string> = []
        const console: Console.Console = {
          ...(yield* Effect.console),
          log: (...parts) => Effect.sync(() => void out.push(parts.join(" "))),
          error: () => Effect.void
        }
        const exit = yield* Cli.main(["node", "tollgate", ...args]).pipe(Effect.withConsole(console), Effect.provide(NodeContext.layer), Effect.exit)
        return { ok: Exit.isSuccess(exit), lines: out.join("\n").split("\n") }
      })

    it.scopedLive("stats counts the shared entries; clear deletes them for every replica and leaves the rest of Redis alone", () =>
      Effect.gen(function*() {
        const keyPrefix = yield* RedisSupport.freshPrefix
        const db = Tollgate.tempDbPath()
        yield* Effect.scoped(Layer.build(Store.layerAt(db)))
        const configPath = path.join(path.dirname(db), "tollgate.yaml")
        fs.writeFileSync(configPath, `redis: { url: "${RedisSupport.URL}", keyPrefix: "${keyPrefix}" }\ncache: { redis: true }\n`)
        yield* Effect.acquireUseRelease(
          Effect.sync(() => new IoRedis(RedisSupport.URL)),
          (client) =>
            Effect.promise(() =>
              Promise.all([
                client.set(`${keyPrefix}cache:one`, "x".repeat(100)),
                client.set(`${keyPrefix}cache:two`, "y".repeat(50)),
                client.set(`${keyPrefix}cache-lease:two`, "token"),
                client.set(`${keyPrefix}budget:other`, "kept")
              ])
            ),
          (client) => Effect.sync(() => client.disconnect())
        )
        const stats = yield* tollgate("cache", "stats", "--config", configPath, "--db", db)
        assert.isTrue(stats.ok)
        assert.include(stats.lines, `shared cache (Redis at ${RedisSupport.URL}, prefix ${keyPrefix}): 2 entries, 150 B`)
        const clear = yield* tollgate("cache", "clear", "--config", configPath, "--db", db)
        assert.isTrue(clear.ok)
        assert.include(clear.lines, `cleared 2 entries (150 B) from the shared cache (Redis at ${RedisSupport.URL}, prefix ${keyPrefix}), for every replica`)
        const left = (yield* storedUnder(RedisSupport.URL, keyPrefix)).map((s) => s.key).sort()
        assert.deepStrictEqual(left, [`${keyPrefix}budget:other`, `${keyPrefix}cache-lease:two`])
      }))

    it.scopedLive("a shared tier that cannot be reached is said in one line; the persisted tier is still counted", () =>
      Effect.gen(function*() {
        const db = Tollgate.tempDbPath()
        yield* Effect.scoped(Layer.build(Store.layerAt(db)))
        const configPath = path.join(path.dirname(db), "tollgate.yaml")
        fs.writeFileSync(configPath, `redis: redis://127.0.0.1:1\ncache: { redis: true }\n`)
        const stats = yield* tollgate("cache", "stats", "--config", configPath, "--db", db)
        assert.isTrue(stats.ok)
        assert.strictEqual(stats.lines[0], "persisted cache: 0 entries, 0 B (0 expired, deleted by the server within the hour)")
        assert.match(stats.lines[1]!, /^shared cache: not counted: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: /)
      }))
  }
)
