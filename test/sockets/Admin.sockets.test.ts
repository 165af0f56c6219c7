/**
 * The admin listener over real sockets (127.0.0.1, port 0 for both listeners): `/metrics` parsed
 * as Prometheus text and checked against the ledger (after a mixed run too), bounded labels (10,000 bogus
 * model names), the recent-requests feed, the `/admin/*` and `/debug/*`
 * shapes, a reload, the refusal of a non-loopback bind without admin keys, admin keys, and the
 * public `GET /stats`. Every wait is on a signal (an answer, the writer's count), never on time.
 *
 * The metrics live in Effect's global registry, shared by every tollgate in this process: each
 * test names its provider uniquely and reads only its own series.
 */
import { HttpServer } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Metric, Option, Tracer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Admin from "../../src/Admin.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import * as Metrics from "../../src/Metrics.js"
import * as PrometheusText from "../../src/Metrics/Prometheus.js"
import type * as Telemetry from "../../src/Telemetry.js"
import * as Prometheus from "../support/Prometheus.js"
import * as Tollgate from "../support/Tollgate.js"

/** What `Tollgate.awaitRows` reads: the writer and the ledger of the running graph. */
type Ledger = SqlClient.SqlClient | Telemetry.Telemetry

interface Running {
  readonly baseUrl: string
  readonly adminUrl: string
  readonly context: Context.Context<unknown>
}

const stackOf = (config: Layer.Layer<Config.TollgateConfig, Config.ConfigError>) =>
  Admin.layerWithoutDependencies.pipe(Layer.provideMerge(Http.layer), Layer.provide(config))

/** tollgate with its admin listener, both on port 0, a fresh ledger, in the test's scope. */
const serve = (input: Config.FileConfigInput) =>
  Effect.gen(function*() {
    const dbPath = Tollgate.tempDbPath()
    const config = Config.layerFrom({
      ...input,
      server: { ...input.server, port: 0, admin: input.server?.admin ?? { port: 0 } },
      database: { path: dbPath }
    })
    const context = yield* Layer.build(stackOf(config))
    const address = Context.get(context, HttpServer.HttpServer).address
    const admin = Option.getOrThrow(Context.get(context, Admin.AdminServer).address)
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    return { baseUrl: `http://127.0.0.1:${address.port}`, adminUrl: Admin.urlOf(admin), context: context as Context.Context<unknown> } satisfies Running
  })

