/**
 * Scale-out end to end: three real `tollgate start` processes sharing one PostgreSQL ledger and
 * one Redis (budgets), behind no balancer (the clients spread their requests over the three).
 * One shared $ limit holds under concurrent load over every replica; the ledger has a row for
 * every answered request; with the store stopped mid-run (`budget.onStoreDown: block`) requests
 * under a limit get a clear 503 and nothing is overspent, and service resumes when it is back.
 * Skipped, saying why, where PostgreSQL or Redis is not reachable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis as IoRedis } from "ioredis"
import pg from "pg"
import * as Pg from "../support/Postgres.js"
import * as Redis from "../support/Redis.js"
import * as Replica from "../support/Replica.js"

const unreachable = Pg.unreachable ?? Redis.unreachable
const skipped = unreachable === undefined ? "" : ` (skipped: ${unreachable})`

/** Model "m": $1,000 per 1M output tokens. 100 max tokens reserve $0.10; the upstream's 50 tokens cost $0.05. */
const PRICING = { m: { input: 0, output: 1000 } }
const REQUEST = { model: "m", max_tokens: 100 }

const configOf = (options: { upstream: string; database: string; redis: string; prefix: string; usd: number }) => ({
  providers: { up: { kind: "openai", baseUrl: options.upstream } },
  pricing: PRICING,
  database: { url: options.database },
  redis: { url: options.redis, keyPrefix: options.prefix },
  server: { admin: false },
  budget: { enabled: true, onStoreDown: "block", limits: [{ window: "daily", usd: options.usd }] }
})

/** The ledger's rows, read straight from the database. */
const ledger = (url: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const { rows } = await client.query<{ request_id: string; status: number; cost_usd: number | null }>(
        "SELECT request_id, status, cost_usd FROM requests ORDER BY id"
      )
      return rows.map((r) => ({ ...r, cost_usd: r.cost_usd === null ? null : Number(r.cost_usd) }))
    } finally {
      await client.end()
    }
  })

/** `clients` clients, each sending `each` requests one after another, client i to replica i mod n. */
const load = (
  replicas: ReadonlyArray<Replica.Replica>,
  clients: number,
  each: number,
  onAnswer?: (a: Replica.Answer, replica: number) => void,
  streams = false
) =>
  Effect.promise(() =>
    Promise.all(Array.from({ length: clients }, async (_, i) => {
      const answers: Array<Replica.Answer> = []
      for (let k = 0; k < each; k++) {
        const replica = (i + k) % replicas.length
        // With `streams`, every other request is streamed.
        const answer = await Replica.chat(replicas[replica]!.baseUrl, streams && (i + k) % 2 === 1 ? { ...REQUEST, stream: true } : REQUEST)
        answers.push(answer)
        onAnswer?.(answer, replica)
      }
      return answers
    })).then((all) => all.flat())
  )

const stopAll = (replicas: ReadonlyArray<Replica.Replica>) =>
  Effect.forEach(replicas, (r) => Replica.stop(r.child, "SIGTERM"), { concurrency: "unbounded", discard: true })

describe.skipIf(unreachable !== undefined)(`three replicas on one ledger and one budget${skipped}`, () => {
  it.scoped("300 requests over three replicas at one $5 limit: settled spend <= $5, a ledger row for every answer", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const prefix = yield* Redis.freshPrefix
      const upstream = yield* Replica.slowUpstream({ delayMs: 20, completionTokens: 50 })
      const config = configOf({ upstream: upstream.url, database: db.url, redis: Redis.URL, prefix, usd: 5 })
      // One at first: the ledger's tables are created once, then the others start together.
      const first = yield* Replica.start(config)
      const replicas = [first, ...yield* Effect.all([Replica.start(config), Replica.start(config)], { concurrency: "unbounded" })]

      const answers = yield* load(replicas, 30, 10)
      assert.strictEqual(answers.length, 300)
      const ok = answers.filter((a) => a.status === 200)
      const refused = answers.filter((a) => a.status !== 200)
      for (const a of refused) assert.deepStrictEqual([a.status, a.errorCode], [429, "budget_daily"])
      // $5 at $0.05 each is 100 requests; in-flight reservations of $0.10 may turn a few away early.
      assert.isAtMost(ok.length, 100)
      assert.isAtLeast(ok.length, 80)

      // SIGTERM: each replica writes its queued rows before it exits.
      yield* stopAll(replicas)
      const rows = yield* ledger(db.url)
      const answered = rows.filter((r) => r.status === 200)
      assert.sameMembers(answered.map((r) => r.request_id), ok.map((a) => a.requestId!))
      const spent = answered.reduce((sum, r) => sum + (r.cost_usd ?? 0), 0)
      assert.isAtMost(spent, 5 + 1e-9)
      assert.closeTo(spent, ok.length * 0.05, 1e-9)
    }), { timeout: 120_000 })
})

