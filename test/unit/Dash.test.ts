/** The terminal dashboard's pure parts: a frame from a snapshot, the refresh rate, the flags. */
import { assert, describe, it } from "@effect/vitest"
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { Duration, Effect } from "effect"
import * as Dash from "../../src/Cli/Dash.js"
import { stripAnsi } from "../../src/Cli/Help.js"
import * as Config from "../../src/Config.js"
import * as Frame from "../../src/Dash/Frame.js"
import * as Snapshot from "../../src/Dash/Snapshot.js"

const NOW = new Date(2026, 11, 7, 14, 30, 5).getTime()

const model = (group: string, requests: number, costUsd: number | null): Snapshot.StatsRow => ({
  group,
  requests,
  errors: 1,
  inputTokens: requests * 1000,
  outputTokens: requests * 100,
  costUsd,
  savedUsd: 0,
  cacheHits: 0,
  p50LatencyMs: 12.4,
  p95LatencyMs: 80
})

const snapshot = (over: Partial<Snapshot.Snapshot> = {}): Snapshot.Snapshot => ({
  at: NOW,
  admin: "http://127.0.0.1:4101",
  version: "0.1.0",
  uptimeSeconds: 192,
  booked: 1234,
  statsAt: NOW,
  ledger: { status: "ok", queueDepth: 0 },
  today: { ...model("all", 1234, 1.2345), errors: 3, savedUsd: 0.04, cacheHits: 10 },
  models: [model("gpt-4o-mini", 1200, 1.2), model("claude-sonnet-4", 30, 0.0345), model("local-llama", 4, null)],
  breakers: [
    { target: "openai/gpt-4o-mini", state: "closed", retryAfterMs: 0 },
    { target: "anthropic/claude-sonnet-4", state: "open", retryAfterMs: 29_500 }
  ],
  budget: {
    enabled: true,
    limits: [{ scope: "global", key: null, window: "daily", limitUsd: 5, spentUsd: 1.2345, reservedUsd: 0.01, resetsAt: new Date(NOW + 3_600_000).toISOString() }],
    blocks: []
  },
  recent: Array.from({ length: 100 }, (_, i) => ({
    time: new Date(NOW - i * 1000).toISOString(),
    model: "gpt-4o-mini",
    provider: "openai",
    route: "main",
    status: i === 1 ? 429 : 200,
    inputTokens: 12,
    outputTokens: 34,
    costUsd: 0.000084,
    latencyMs: 250.4,
    cache: i === 2 ? "hit" : null
  })),
  ...over
})

const view = (over: Partial<Frame.View> = {}): Frame.View => ({
  snapshot: snapshot(),
  rate: 12.44,
  problem: undefined,
  log: [],
  width: 120,
  height: 40,
  color: false,
  now: NOW,
  ...over
})

