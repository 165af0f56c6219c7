/**
 * The web dashboard in a real headless browser: Debian's `chromium` driven by `playwright-core`,
 * against tollgate (both listeners on 127.0.0.1, port 0) on its built-in simulated provider. The
 * page loads with no console error; after N requests its charts, summary and breakdown hold what
 * the ledger holds; a new request shows in the live tail within a second; the keyboard reaches
 * its controls; admin keys let a browser in through `/?key=` without opening POSTs. Screenshots
 * (light and dark) are kept in `test-artifacts/` (not committed).
 *
 * Every wait is on the page's state or the writer's count, never on time. Skipped, saying why,
 * where /usr/bin/chromium is missing (`.ci/run` installs it).
 */
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium, type Browser, type Page } from "playwright-core"
import * as Admin from "../../src/Admin.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import type * as Telemetry from "../../src/Telemetry.js"
import * as Tollgate from "../support/Tollgate.js"

const CHROMIUM = "/usr/bin/chromium"
const missing = fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it when missing)`
const ARTIFACTS = path.join(import.meta.dirname, "..", "..", "test-artifacts")

type Ledger = SqlClient.SqlClient | Telemetry.Telemetry

/** tollgate with its admin listener, both on port 0, a fresh ledger, in the test's scope. */
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

/** A page of a browser closed with the scope, with the console's errors and the page's uncaught exceptions collected. */
const browse = Effect.gen(function*() {
  const browser = yield* Effect.acquireRelease(
    Effect.promise((): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM })),
    (b) => Effect.promise(() => b.close())
  )
  const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1440, height: 900 } }))
  const errors: Array<string> = []
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`)
  })
  page.on("pageerror", (error) => errors.push(`page: ${error.message}`))
  return { page, errors }
})

const chat = (baseUrl: string, model: string, headers: Record<string, string> = {}) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] })
    }).then(async (r) => {
      await r.text()
      return { status: r.status, requestId: r.headers.get("x-tollgate-request-id") }
    })
  )

const onPage = <A>(run: (page: Page) => Promise<A>) => (page: Page) => Effect.promise(() => run(page))

const CONFIG: Config.FileConfigInput = {
  providers: { sim: { kind: "mock" } },
  routes: [{ name: "main", match: { model: "fast" }, targets: [{ provider: "sim", model: "gpt-4o-mini" }] }],
  pricing: { "gpt-4o-mini": { input: 1, output: 2 }, "gpt-4o": { input: 5, output: 15 } },
  budget: { enabled: true, limits: [{ window: "daily", usd: 5 }] }
}

