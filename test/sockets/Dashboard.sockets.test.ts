/**
 * The web dashboard's endpoints over real sockets (127.0.0.1, port 0), without a browser (that is
 * `test/browser/`): the page and its files with their headers, `/admin/series` against
 * `/admin/stats` and its refusals, the event stream's first events against the ledger, the bound
 * on open streams and its release when clients go, and the `/?key=` cookie, which opens GETs only.
 */
import { HttpServer } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schedule } from "effect"
import * as Admin from "../../src/Admin.js"
import * as Events from "../../src/Admin/Events.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import type * as Telemetry from "../../src/Telemetry.js"
import * as Tollgate from "../support/Tollgate.js"

type Ledger = SqlClient.SqlClient | Telemetry.Telemetry

const serve = (input: Config.FileConfigInput) =>
  Effect.gen(function*() {
    const config = Config.layerFrom({ ...input, server: { ...input.server, port: 0, admin: { port: 0 } }, database: { path: Tollgate.tempDbPath() } })
    const context = yield* Layer.build(Admin.layerWithoutDependencies.pipe(Layer.provideMerge(Http.layer), Layer.provide(config)))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    return {
      baseUrl: `http://127.0.0.1:${address.port}`,
      adminUrl: Admin.urlOf(Option.getOrThrow(Context.get(context, Admin.AdminServer).address)),
      ledger: context as Context.Context<Ledger>
    }
  })

const CONFIG: Config.FileConfigInput = {
  providers: { sim: { kind: "mock" } },
  pricing: { "gpt-4o-mini": { input: 1, output: 2 } }
}

const chat = (baseUrl: string) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] })
    }).then((r) => r.text().then(() => r.status))
  )

const get = (url: string, init: RequestInit = {}) =>
  Effect.promise(() =>
    fetch(url, { redirect: "manual", ...init }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.text() }))
  )

/** An open event stream, aborted with the scope; `next` reads up to the next complete event. */
const openEvents = (url: string, init: RequestInit = {}) =>
  Effect.gen(function*() {
    const abort = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => abort.abort()))
    const response = yield* Effect.promise(() => fetch(url, { ...init, signal: abort.signal }))
    if (response.status !== 200 || response.body === null) return { status: response.status, abort, next: Effect.die("no stream") }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ""
    const next: Effect.Effect<{ name: string; data: string }> = Effect.promise(async () => {
      for (;;) {
        const end = buffer.indexOf("\n\n")
        if (end >= 0) {
          const text = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const name = /^event: (.*)$/m.exec(text)?.[1]
          const data = /^data: (.*)$/m.exec(text)?.[1]
          if (name !== undefined && data !== undefined) return { name, data }
          continue
        }
        const chunk = await reader.read()
        if (chunk.done) throw new Error(`the stream ended; held: ${buffer}`)
        buffer += chunk.value
      }
    })
    return { status: response.status, abort, next }
  })

