/**
 * `tollgate prices update|show`, `reprice` and `simulate`, run as the built executable
 * (dist/bin.js) with its own tollgate home. Updates are fetched from a local server on 127.0.0.1:
 * this machine has no internet, and the tests never need it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import { tempDbPath } from "../support/Tollgate.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

const tempHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-home-"))

/** Runs the CLI with `home` as its tollgate home; resolves with its exit code and output. */
const tollgate = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const { TOLLGATE_CONFIG: _config, TOLLGATE_PRICES_URL: _url, ...inherited } = process.env
    execFile(
      process.execPath,
      [BIN, ...args],
      // In the home, so no ./tollgate.yaml is found by accident.
      { cwd: home, env: { ...inherited, NO_COLOR: "1", TOLLGATE_HOME: home, ...env } },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    )
  })

/** A server on 127.0.0.1 answering every request with `status` and `body`; closed with the scope. */
const serve = (status: number, body: string) =>
  Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const server = http.createServer((_req, res) => {
        res.writeHead(status, { "content-type": "application/json" })
        res.end(body)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.json`))

/** A port nothing listens on: one the system gave a server that is closed again. */
const closedPort = Effect.async<number>((resume) => {
  const server = http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

// A small but valid genai-prices data file: OpenAI's gpt-4o at prices the bundled data does not have.
const DATA = JSON.stringify([{
  id: "openai",
  name: "OpenAI",
  api_pattern: "https://api\\.openai\\.com",
  pricing_urls: ["https://openai.com/api/pricing/"],
  model_match: { starts_with: "gpt-" },
  models: [{ id: "gpt-4o", match: { or: [{ equals: "gpt-4o" }, { starts_with: "gpt-4o-20" }] }, prices: { input_mtok: 3, cache_read_mtok: 1.5, output_mtok: 12 } }]
}])

const updatedFile = (home: string) => path.join(home, "prices", "genai-prices.json")

describe("tollgate prices update", { timeout: 60_000 }, () => {
  it.scoped("a valid file is written whole, under the tollgate home, and used from then on", () =>
    Effect.gen(function*() {
      const home = tempHome()
      const before = yield* tollgate(home, ["prices", "show", "gpt-4o"])
      assert.strictEqual(before.code, 0, before.stderr)
      assert.include(before.stdout, "source: bundled genai-prices v")
      assert.match(before.stdout, /input\s+\$2\.50/)

      const url = yield* serve(200, DATA)
      const update = yield* tollgate(home, ["prices", "update", "--url", url])
      assert.strictEqual(update.code, 0, update.stderr)
      assert.include(update.stdout, "1 providers, 1 models")
      const written = JSON.parse(fs.readFileSync(updatedFile(home), "utf8"))
      assert.strictEqual(written.format, "tollgate-genai-prices/1")
      assert.strictEqual(written.url, url)
      assert.deepStrictEqual(written.providers, JSON.parse(DATA))
      // Renamed into place: no temporary file is left beside it.
      assert.deepStrictEqual(fs.readdirSync(path.join(home, "prices")), ["genai-prices.json"])

      const after = yield* tollgate(home, ["prices", "show", "gpt-4o-2024-08-06", "--json"])
      assert.strictEqual(after.code, 0, after.stderr)
      const shown = JSON.parse(after.stdout)
      assert.match(shown.data, /^updated genai-prices file of \d{4}-\d{2}-\d{2}$/)
      assert.deepInclude(shown, { pricedAs: "gpt-4o", origin: "data" })
      assert.deepStrictEqual(shown.price, { input: 3, cachedInput: 1.5, output: 12 })
    }))

  it.scoped("$TOLLGATE_PRICES_URL names the file when --url does not", () =>
    Effect.gen(function*() {
      const home = tempHome()
      const url = yield* serve(200, DATA)
      const update = yield* tollgate(home, ["prices", "update"], { TOLLGATE_PRICES_URL: url })
      assert.strictEqual(update.code, 0, update.stderr)
      assert.isTrue(fs.existsSync(updatedFile(home)))
    }))

  it.scoped("invalid data, an HTTP error, an unreachable server: a message, nothing written, the data in use stays", () =>
    Effect.gen(function*() {
      const home = tempHome()
      const good = yield* serve(200, DATA)
      assert.strictEqual((yield* tollgate(home, ["prices", "update", "--url", good])).code, 0)
      const kept = fs.readFileSync(updatedFile(home), "utf8")

      const notData = yield* serve(200, JSON.stringify([{ id: "openai", models: "none" }]))
      const invalid = yield* tollgate(home, ["prices", "update", "--url", notData])
      assert.notStrictEqual(invalid.code, 0)
      assert.include(invalid.stderr, "did not send genai-prices data")
      assert.include(invalid.stderr, "the price data in use is unchanged")

      const notJson = yield* serve(200, "<html>maintenance</html>")
      const html = yield* tollgate(home, ["prices", "update", "--url", notJson])
      assert.notStrictEqual(html.code, 0)
      assert.include(html.stderr, "did not send JSON")

      const failing = yield* serve(503, "{}")
      const unavailable = yield* tollgate(home, ["prices", "update", "--url", failing])
      assert.notStrictEqual(unavailable.code, 0)
      assert.include(unavailable.stderr, "answered HTTP 503")

      const port = yield* closedPort
      const offline = yield* tollgate(home, ["prices", "update", "--url", `http://127.0.0.1:${port}/data.json`])
      assert.notStrictEqual(offline.code, 0)
      assert.include(offline.stderr, "cannot reach")

      assert.strictEqual(fs.readFileSync(updatedFile(home), "utf8"), kept)
      assert.deepStrictEqual(fs.readdirSync(path.join(home, "prices")), ["genai-prices.json"])
    }))

  it.effect("a damaged updated file is left aside with a warning: the bundled data is used", () =>
    Effect.gen(function*() {
      const home = tempHome()
      fs.mkdirSync(path.join(home, "prices"))
      fs.writeFileSync(updatedFile(home), "{ not json")
      const shown = yield* tollgate(home, ["prices", "show", "gpt-4o"])
      assert.strictEqual(shown.code, 0, shown.stderr)
      assert.include(shown.stdout, "source: bundled genai-prices v")
      assert.include(shown.stdout + shown.stderr, "is not valid price data")
    }))
})