describe.skipIf(missing !== undefined)(`the web dashboard in chromium${missing === undefined ? "" : ` (skipped: ${missing})`}`, () => {
  it.scopedLive("loads cleanly, charts what the ledger holds, tails a new request within a second", () =>
    Effect.gen(function*() {
      const t = yield* serve(CONFIG)
      // Two models, two routes, two projects: N requests.
      const N = 12
      for (let i = 0; i < N; i++) {
        const sent = yield* chat(t.baseUrl, i % 3 === 0 ? "gpt-4o" : "fast", { "x-tollgate-project": i % 2 === 0 ? "alpha" : "beta" })
        assert.strictEqual(sent.status, 200)
      }
      const rows = yield* Effect.provide(Tollgate.awaitRows(N), t.ledger)
      const { errors, page } = yield* browse

      yield* onPage((p) => p.goto(`${t.adminUrl}/`))(page)
      // The charts are drawn from the stream's first `series` event: wait for it to hold N requests.
      yield* onPage((p) => p.waitForFunction((n) => (globalThis as any).tollgateDashboard?.series?.totals?.requests === n, N))(page)
      const charts = yield* onPage((p) =>
        p.evaluate(() => {
          const charts = (globalThis as any).tollgateDashboard.charts
          return { requests: charts.requests.data as Array<Array<number | null>>, spend: charts.spend.data as Array<Array<number | null>> }
        })
      )(page)

      // Bucket by bucket (hours from the epoch, as the ledger's query cuts them), then in total.
      const perHour = new Map<number, { requests: number; cost: number }>()
      for (const row of rows) {
        const hour = Math.floor(Number(row.ts) / 3_600_000) * 3_600
        const held = perHour.get(hour) ?? { requests: 0, cost: 0 }
        perHour.set(hour, { requests: held.requests + 1, cost: held.cost + Number(row.cost_usd ?? 0) })
      }
      const [xs, requests] = charts.requests
      const [spendXs, cost] = charts.spend
      assert.deepStrictEqual(spendXs, xs)
      const charted = new Map<number, { requests: number; cost: number }>()
      xs!.forEach((x, i) => {
        if ((requests![i] ?? 0) > 0) charted.set(x!, { requests: requests![i]!, cost: cost![i]! })
      })
      assert.deepStrictEqual([...charted.keys()].sort(), [...perHour.keys()].sort())
      for (const [hour, held] of perHour) {
        assert.strictEqual(charted.get(hour)!.requests, held.requests)
        assert.closeTo(charted.get(hour)!.cost, held.cost, 1e-9)
      }
      assert.strictEqual(requests!.reduce((n: number, v) => n + (v ?? 0), 0), N)
      const sql = Context.get(t.ledger, SqlClient.SqlClient)
      const [ledger] = yield* sql<{ n: number; cost: number; gpt4o: number }>`
        SELECT COUNT(*) AS n, SUM(cost_usd) AS cost, SUM(CASE WHEN served_model = 'gpt-4o' THEN 1 ELSE 0 END) AS gpt4o FROM requests`
      assert.strictEqual(ledger!.n, N)
      assert.closeTo(cost!.reduce((n: number, v) => n + (v ?? 0), 0), ledger!.cost, 1e-9)

      // The breakdown tables and the summary as a person reads them.
      const text = (selector: string) => onPage((p) => p.locator(selector).innerText())(page)
      const modelRow = yield* text(`[data-breakdown="model"] tr[data-group="gpt-4o"]`)
      assert.strictEqual(modelRow.split("\t")[1]?.trim(), String(ledger!.gpt4o))
      assert.include(yield* text(`[data-breakdown="project"] tbody`), "alpha")
      assert.include(yield* text(`[data-breakdown="route"] tbody`), "main")
      assert.include(yield* text("#summary"), `Requests\n${N}`)
      // The budget's gauge, with its limit.
      assert.include(yield* text("#budgets"), "of $5.00")
      assert.strictEqual(yield* onPage((p) => p.locator("#budgets [role=meter]").count())(page), 1)
      // A breaker per target called.
      assert.include(yield* text("#breakers tbody"), "sim/gpt-4o-mini")

      // The tail holds the N rows; one more request shows there within a second of its answer.
      yield* onPage((p) => p.waitForFunction((n) => (globalThis as any).document.querySelectorAll("#tail tr[data-request-id]").length === n, N))(page)
      const sent = yield* chat(t.baseUrl, "fast")
      const started = performance.now()
      yield* onPage((p) => p.waitForSelector(`#tail tr[data-request-id="${sent.requestId}"]`, { timeout: 1_000 }))(page)
      const tailedInMs = performance.now() - started
      assert.isBelow(tailedInMs, 1_000)
      assert.strictEqual(yield* onPage((p) => p.locator("#tail tbody tr").first().getAttribute("data-request-id"))(page), sent.requestId)

      // The keyboard reaches the skip link, then the window's choice, which a person can change.
      yield* onPage((p) => p.keyboard.press("Tab"))(page)
      assert.strictEqual(yield* onPage((p) => p.evaluate(() => (globalThis as any).document.activeElement?.className))(page), "skip")
      yield* onPage((p) => p.keyboard.press("Tab"))(page)
      assert.strictEqual(yield* onPage((p) => p.evaluate(() => (globalThis as any).document.activeElement?.id))(page), "window")
      yield* onPage((p) => p.selectOption("#window", "1h/minute"))(page)
      yield* onPage((p) => p.waitForFunction((n) => (globalThis as any).tollgateDashboard?.series?.step === "minute" && (globalThis as any).tollgateDashboard.series.totals?.requests === n, N + 1))(page)

      fs.mkdirSync(ARTIFACTS, { recursive: true })
      yield* onPage((p) => p.selectOption("#window", "24h/hour"))(page)
      yield* onPage((p) => p.waitForFunction(() => (globalThis as any).tollgateDashboard?.series?.step === "hour"))(page)
      yield* onPage((p) => p.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true }))(page)
      yield* onPage((p) => p.emulateMedia({ colorScheme: "dark" }))(page)
      yield* onPage((p) => p.screenshot({ path: path.join(ARTIFACTS, "dashboard-dark.png"), fullPage: true }))(page)
      assert.deepStrictEqual(errors, [])
    }))

  it.scopedLive("with admin keys: /?key= once lets the browser read, and POSTs still need the key", () =>
    Effect.gen(function*() {
      const t = yield* serve({ ...CONFIG, server: { adminKeys: ["sekret-admin-key"] } })
      assert.strictEqual((yield* chat(t.baseUrl, "fast")).status, 200)
      yield* Effect.provide(Tollgate.awaitRows(1), t.ledger)
      const { errors, page } = yield* browse

      const refused = yield* onPage((p) => p.goto(`${t.adminUrl}/`))(page)
      assert.strictEqual(refused?.status(), 401)
      assert.include(yield* onPage((p) => p.locator("h1").innerText())(page), "admin key needed")
      const wrong = yield* onPage((p) => p.goto(`${t.adminUrl}/?key=guess`))(page)
      assert.strictEqual(wrong?.status(), 401)

      yield* onPage((p) => p.goto(`${t.adminUrl}/?key=sekret-admin-key`))(page)
      // The key leaves the address bar; the page is the dashboard, fed by its stream.
      assert.strictEqual(new URL(page.url()).search, "")
      yield* onPage((p) => p.waitForFunction(() => (globalThis as any).tollgateDashboard?.series?.totals?.requests === 1))(page)
      const status = yield* onPage((p) =>
        p.evaluate(async () => {
          const read = await fetch("/admin/stats")
          const reload = await fetch("/admin/reload", { method: "POST" })
          return { read: read.status, reload: reload.status }
        })
      )(page)
      assert.deepStrictEqual(status, { read: 200, reload: 401 })
      // The 401 pages before the key are the console's only complaints.
      assert.deepStrictEqual(errors.filter((e) => !e.includes("401")), [])
    }))
})