describe("the web dashboard's endpoints", () => {
  it.scopedLive("serve the page and its files, the series as /admin/stats counts it, and refuse bad windows", () =>
    Effect.gen(function*() {
      const t = yield* serve(CONFIG)
      for (let i = 0; i < 4; i++) assert.strictEqual(yield* chat(t.baseUrl), 200)
      yield* Effect.provide(Tollgate.awaitRows(4), t.ledger)

      const page = yield* get(`${t.adminUrl}/`)
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.include(page.headers.get("content-security-policy") ?? "", "script-src 'self'")
      for (const src of ["/assets/uPlot.iife.min.js", "/assets/dashboard.js", "/assets/dashboard.css", "/assets/uPlot.min.css"]) {
        assert.include(page.body, src)
        const asset = yield* get(`${t.adminUrl}${src}`)
        assert.strictEqual(asset.status, 200, src)
        assert.isAbove(asset.body.length, 500, src)
      }
      assert.match((yield* get(`${t.adminUrl}/assets/uPlot.iife.min.js`)).headers.get("content-type") ?? "", /^text\/javascript/)
      assert.strictEqual((yield* get(`${t.adminUrl}/assets/nothing.js`)).status, 404)
      assert.include((yield* get(`${t.adminUrl}/nowhere`)).body, "GET /admin/events")

      const series = JSON.parse((yield* get(`${t.adminUrl}/admin/series?since=1h&step=minute`)).body)
      const stats = JSON.parse((yield* get(`${t.adminUrl}/admin/stats?since=1h`)).body)
      assert.strictEqual(series.step, "minute")
      assert.strictEqual(series.totals.requests, 4)
      // The same summary; the series adds time-to-first-byte percentiles, which /admin/stats leaves out (null).
      const { p50TtfbMs, p95TtfbMs, ...totals } = series.totals
      assert.deepStrictEqual(totals, (({ group: _, p50TtfbMs: _50, p95TtfbMs: _95, ...row }) => row)(stats.rows[0]))
      assert.isAbove(p95TtfbMs, 0)
      assert.isAtMost(p50TtfbMs, p95TtfbMs)
      assert.isNull(stats.rows[0].p95TtfbMs)
      assert.strictEqual(series.buckets.reduce((n: number, b: { requests: number }) => n + b.requests, 0), 4)
      assert.closeTo(series.buckets.reduce((n: number, b: { costUsd: number }) => n + b.costUsd, 0), stats.rows[0].costUsd, 1e-9)
      assert.deepStrictEqual(series.breakdowns.model.map((r: { group: string }) => r.group), ["gpt-4o-mini"])
      assert.deepStrictEqual(series.breakdowns.session.map((r: { group: string }) => r.group), ["(none)"])
      // Without a step, one that suits the window.
      assert.strictEqual(JSON.parse((yield* get(`${t.adminUrl}/admin/series?since=7d`)).body).step, "day")

      const badStep = yield* get(`${t.adminUrl}/admin/series?step=fortnight`)
      assert.strictEqual(badStep.status, 400)
      assert.strictEqual(JSON.parse(badStep.body).error.code, "invalid_step")
      const tooMany = yield* get(`${t.adminUrl}/admin/series?since=30d&step=minute`)
      assert.strictEqual(JSON.parse(tooMany.body).error.code, "invalid_step")
      assert.strictEqual(JSON.parse((yield* get(`${t.adminUrl}/admin/series?since=soon`)).body).error.code, "invalid_since")
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/events?since=soon`)).status, 400)
    }))

  it.scopedLive("the event stream sends the charts and the ledger's tail, and at most MAX_STREAMS stay open", () =>
    Effect.gen(function*() {
      const t = yield* serve(CONFIG)
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* chat(t.baseUrl), 200)
      const rows = yield* Effect.provide(Tollgate.awaitRows(3), t.ledger)

      const events = yield* openEvents(`${t.adminUrl}/admin/events?since=1h`)
      assert.strictEqual(events.status, 200)
      const first = yield* events.next
      const second = yield* events.next
      const byName = Object.fromEntries([first, second].map((e) => [e.name, JSON.parse(e.data)]))
      assert.strictEqual(byName.series.totals.requests, 3)
      assert.deepStrictEqual(byName.live.tail.map((r: { requestId: string }) => r.requestId), rows.map((r) => r.request_id).reverse())
      assert.strictEqual(byName.live.ledger.written, 3)
      assert.deepStrictEqual(byName.live.breakers.map((b: { target: string }) => b.target), ["sim/gpt-4o-mini"])
      // Nothing in a tail row can hold what was said.
      assert.notInclude(second.data + first.data, "hello")

      // A new request reaches the open stream's tail.
      assert.strictEqual(yield* chat(t.baseUrl), 200)
      const next = yield* Effect.iterate({ seen: 0 }, {
        while: (s) => s.seen < 4,
        body: () => Effect.map(events.next, (e) => ({ seen: e.name === "live" ? JSON.parse(e.data).tail.length : 0 }))
      })
      assert.strictEqual(next.seen, 4)

      // The bound: MAX_STREAMS open (this one included), the next refused; once they go, a new one opens.
      const others = yield* Effect.forEach(Array.from({ length: Events.MAX_STREAMS - 1 }), () =>
        Effect.flatMap(openEvents(`${t.adminUrl}/admin/events?since=1h`), (s) => Effect.as(s.next, s)))
      assert.isTrue(others.every((s) => s.status === 200))
      const refused = yield* get(`${t.adminUrl}/admin/events`)
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(JSON.parse(refused.body).error.code, "too_many_streams")
      events.abort.abort()
      for (const s of others) s.abort.abort()
      // The server hears each close on its own time: ask again until it has (bounded).
      const reopened = yield* openEvents(`${t.adminUrl}/admin/events`).pipe(
        Effect.filterOrFail((s) => s.status === 200, () => "still full"),
        Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 100 })
      )
      assert.include(["series", "live"], (yield* reopened.next).name)
    }))

  it.scopedLive("with admin keys, /?key= sets a cookie that opens GETs only", () =>
    Effect.gen(function*() {
      const key = "dash-key-1"
      const t = yield* serve({ ...CONFIG, server: { adminKeys: [key] } })
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/series`)).status, 401)
      const noKey = yield* get(`${t.adminUrl}/`)
      assert.strictEqual(noKey.status, 401)
      assert.include(noKey.body, "/?key=")
      assert.strictEqual((yield* get(`${t.adminUrl}/?key=wrong`)).status, 401)

      const signIn = yield* get(`${t.adminUrl}/?key=${key}`)
      assert.strictEqual(signIn.status, 303)
      assert.strictEqual(signIn.headers.get("location"), "/")
      const setCookie = signIn.headers.get("set-cookie") ?? ""
      assert.match(setCookie, /HttpOnly/i)
      assert.match(setCookie, /SameSite=Strict/i)
      assert.notInclude(setCookie, key)
      const cookie = setCookie.split(";")[0]!
      assert.strictEqual((yield* get(`${t.adminUrl}/`, { headers: { cookie } })).status, 200)
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/series`, { headers: { cookie } })).status, 200)
      assert.strictEqual((yield* openEvents(`${t.adminUrl}/admin/events`, { headers: { cookie } })).status, 200)
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/reload`, { method: "POST", headers: { cookie } })).status, 401)
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${key}` } })).status, 409)
      assert.strictEqual((yield* get(`${t.adminUrl}/admin/stats`, { headers: { cookie: "tollgate_admin=forged" } })).status, 401)
    }))
})