describe("tollgate prices show", { timeout: 60_000 }, () => {
  it.effect("rates with their fallbacks, tiers, the source and date; overrides from tollgate.yaml; unknown models fail", () =>
    Effect.gen(function*() {
      const home = tempHome()
      const gemini = yield* tollgate(home, ["prices", "show", "gemini-2.5-pro"])
      assert.strictEqual(gemini.code, 0, gemini.stderr)
      assert.match(gemini.stdout, /input\s+\$1\.25\s+\$2\.50/)
      assert.match(gemini.stdout, /cached input\s+\$0\.125\s+\$0\.25/)
      assert.include(gemini.stdout, "ABOVE 200,000 IN")
      assert.include(gemini.stdout, "https://")

      const config = path.join(home, "tollgate.yaml")
      fs.writeFileSync(config, "pricing:\n  house-model: { input: 0.015, output: 0.03 }\n")
      const house = yield* tollgate(home, ["prices", "show", "house-model", "--config", config])
      assert.strictEqual(house.code, 0, house.stderr)
      assert.include(house.stdout, "source: override in tollgate.yaml (pricing:)")
      assert.match(house.stdout, /input\s+\$0\.015/)
      assert.match(house.stdout, /cached input\s+\$0\.015 \(as input\)/)

      const missing = yield* tollgate(home, ["prices", "show", "mystery-model"])
      assert.notStrictEqual(missing.code, 0)
      assert.include(missing.stderr, `no price for model "mystery-model"`)
      assert.notInclude(missing.stdout + missing.stderr, "WARN")
    }))

  it.effect("--help describes every command and option", () =>
    Effect.gen(function*() {
      const home = tempHome()
      for (const [args, texts] of [
        [["prices", "update", "--help"], ["--url", "TOLLGATE_PRICES_URL", "--timeout", "tollgate home"]],
        [["prices", "show", "--help"], ["model", "--json", "--config", "tiers"]],
        [["reprice", "--help"], ["--since", "--dry-run", "--db", "--config", "--json"]],
        [["simulate", "--help"], ["--since", "--map", "FROM=TO", "--db", "nothing is sent"]]
      ] as const) {
        const help = yield* tollgate(home, args)
        assert.strictEqual(help.code, 0, help.stderr)
        for (const text of texts) assert.include(help.stdout, text, args.join(" "))
      }
    }))
})