const unique = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 10)}`

const chat = (baseUrl: string, model: string, headers: Record<string, string> = {}) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] })
    }).then(async (r) => ({ status: r.status, body: await r.text() }))
  )

const get = (url: string, init: RequestInit = {}) =>
  Effect.promise(() => fetch(url, init).then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), body: await r.text() })))

const getJson = (url: string, init: RequestInit = {}) =>
  Effect.map(get(url, init), (r) => ({ ...r, json: JSON.parse(r.body) as Record<string, any> }))

const scrape = (adminUrl: string) =>
  Effect.map(get(`${adminUrl}/metrics`), (r) => {
    assert.strictEqual(r.status, 200)
    assert.match(r.type ?? "", /^text\/plain; version=0\.0\.4/)
    return Prometheus.parse(r.body)
  })

describe("admin listener", () => {
  it.scopedLive("/metrics parses as Prometheus text and its counts match the ledger", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const t = yield* serve({
        providers: { [sim]: { kind: "mock" } },
        routes: [{ name: "main", targets: [{ provider: sim, model: "gpt-4o-mini" }] }]
      })
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* chat(t.baseUrl, "gpt-4o-mini")).status, 200)
      const rows = yield* Effect.provide(Tollgate.awaitRows(5), t.context as Context.Context<Ledger>)
      const families = yield* scrape(t.adminUrl)
      const mine = { provider: sim }
      assert.strictEqual(Prometheus.total(families, "tollgate_requests_total", mine), rows.length)
      assert.deepStrictEqual(Prometheus.samples(families, "tollgate_requests_total", mine).map((s) => s.labels), [
        { provider: sim, model: "gpt-4o-mini", route: "main", status: "200", endpoint: "/v1/chat/completions" }
      ])
      const tokens = (type: string) => Prometheus.total(families, "tollgate_tokens_total", { ...mine, type })
      assert.strictEqual(tokens("input"), rows.reduce((n, r) => n + Number(r.input_tokens), 0))
      assert.strictEqual(tokens("output"), rows.reduce((n, r) => n + Number(r.output_tokens), 0))
      assert.strictEqual(Prometheus.total(families, "tollgate_request_duration_seconds_count", mine), 5)
      assert.strictEqual(Prometheus.total(families, "tollgate_time_to_first_byte_seconds_count", mine), 5)
      assert.strictEqual(families.get("tollgate_request_duration_seconds")?.type, "histogram")
      assert.strictEqual(families.get("tollgate_requests_total")?.type, "counter")
      assert.deepStrictEqual(Prometheus.samples(families, "tollgate_breaker_state", mine).map((s) => [s.labels.model, s.value]), [["gpt-4o-mini", 0]])
      assert.strictEqual(Prometheus.samples(families, "tollgate_ledger_queue_depth")[0]?.value, 0)
      assert.isDefined(families.get("tollgate_ledger_rows_lost_total"))
    }))

  it.scopedLive("after a mixed run (two providers, failures, cache hits, streams) the counters equal the ledger's counts", () =>
    Effect.gen(function*() {
      const steady = unique("steady")
      const flaky = unique("flaky")
      const t = yield* serve({
        providers: { [steady]: { kind: "mock" }, [flaky]: { kind: "mock", failStatus: 400, failEvery: 2 } },
        routes: [
          { name: "main", match: { model: "gpt-4o-mini" }, targets: [{ provider: steady, model: "gpt-4o-mini" }] },
          { name: "shaky", match: { model: "gpt-4.1" }, targets: [{ provider: flaky, model: "gpt-4.1" }] }
        ],
        pricing: { "gpt-4o-mini": { input: 1, output: 2 }, "gpt-4.1": { input: 2, output: 8 } },
        cache: { enabled: true, mode: "all" }
      })
      // 4 identical (1 miss, 3 hits), 2 streams, 4 to the flaky provider (every 2nd answer is a 400), 2 distinct.
      for (let i = 0; i < 4; i++) yield* chat(t.baseUrl, "gpt-4o-mini")
      for (let i = 0; i < 2; i++) {
        yield* Effect.promise(() =>
          fetch(`${t.baseUrl}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: `stream ${i}` }] })
          }).then((r) => r.text())
        )
      }
      const flakyStatuses: Array<number> = []
      for (let i = 0; i < 4; i++) flakyStatuses.push((yield* chat(t.baseUrl, "gpt-4.1", { "x-tollgate-cache": "bypass" })).status)
      for (let i = 0; i < 2; i++) {
        yield* Effect.promise(() =>
          fetch(`${t.baseUrl}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `distinct ${i}` }] })
          }).then((r) => r.text())
        )
      }
      const rows = yield* Effect.provide(Tollgate.awaitRows(12), t.context as Context.Context<Ledger>)
      assert.deepStrictEqual(flakyStatuses.filter((s) => s !== 200).length, 2)
      const families = yield* scrape(t.adminUrl)

      const ours = (provider: string) => rows.filter((r) => r.provider === provider)
      for (const provider of [steady, flaky]) {
        const mine = ours(provider)
        assert.isAbove(mine.length, 0)
        assert.strictEqual(Prometheus.total(families, "tollgate_requests_total", { provider }), mine.length, provider)
        const byStatus = new Map<string, number>()
        for (const r of mine) byStatus.set(String(r.status), (byStatus.get(String(r.status)) ?? 0) + 1)
        for (const [status, n] of byStatus) assert.strictEqual(Prometheus.total(families, "tollgate_requests_total", { provider, status }), n, `${provider} ${status}`)
        const sum = (column: string) => mine.reduce((n, r) => n + Number(r[column] ?? 0), 0)
        assert.strictEqual(Prometheus.total(families, "tollgate_tokens_total", { provider, type: "input" }), sum("input_tokens"))
        assert.strictEqual(Prometheus.total(families, "tollgate_tokens_total", { provider, type: "output" }), sum("output_tokens"))
        assert.closeTo(Prometheus.total(families, "tollgate_cost_usd_total", { provider }), sum("cost_usd"), 1e-9)
        const hits = mine.filter((r) => r.cache_status === "hit" || r.cache_status === "coalesced").length
        assert.strictEqual(Prometheus.total(families, "tollgate_cache_hits_total", { provider }), hits)
        assert.strictEqual(Prometheus.total(families, "tollgate_request_duration_seconds_count", { provider }), mine.length)
      }
      assert.strictEqual(ours(steady).filter((r) => r.cache_status === "hit").length, 3)
      assert.strictEqual(ours(steady).filter((r) => Number(r.stream) === 1).length, 2)
      assert.strictEqual(Prometheus.total(families, "tollgate_requests_total", { provider: flaky, status: "400", route: "shaky" }), 2)
    }))

  it.scopedLive("10,000 distinct bogus model names add one `other` series, not 10,000", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const t = yield* serve({ providers: { [sim]: { kind: "mock" } }, cache: { enabled: false, coalesce: false } })
      const N = 10_000
      const names = Array.from({ length: N }, (_, i) => `bogus-${i}-${Math.random().toString(36).slice(2)}`)
      // Bounded in count (N) and in time (the timeout).
      const statuses = yield* Effect.forEach(names, (model) => Effect.map(chat(t.baseUrl, model), (r) => r.status), { concurrency: 16 }).pipe(
        Effect.timeout("90 seconds")
      )
      assert.isTrue(statuses.every((s) => s === 200))
      yield* Effect.provide(Tollgate.awaitRows(N), t.context as Context.Context<Ledger>).pipe(Effect.timeout("60 seconds"))
      const families = yield* scrape(t.adminUrl)
      const series = Prometheus.samples(families, "tollgate_requests_total", { provider: sim })
      assert.deepStrictEqual(series.map((s) => s.labels.model), ["other"])
      assert.strictEqual(series[0]!.value, N)
      // No route: the client's model went to the provider as it was.
      assert.strictEqual(series[0]!.labels.route, "default")
      let mine = 0
      for (const family of families.values()) {
        for (const s of family.samples) {
          assert.notMatch(s.labels.model ?? "", /^bogus-/)
          if (s.labels.provider === sim) mine++
        }
      }
      // requests, two token types, and the duration and TTFB histograms' buckets, _sum and _count: one label set each.
      assert.isBelow(mine, 60)
    }), { timeout: 180_000 })

  it.scopedLive("GET /admin/recent: the last requests, newest first, metadata only", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const t = yield* serve({
        providers: { [sim]: { kind: "mock" } },
        routes: [{ name: "main", targets: [{ provider: sim, model: "gpt-4o-mini" }] }],
        pricing: { "gpt-4o-mini": { input: 1, output: 2 } }
      })
      const sent: Array<string> = []
      for (let i = 0; i < 3; i++) {
        const id = yield* Effect.promise(() =>
          fetch(`${t.baseUrl}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: "Bearer sk-secret-key" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `the secret prompt ${i}` }] })
          }).then(async (r) => {
            await r.text()
            return r.headers.get("x-tollgate-request-id")!
          })
        )
        sent.push(id)
      }
      const rows = yield* Effect.provide(Tollgate.awaitRows(3), t.context as Context.Context<Ledger>)
      const recent = yield* getJson(`${t.adminUrl}/admin/recent?limit=2`)
      assert.strictEqual(recent.status, 200)
      assert.strictEqual(recent.json.capacity, 200)
      assert.deepStrictEqual(recent.json.requests.map((r: { requestId: string }) => r.requestId), [sent[2], sent[1]])
      const [last] = recent.json.requests
      const row = rows.find((r) => r.request_id === sent[2])!
      assert.strictEqual(last.model, "gpt-4o-mini")
      assert.strictEqual(last.provider, sim)
      assert.strictEqual(last.route, "main")
      assert.strictEqual(last.status, 200)
      assert.strictEqual(last.inputTokens, row.input_tokens)
      assert.strictEqual(last.outputTokens, row.output_tokens)
      assert.closeTo(last.costUsd, Number(row.cost_usd), 1e-12)
      assert.isAbove(last.latencyMs, 0)
      assert.notInclude(recent.body, "secret")
      assert.strictEqual((yield* getJson(`${t.adminUrl}/admin/recent`)).json.requests.length, 3)
      const bad = yield* getJson(`${t.adminUrl}/admin/recent?limit=0`)
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.json.error.code, "invalid_limit")
    }))

  it.scopedLive("/admin/stats, /admin/budget, /debug/routes and /debug/status answer their shapes", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const t = yield* serve({
        providers: { [sim]: { kind: "mock" } },
        routes: [{ name: "main", targets: [{ provider: sim, model: "gpt-4o-mini" }] }],
        pricing: { "gpt-4o-mini": { input: 1, output: 2 } },
        budget: { enabled: true, limits: [{ window: "daily", usd: 5 }] }
      })
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* chat(t.baseUrl, "gpt-4o-mini")).status, 200)
      yield* Effect.provide(Tollgate.awaitRows(3), t.context as Context.Context<Ledger>)

      const stats = yield* getJson(`${t.adminUrl}/admin/stats?by=model&since=1h`)
      assert.strictEqual(stats.status, 200)
      assert.strictEqual(stats.json.by, "model")
      assert.deepStrictEqual(Object.keys(stats.json).sort(), ["by", "lost", "rows", "since", "unpriced"])
      assert.strictEqual(stats.json.rows[0].group, "gpt-4o-mini")
      assert.strictEqual(stats.json.rows[0].requests, 3)
      assert.isAbove(stats.json.rows[0].costUsd, 0)
      assert.strictEqual((yield* getJson(`${t.adminUrl}/admin/stats?since=soon`)).json.error.code, "invalid_since")
      assert.strictEqual((yield* getJson(`${t.adminUrl}/admin/stats?by=colour`)).status, 400)

      const budget = yield* getJson(`${t.adminUrl}/admin/budget`)
      assert.strictEqual(budget.status, 200)
      assert.isTrue(budget.json.enabled)
      const [limit] = budget.json.limits
      assert.strictEqual(limit.scope, "global")
      assert.strictEqual(limit.window, "daily")
      assert.strictEqual(limit.limitUsd, 5)
      assert.closeTo(limit.spentUsd, stats.json.rows[0].costUsd, 1e-9)
      assert.strictEqual(limit.reservedUsd, 0)
      assert.match(limit.resetsAt, /^\d{4}-\d\d-\d\dT/)
      assert.deepStrictEqual(budget.json.blocks, [])
      const families = yield* scrape(t.adminUrl)
      assert.strictEqual(Prometheus.samples(families, "tollgate_budget_limit_usd", { scope: "global", window: "daily", key: "" })[0]?.value, 5)

      const routes = yield* getJson(`${t.adminUrl}/debug/routes`)
      assert.strictEqual(routes.json.defaultProvider, sim)
      assert.deepStrictEqual(routes.json.routes.map((r: { name: string }) => r.name), ["main"])
      assert.deepStrictEqual(routes.json.providers, [{ name: sim, kind: "mock", baseUrl: null, keyMissing: null }])

      const status = yield* getJson(`${t.adminUrl}/debug/status`)
      assert.match(status.json.version, /^\d+\.\d+\.\d+/)
      assert.isAtLeast(status.json.uptimeSeconds, 0)
      assert.deepStrictEqual(status.json.breakers.map((b: { target: string; state: string }) => [b.target, b.state]), [[`${sim}/gpt-4o-mini`, "closed"]])
      assert.strictEqual(status.json.ledger.status, "ok")
      assert.strictEqual(status.json.ledger.written, 3)
      assert.strictEqual(status.json.ledger.queueDepth, 0)
      assert.deepStrictEqual(status.json.reload, { applied: 0, rejected: 0, lastError: null, watching: false })

      const unknown = yield* getJson(`${t.adminUrl}/admin/nothing`)
      assert.strictEqual(unknown.status, 404)
      assert.include(unknown.json.error.message, "GET /metrics")
      const wrongMethod = yield* get(`${t.adminUrl}/admin/reload`)
      assert.strictEqual(wrongMethod.status, 405)
      const noFile = yield* getJson(`${t.adminUrl}/admin/reload`, { method: "POST" })
      assert.strictEqual(noFile.status, 409)
      assert.strictEqual(noFile.json.status, "no_config_file")
    }))

  it.scopedLive("POST /admin/reload applies a changed file and refuses a broken one", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-admin-"))
      const file = path.join(dir, "tollgate.yaml")
      const yaml = (routes: string) =>
        `server: { port: 0, admin: { port: 0 } }\ndatabase: { path: ${JSON.stringify(path.join(dir, "ledger.db"))} }\nproviders:\n  ${sim}: { kind: mock }\nroutes:\n${routes}`
      fs.writeFileSync(file, yaml(`  - { name: one, targets: [ { provider: ${sim}, model: a } ] }\n`))
      const context = yield* Layer.build(stackOf(Config.layer({ configPath: file })))
      const adminUrl = Admin.urlOf(Option.getOrThrow(Context.get(context, Admin.AdminServer).address))

      assert.deepStrictEqual((yield* getJson(`${adminUrl}/admin/reload`, { method: "POST" })).json, { status: "unchanged", source: file })
      fs.writeFileSync(file, yaml(`  - { name: one, targets: [ { provider: ${sim}, model: a } ] }\n  - { name: two, targets: [ { provider: ${sim}, model: b } ] }\n`))
      const applied = yield* getJson(`${adminUrl}/admin/reload`, { method: "POST" })
      assert.strictEqual(applied.status, 200)
      assert.deepStrictEqual(applied.json, { status: "applied", source: file, restartNeededFor: [] })
      const routes = yield* getJson(`${adminUrl}/debug/routes`)
      assert.deepStrictEqual(routes.json.routes.map((r: { name: string }) => r.name), ["one", "two"])

      fs.writeFileSync(file, yaml(`  - { name: one, targets: [ { provider: nowhere } ] }\n`))
      const refused = yield* getJson(`${adminUrl}/admin/reload`, { method: "POST" })
      assert.strictEqual(refused.status, 422)
      assert.strictEqual(refused.json.status, "refused")
      assert.include(refused.json.error, "nowhere")
      const status = yield* getJson(`${adminUrl}/debug/status`)
      assert.strictEqual(status.json.reload.applied, 1)
      assert.strictEqual(status.json.reload.rejected, 1)
    }))

  it.scopedLive("off loopback, the admin listener needs admin keys: start is refused with the reason", () =>
    Effect.gen(function*() {
      const config = Config.layerFrom({
        server: { port: 0, admin: { host: "0.0.0.0", port: 0 } },
        providers: { sim: { kind: "mock" } },
        database: { path: Tollgate.tempDbPath() }
      })
      const exit = yield* Effect.exit(Layer.build(stackOf(config)))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      const failure = error === undefined ? undefined : JSON.stringify(error)
      assert.include(failure, "ConfigError")
      assert.include(failure, "refusing to serve the admin listener on 0.0.0.0 without server.adminKeys")
    }))

  it.scopedLive("with admin keys, an admin request without one is 401; with one it is answered", () =>
    Effect.gen(function*() {
      const t = yield* serve({ server: { adminKeys: ["s3cret"] }, providers: { [unique("sim")]: { kind: "mock" } } })
      const refused = yield* getJson(`${t.adminUrl}/debug/status`)
      assert.strictEqual(refused.status, 401)
      assert.strictEqual(refused.json.error.code, "unauthorized")
      assert.notInclude(refused.body, "at ")
      assert.strictEqual((yield* get(`${t.adminUrl}/metrics`, { headers: { authorization: "Bearer s3cret" } })).status, 200)
    }))

  it.scopedLive("an admin request makes no span, whatever tracer the app runs with (a scrape is not traced)", () =>
    Effect.gen(function*() {
      const native = yield* Effect.tracer
      const names: Array<string> = []
      const recording = Tracer.make({
        span: (name, ...rest) => {
          names.push(name)
          return native.span(name, ...rest)
        },
        context: (f, fiber) => native.context(f, fiber)
      })
      const t = yield* serve({ providers: { [unique("sim")]: { kind: "mock" } } }).pipe(Effect.withTracer(recording))
      assert.strictEqual((yield* get(`${t.adminUrl}/metrics`)).status, 200)
      assert.strictEqual((yield* get(`${t.adminUrl}/debug/status`)).status, 200)
      // The tracer is the one the listener runs with: its SQL is traced, its requests are not.
      assert.include(names, "sql.execute")
      assert.deepStrictEqual(names.filter((name) => name.startsWith("http")), [])
    }))

  it.scopedLive("admin: false serves no admin listener, and counts no metric series (nothing could read them)", () =>
    Effect.gen(function*() {
      const sim = unique("sim")
      const config = Config.layerFrom({ server: { port: 0, admin: false }, providers: { [sim]: { kind: "mock" } }, database: { path: Tollgate.tempDbPath() } })
      const context = yield* Layer.build(stackOf(config))
      assert.isTrue(Option.isNone(Context.get(context, Admin.AdminServer).address))
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      assert.strictEqual((yield* chat(`http://127.0.0.1:${address.port}`, "gpt-4o-mini")).status, 200)
      yield* Effect.provide(Tollgate.awaitRows(1), context as Context.Context<Ledger>)
      const families = Prometheus.parse(PrometheusText.render(yield* Metric.snapshot))
      assert.deepStrictEqual(Prometheus.samples(families, "tollgate_requests_total", { provider: sim }), [])
      assert.strictEqual(Context.get(context, Metrics.Metrics).booked(), 1)
    }))
})

describe("GET /stats on the public listener", () => {
  it.scopedLive("the summary, behind server.apiKeys", () =>
    Effect.gen(function*() {
      const t = yield* serve({ server: { apiKeys: ["k1"] }, providers: { [unique("sim")]: { kind: "mock" } } })
      const auth = { authorization: "Bearer k1" }
      for (let i = 0; i < 2; i++) assert.strictEqual((yield* chat(t.baseUrl, "gpt-4o-mini", auth)).status, 200)
      yield* Effect.provide(Tollgate.awaitRows(2), t.context as Context.Context<Ledger>)
      assert.strictEqual((yield* get(`${t.baseUrl}/stats`)).status, 401)
      const stats = yield* getJson(`${t.baseUrl}/stats?since=all`, { headers: auth })
      assert.strictEqual(stats.status, 200)
      assert.strictEqual(stats.json.by, null)
      assert.strictEqual(stats.json.rows[0].group, "all")
      assert.strictEqual(stats.json.rows[0].requests, 2)
      const bad = yield* getJson(`${t.baseUrl}/stats?by=colour`, { headers: auth })
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.json.error.code, "invalid_by")
    }))
})