describe.skipIf(unreachable !== undefined)(`a replica killed under load${skipped}`, () => {
  it.scoped("kill -9 of one replica under JSON and streamed load: every answered request has its row; its reservations lapse and free the budget", () =>
    Effect.gen(function*() {
      const db = yield* Pg.freshDatabase
      const prefix = yield* Redis.freshPrefix
      const upstream = yield* Replica.slowUpstream({ delayMs: 40, completionTokens: 50 })
      const config = {
        ...configOf({ upstream: upstream.url, database: db.url, redis: Redis.URL, prefix, usd: 1000 }),
        budget: { enabled: true, reservationLease: "2s", limits: [{ window: "daily", usd: 1000 }] }
      }
      const first = yield* Replica.start(config)
      const replicas = [first, ...yield* Effect.all([Replica.start(config), Replica.start(config)], { concurrency: "unbounded" })]
      const victim = replicas[2]!

      // Killed the moment it has answered 30 requests (a third of its share), with others in
      // flight on it: the answer just received is the one most likely to have no row yet.
      let answered = 0
      const answers = yield* load(replicas, 30, 10, (a, replica) => {
        if (replica === 2 && a.status === 200 && ++answered === 30) victim.child.kill("SIGKILL")
      }, true)
      assert.isTrue(victim.child.signalCode === "SIGKILL" || victim.child.killed)
      const ok = answers.filter((a) => a.status === 200)
      // The clients of the dead one saw their connections fail; nothing else failed.
      assert.isTrue(answers.every((a) => a.status === 200 || a.status === 0))
      assert.isTrue(answers.some((a) => a.status === 0))

      // Its reservations held the counter until their lease (2 s) lapsed; the next request to
      // touch the counter frees them, and nothing is left reserved once the load is over.
      const reserved = yield* Effect.promise(async () => {
        const client = new IoRedis(Redis.URL)
        try {
          for (let i = 0; i < 100; i++) {
            await Replica.chat(replicas[0]!.baseUrl, REQUEST)
            const keys = (await client.keys(`${prefix}budget:c:*`)).filter((k) => !k.endsWith(":r"))
            const values = await Promise.all(keys.map((k) => client.hget(k, "reserved")))
            const total = values.reduce((sum, v) => sum + Number(v ?? 0), 0)
            if (total === 0 && keys.length > 0) return total
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
          return -1
        } finally {
          client.disconnect()
        }
      })
      assert.strictEqual(reserved, 0)

      yield* stopAll(replicas.slice(0, 2))
      const rows = yield* ledger(db.url)
      const ids = new Set(rows.map((r) => r.request_id))
      // database.durable (on with a Postgres ledger): an answer waits for its row's commit.
      const missing = ok.filter((a) => !ids.has(a.requestId!))
      assert.deepStrictEqual(missing, [])
    }), { timeout: 120_000 })
})

describe.skipIf(unreachable !== undefined || Redis.serverBinary === undefined)(
  `replicas when the budget store goes down${unreachable === undefined && Redis.serverBinary === undefined ? " (skipped: redis-server is not installed)" : skipped}`,
  () => {
    it.scoped("Redis stopped mid-run with onStoreDown block: clear 503s, no overspend; restarted: service resumes", () =>
      Effect.gen(function*() {
        const db = yield* Pg.freshDatabase
        const server = yield* Redis.privateServer
        const upstream = yield* Replica.slowUpstream({ delayMs: 5, completionTokens: 50 })
        const config = configOf({ upstream: upstream.url, database: db.url, redis: server.url, prefix: "t:", usd: 2 })
        const first = yield* Replica.start(config)
        const replicas = [first, ...yield* Effect.all([Replica.start(config), Replica.start(config)], { concurrency: "unbounded" })]

        const before = yield* load(replicas, 3, 5)
        assert.isTrue(before.every((a) => a.status === 200))

        yield* Effect.promise(() => server.stop())
        const during = yield* load(replicas, 3, 5)
        for (const a of during) assert.deepStrictEqual([a.status, a.errorCode], [503, "budget_store_unavailable"])

        // Back, empty: the first replica to reach it seeds it from the ledger. The clients retry
        // until each replica answers again (each reconnects on its own).
        yield* Effect.promise(() => server.start())
        for (const replica of replicas) {
          let answer: Replica.Answer | undefined
          for (let i = 0; i < 200 && answer?.status !== 200; i++) {
            answer = yield* Effect.promise(() => Replica.chat(replica.baseUrl, REQUEST))
            if (answer.status !== 200) {
              assert.strictEqual(answer.errorCode, "budget_store_unavailable")
              yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
            }
          }
          assert.strictEqual(answer?.status, 200)
        }
        // The seeded store still holds the limit: spend up to it, then refusals.
        const after = yield* load(replicas, 6, 10)
        assert.isTrue(after.some((a) => a.status === 429 && a.errorCode === "budget_daily"))

        yield* stopAll(replicas)
        const rows = yield* ledger(db.url)
        const spent = rows.filter((r) => r.status === 200).reduce((sum, r) => sum + (r.cost_usd ?? 0), 0)
        assert.isAtMost(spent, 2 + 1e-9)
        assert.isAtLeast(spent, 2 - 0.1 - 1e-9)
      }), { timeout: 120_000 })
  }
)