// ---------------------------------------------------------------------------------------------

const TS = Date.parse("2026-12-01T12:00:00Z")

const row = (requestId: string, model: string, input: number, output: number, cost: number | null, extra: Partial<LedgerEvent> = {}): LedgerEvent => ({
  ts: TS,
  requestId,
  endpoint: "/v1/chat/completions",
  route: null,
  rule: "default",
  provider: "openai",
  requestedModel: model,
  servedModel: model,
  stream: false,
  status: 200,
  errorType: null,
  attempts: 1,
  failover: false,
  attemptErrors: null,
  skipped: null,
  cacheStatus: "off",
  inputTokens: input,
  outputTokens: output,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: null,
  reasoningTokens: 0,
  costUsd: cost,
  savedUsd: null,
  priced: cost !== null,
  usageSource: "reported",
  latencyMs: 10,
  ttfbMs: 2,
  aborted: false,
  clientHash: null,
  userAgent: "test",
  project: null,
  session: null,
  cascade: null,
  downgradedFrom: null,
  ...extra
})

/**
 * Five rows booked under older prices: gpt-4o at a stale price; a model that had no price (now in
 * tollgate.yaml); gpt-4o-mini at today's price; a cache hit whose saved amount is stale; and a
 * request the simulated provider served, booked at gpt-4o-mini's real price as before.
 */
const fixture = Effect.gen(function*() {
  const dbPath = tempDbPath()
  yield* Effect.gen(function*() {
    const telemetry = yield* Telemetry.Telemetry
    yield* telemetry.record(row("r_gpt4o", "gpt-4o", 10_000, 1_000, 0.01))
    yield* telemetry.record(row("r_house", "house-model", 1_000_000, 0, null))
    yield* telemetry.record(row("r_mini", "gpt-4o-mini", 10_000, 1_000, 0.0021))
    yield* telemetry.record(row("r_hit", "gpt-4o", 10_000, 1_000, 0, { cacheStatus: "hit", savedUsd: 0.01 }))
    yield* telemetry.record(row("r_sim", "gpt-4o-mini", 10_000, 1_000, 0.0021, { provider: "sim" }))
    yield* telemetry.record(row("r_failed", "gpt-4o", 0, 0, null, { status: 503, inputTokens: null, outputTokens: null, servedModel: null }))
  }).pipe(Effect.provide(Telemetry.layerWith({ linger: 0 }).pipe(Layer.provide(Store.layerAt(dbPath)))))
  const home = tempHome()
  const config = path.join(home, "tollgate.yaml")
  fs.writeFileSync(config, "providers:\n  openai: { kind: openai, baseUrl: 'http://127.0.0.1:9/v1' }\n  sim: { kind: mock }\npricing:\n  house-model: { input: 1, output: 4 }\n")
  return { dbPath, home, config }
})

const costs = (dbPath: string, home: string, config: string) =>
  Effect.map(tollgate(home, ["export", "--format", "jsonl", "--since", "all", "--db", dbPath, "--config", config]), (r) => {
    assert.strictEqual(r.code, 0, r.stderr)
    return Object.fromEntries(
      r.stdout.trim().split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)
        .map((x) => [x.request_id, [x.cost_usd, x.priced, x.saved_usd]])
    )
  })