describe("Dash frame", () => {
  it("shows requests/s, today's requests and spend, the models, breakers, budgets and recent requests", () => {
    const text = Frame.render(view()).join("\n")
    assert.include(text, "tollgate dash  http://127.0.0.1:4101  v0.1.0  up 3m12s")
    assert.include(text, "14:30:05  q quit")
    assert.include(text, "requests/s 12.4")
    assert.include(text, "today 1,234 requests")
    assert.include(text, "spend $1.23")
    assert.include(text, "errors 3")
    assert.match(text, /gpt-4o-mini\s+1,200\s+1\s+1,200,000\s+120,000\s+\$1\.20\s+12\s+80/)
    assert.match(text, /local-llama\s+4\s+1\s+4,000\s+400\s+-/)
    // Open breakers first, with when they let a probe through.
    assert.include(text, "anthropic/claude-sonnet-4 OPEN 30s   openai/gpt-4o-mini closed")
    assert.match(text, /global daily\s+#####\.+\s+25%\s+\$1\.23 of \$5\.00 \(\+\$0\.01 reserved\)\s+resets in 1h00m/)
    assert.match(text, /14:30:05 gpt-4o-mini\s+openai\s+main\s+200\s+12\/34\s+\$0\.000084\s+250 ms/)
    assert.match(text, /14:30:03 .* hit$/m)
  })

  it("fits any terminal: no line wider than it, no more lines than its height, the recent requests filling the rest", () => {
    for (const [width, height] of [[20, 5], [40, 10], [80, 24], [120, 40], [250, 80]] as const) {
      for (const color of [false, true]) {
        const lines = Frame.render(view({ width, height, color, log: ["14:30:01 INFO reloaded"] }))
        assert.isAtMost(lines.length, height, `${width}x${height}`)
        for (const l of lines) assert.isAtMost(stripAnsi(l).length, width, `${width}x${height}: ${l}`)
        if (height >= 24) assert.strictEqual(lines.length, height, "the recent requests take the rows left")
      }
    }
  })

  it("colours only on a colour terminal: errors and open breakers in red", () => {
    const plain = Frame.render(view()).join("\n")
    assert.notInclude(plain, "\u001b[")
    const coloured = Frame.render(view({ color: true })).join("\n")
    assert.include(coloured, "\u001b[31mOPEN 30s\u001b[0m")
    assert.match(coloured, /\u001b\[31m14:30:04 gpt-4o-mini .* 429 /)
  })

  it("before the first read, after a failed one, and with nothing yet", () => {
    assert.deepStrictEqual(Frame.render(view({ snapshot: undefined, width: 60, height: 10 })).slice(1), ["reading the admin listener..."])
    const failed = Frame.render(view({ problem: "cannot reach tollgate's admin listener at http://127.0.0.1:4101 (ECONNREFUSED)" }))
    assert.strictEqual(failed[1], "! cannot reach tollgate's admin listener at http://127.0.0.1:4101 (ECONNREFUSED) (retrying)")
    assert.include(failed.join("\n"), "today 1,234 requests", "the last data stays")
    const empty = Frame.render(view({
      rate: undefined,
      snapshot: snapshot({ today: undefined, models: [], breakers: [], recent: [], budget: { enabled: false, limits: [], blocks: [] } })
    })).join("\n")
    assert.include(empty, "requests/s -   today 0 requests   spend $0")
    assert.include(empty, "no requests today")
    assert.include(empty, "none yet")
    assert.include(empty, "budgets off")
    assert.include(empty, "none since the server started")
  })

  it("shows the server's log under the budgets (start --dash)", () => {
    const text = Frame.render(view({ log: ["a", "b", "c", "14:30:04 WARN breaker opened"] })).join("\n")
    assert.include(text, "LOG\n  b\n  c\n  14:30:04 WARN breaker opened")
  })
})

describe("Dash snapshot and flags", () => {
  it("requests per second from two snapshots of the same server", () => {
    const a = snapshot({ at: 1_000, booked: 10 })
    assert.isUndefined(Snapshot.rateOf(undefined, a))
    assert.strictEqual(Snapshot.rateOf(a, snapshot({ at: 3_000, booked: 30 })), 10)
    assert.isUndefined(Snapshot.rateOf(a, snapshot({ at: 3_000, booked: 2 })), "a restart")
  })

  it("the day starts at local midnight", () => {
    const start = Snapshot.startOfDay(NOW)
    assert.strictEqual(start, new Date(2026, 11, 7).getTime())
  })

  it("--admin with or without a scheme, and --interval", () => {
    assert.strictEqual(Snapshot.normalizeUrl("127.0.0.1:4101/"), "http://127.0.0.1:4101")
    assert.strictEqual(Snapshot.normalizeUrl("https://tollgate.internal:8443"), "https://tollgate.internal:8443")
    assert.strictEqual(Duration.toMillis(Dash.intervalOf("1s")!), 1000)
    assert.strictEqual(Duration.toMillis(Dash.intervalOf("500ms")!), 500)
    assert.strictEqual(Duration.toMillis(Dash.intervalOf("2.5s")!), 2500)
    for (const bad of ["", "1", "100ms", "fast", "-1s"]) assert.isUndefined(Dash.intervalOf(bad), bad)
  })

  it.effect("the admin URL of a configuration: a wildcard host read on loopback, off said so", () =>
    Effect.gen(function*() {
      const settings = (server: Config.FileConfigInput["server"]) =>
        Effect.provide(Config.TollgateConfig, Config.layerFrom({ server, providers: { sim: { kind: "mock" } } }))
      assert.strictEqual(Dash.adminUrlOfConfig(yield* settings({ admin: { port: 4101 } })), "http://127.0.0.1:4101")
      assert.strictEqual(Dash.adminUrlOfConfig(yield* settings({ admin: { host: "0.0.0.0", port: 9000 }, adminKeys: ["k"] })), "http://127.0.0.1:9000")
      const off = Dash.adminUrlOfConfig(yield* settings({ admin: false }))
      assert.include(typeof off === "string" ? off : off.message, "server.admin: false")
      assert.strictEqual(Dash.urlOn("::", 4101), "http://[::1]:4101")
      assert.strictEqual(Dash.urlOn("10.0.0.5", 4101), "http://10.0.0.5:4101")
      const free = Dash.adminUrlOfConfig(yield* settings({ admin: { port: 0 } }))
      assert.include(typeof free === "string" ? free : free.message, "pass --admin")
    }))

  /** A fake admin listener: answers by path, and counts what it was asked. */
  const adminAnswering = (status: number) => {
    const asked: Array<string> = []
    const bodies: Record<string, unknown> = {
      "/debug/status": { version: "0.1.0", uptimeSeconds: 5, breakers: [], ledger: { status: "ok", booked: 3, queueDepth: 0 } },
      "/admin/stats": { rows: [{ ...model("all", 3, 0.5), errors: 0 }] },
      "/admin/budget": { enabled: false, limits: [], blocks: [] },
      "/admin/recent": { requests: [] }
    }
    const client = HttpClient.make((request) => {
      const url = new URL(request.url)
      asked.push(url.pathname + url.search)
      if (url.port === "1") {
        return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }) }))
      }
      return Effect.succeed(HttpClientResponse.fromWeb(request, new Response(JSON.stringify(bodies[url.pathname]), { status, headers: { "content-type": "application/json" } })))
    })
    return { asked, client }
  }

  it.effect("reads the ledger's totals at most every 5 seconds, the rest at each refresh", () =>
    Effect.gen(function*() {
      const admin = adminAnswering(200)
      const read = (now: number, previous?: Snapshot.Snapshot) =>
        Snapshot.read({ admin: "http://127.0.0.1:4101", key: "k", recent: 10, now, previous }).pipe(Effect.provideService(HttpClient.HttpClient, admin.client))
      const first = yield* read(NOW)
      assert.strictEqual(first.today?.requests, 3)
      assert.strictEqual(admin.asked.filter((a) => a.startsWith("/admin/stats")).length, 2)
      assert.include(admin.asked, `/admin/stats?since=${encodeURIComponent(new Date(Snapshot.startOfDay(NOW)).toISOString())}&by=model`)
      assert.include(admin.asked, "/admin/recent?limit=10")
      const second = yield* read(NOW + 1000, first)
      assert.strictEqual(admin.asked.filter((a) => a.startsWith("/admin/stats")).length, 2)
      assert.strictEqual(second.statsAt, NOW)
      assert.strictEqual(second.today?.requests, 3)
      yield* read(NOW + 5000, second)
      assert.strictEqual(admin.asked.filter((a) => a.startsWith("/admin/stats")).length, 4)
      assert.strictEqual(admin.asked.filter((a) => a === "/debug/status").length, 3)
    }))

  it.effect("says why a read failed: unreachable, a key needed or refused, not tollgate", () =>
    Effect.gen(function*() {
      const failure = (status: number, admin: string, key?: string) =>
        Snapshot.read({ admin, key, recent: 10, now: NOW }).pipe(
          Effect.provideService(HttpClient.HttpClient, adminAnswering(status).client),
          Effect.flip
        )
      const gone = yield* failure(200, "http://127.0.0.1:1")
      assert.strictEqual(gone._tag, "AdminUnreachable")
      assert.include(gone.message, "at http://127.0.0.1:1 (ECONNREFUSED). Is tollgate running?")
      const needed = yield* failure(401, "http://127.0.0.1:4101")
      assert.strictEqual(needed._tag, "AdminUnauthorized")
      assert.include(needed.message, "needs a key: pass --key (or set TOLLGATE_ADMIN_KEY)")
      const refused = yield* failure(401, "http://127.0.0.1:4101", "nope")
      assert.include(refused.message, "refused the key given")
      const other = yield* failure(404, "http://127.0.0.1:4101")
      assert.strictEqual(other._tag, "AdminBadAnswer")
      assert.include(other.message, "answered 404")
    }))
})