describe("tollgate reprice", { timeout: 60_000 }, () => {
  it.effect("recomputes cost, priced and saved from stored usage at today's prices; --dry-run writes nothing", () =>
    Effect.gen(function*() {
      const { config, dbPath, home } = yield* fixture
      const original = yield* costs(dbPath, home, config)

      const dry = yield* tollgate(home, ["reprice", "--since", "all", "--dry-run", "--json", "--db", dbPath, "--config", config])
      assert.strictEqual(dry.code, 0, dry.stderr)
      const planned = JSON.parse(dry.stdout)
      assert.deepInclude(planned, {
        examined: 5,
        changed: 4,
        nowPriced: 1,
        nowUnpriced: 0,
        skippedCascades: 0,
        // 0.01 + 0.0021 + 0.0021 booked; today 0.035 (gpt-4o: 10k x $2.50 + 1k x $10 per 1M)
        // + $1 (house-model: 1M x $1) + 0.0021 (gpt-4o-mini) + $0 (hit) + $0 (simulated provider).
        oldTotalUsd: 0.0142,
        newTotalUsd: 1.0371,
        dryRun: true
      })
      assert.deepStrictEqual(yield* costs(dbPath, home, config), original, "a dry run writes nothing")

      const text = yield* tollgate(home, ["reprice", "--since", "all", "--dry-run", "--db", dbPath, "--config", config])
      assert.include(text.stdout, "changed: 4 (1 priced now that were not)")
      assert.include(text.stdout, "total: $0.0142 -> $1.04 (+$1.02)")
      assert.match(text.stdout, /house-model\s+1\s+\$0\s+\$1\.00\s+\+\$1\.00/)
      assert.include(text.stdout, "dry run: nothing was written")

      const run = yield* tollgate(home, ["reprice", "--since", "all", "--db", dbPath, "--config", config])
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stdout, "written: 4 row(s)")
      const after = yield* costs(dbPath, home, config)
      assert.deepStrictEqual(after.r_gpt4o, [0.035, 1, null])
      assert.deepStrictEqual(after.r_house, [1, 1, null])
      assert.deepStrictEqual(after.r_mini, original.r_mini)
      assert.deepStrictEqual(after.r_hit, [0, 1, 0.035])
      assert.deepStrictEqual(after.r_sim, [0, 1, null])
      assert.deepStrictEqual(after.r_failed, original.r_failed)

      const again = yield* tollgate(home, ["reprice", "--since", "all", "--json", "--db", dbPath, "--config", config])
      assert.deepInclude(JSON.parse(again.stdout), { changed: 0, oldTotalUsd: 1.0371, newTotalUsd: 1.0371 })
    }))
})

describe("tollgate simulate", { timeout: 60_000 }, () => {
  it.effect("prices the same traffic on the mapped models; hits stay free; nothing is written", () =>
    Effect.gen(function*() {
      const { config, dbPath, home } = yield* fixture
      const original = yield* costs(dbPath, home, config)
      const result = yield* tollgate(home, ["simulate", "--since", "all", "--map", "gpt-4o=gpt-4o-mini", "--json", "--db", dbPath, "--config", config])
      assert.strictEqual(result.code, 0, result.stderr)
      const s = JSON.parse(result.stdout)
      assert.deepStrictEqual(s.map, { "gpt-4o": "gpt-4o-mini" })
      assert.deepStrictEqual(
        s.models.map((m: Record<string, unknown>) => [m.model, m.as, m.requests, m.storedUsd, m.currentUsd, m.simulatedUsd]),
        [
          ["house-model", "house-model", 1, 0, 1, 1],
          ["gpt-4o-mini", "gpt-4o-mini", 2, 0.0042, 0.0042, 0.0042],
          ["gpt-4o", "gpt-4o-mini", 1, 0.01, 0.035, 0.0021]
        ]
      )
      assert.deepInclude(s, { currentUsd: 1.0392, simulatedUsd: 1.0063, storedUsd: 0.0142, unpriced: 0, free: 1 })
      assert.deepStrictEqual(yield* costs(dbPath, home, config), original, "simulate writes nothing")

      const text = yield* tollgate(home, ["simulate", "--since", "all", "--map", "gpt-4o=gpt-4o-mini", "--map", "house-model=gpt-4o", "--db", dbPath, "--config", config])
      assert.strictEqual(text.code, 0, text.stderr)
      assert.match(text.stdout, /gpt-4o\s+gpt-4o-mini\s+1\s+10,000\s+1,000\s+\$0\.01\s+\$0\.035\s+\$0\.0021\s+-\$0\.0329/)
      assert.match(text.stdout, /house-model\s+gpt-4o\s+1\s+1,000,000\s+0\s+\$0\s+\$1\.00\s+\$2\.50\s+\+\$1\.50/)
      assert.include(text.stdout, "1 cache hit(s) and shared answer(s)")
    }))
})
