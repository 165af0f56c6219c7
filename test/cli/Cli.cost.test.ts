/**
 * `tollgate cost explain` and the unpriced part of `tollgate stats`, run in-process through
 * `Cli.main` (the same program `dist/bin.js` runs) against a ledger seeded through the writer.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cli from "../../src/Cli.js"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import { fromAnthropic, type Usage } from "../../src/Domain/Usage.js"
import * as Pricing from "../../src/Pricing.js"
import * as Money from "../../src/Domain/Money.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"
import { tempDbPath } from "../support/Tollgate.js"

const table = Pricing.make({})

const event = (requestId: string, model: string, usage: Usage | undefined, status = 200): LedgerEvent => {
  const cost = usage === undefined ? null : table.costOf(model, usage)
  return {
    ts: 1_750_000_000_000,
    requestId,
    endpoint: "/v1/messages",
    route: null,
    rule: "default",
    provider: "claude",
    requestedModel: model,
    servedModel: usage === undefined ? null : model,
    stream: true,
    status,
    errorType: status === 200 ? null : "upstream_unavailable",
    attempts: 1,
    failover: false,
    attemptErrors: null,
    skipped: null,
    cacheStatus: "off",
    inputTokens: usage?.inputTokens ?? null,
    outputTokens: usage?.outputTokens ?? null,
    cachedInputTokens: usage?.cachedInputTokens ?? null,
    cacheWriteTokens: usage?.cacheWriteTokens ?? null,
    cacheWrite1hTokens: usage?.cacheWrite1hTokens ?? null,
    reasoningTokens: usage?.reasoningTokens ?? null,
    costUsd: cost,
    savedUsd: null,
    priced: cost !== null,
    usageSource: usage?.source ?? null,
    latencyMs: 10,
    ttfbMs: 2,
    aborted: false,
    clientHash: null,
    userAgent: "test",
    project: null,
    session: null,
    cascade: null,
    downgradedFrom: null
  }
}

const claudeUsage = fromAnthropic({
  input_tokens: 1_200,
  cache_read_input_tokens: 30_000,
  cache_creation_input_tokens: 6_000,
  cache_creation: { ephemeral_5m_input_tokens: 4_000, ephemeral_1h_input_tokens: 2_000 },
  output_tokens: 900
})!
const unknownUsage: Usage = { inputTokens: 700, outputTokens: 70, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" }

/** A ledger with three rows (Claude with cache reads and both write TTLs, an unknown model twice, a failure). */
const seed = Effect.gen(function*() {
  const dbPath = tempDbPath()
  yield* Effect.gen(function*() {
    const telemetry = yield* Telemetry.Telemetry
    yield* telemetry.record(event("req_claude", "claude-sonnet-4-5-20250929", claudeUsage))
    yield* telemetry.record(event("req_mystery_1", "mystery-model", unknownUsage))
    yield* telemetry.record(event("req_mystery_2", "mystery-model", unknownUsage))
    yield* telemetry.record(event("req_failed", "claude-sonnet-4-5", undefined, 503))
  }).pipe(Effect.provide(Telemetry.layerWith({ linger: 0 }).pipe(Layer.provide(Store.layerAt(dbPath)))))
  const configPath = path.join(path.dirname(dbPath), "tollgate.yaml")
  fs.writeFileSync(configPath, "providers:\n  sim: { kind: mock }\n")
  return { dbPath, configPath }
})

/** Runs the CLI in-process; collects what it prints. */
const tollgate = (...args: Array<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const console: Console.Console = {
      ...(yield* Effect.console),
      log: (...parts) => Effect.sync(() => void out.push(parts.join(" "))),
      error: (...parts) => Effect.sync(() => void err.push(parts.join(" ")))
    }
    const exit = yield* Cli.main(["node", "tollgate", ...args]).pipe(
      Effect.withConsole(console),
      Effect.provide(NodeContext.layer),
      Effect.exit
    )
    return { ok: Exit.isSuccess(exit), stdout: out.join("\n"), stderr: err.join("\n") }
  })

describe("tollgate cost explain", () => {
  it.live("prints every component at the resolved price, the total, the stored cost, the price's source and the data's version", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* seed
      const p = table.priceOf("claude-sonnet-4-5")!
      const resolved = table.resolve("claude-sonnet-4-5")!
      const expected = (1_200 * p.input + 30_000 * p.cachedInput! + 4_000 * p.cacheWrite5m! + 2_000 * p.cacheWrite1h! + 900 * p.output) / 1e6

      const json = yield* tollgate("cost", "explain", "req_claude", "--json", "--db", dbPath, "--config", configPath)
      assert.isTrue(json.ok, json.stderr)
      const explained = JSON.parse(json.stdout)
      assert.strictEqual(explained.model, "claude-sonnet-4-5-20250929")
      assert.strictEqual(explained.breakdown.pricedAs, "claude-sonnet-4-5")
      assert.strictEqual(explained.breakdown.source, resolved.source)
      assert.strictEqual(explained.breakdown.asOf, resolved.asOf)
      assert.strictEqual(explained.breakdown.origin, "data")
      assert.match(explained.priceData, /^bundled genai-prices v\d+\.\d+\.\d+ \(\d{4}-\d{2}-\d{2}\)$/)
      assert.deepStrictEqual(
        explained.breakdown.components.map((c: { name: string; tokens: number; rate: number }) => [c.name, c.tokens, c.rate]),
        [
          ["input", 1_200, p.input],
          ["cached input", 30_000, p.cachedInput],
          ["cache write 5m", 4_000, p.cacheWrite5m],
          ["cache write 1h", 2_000, p.cacheWrite1h],
          ["output", 900, p.output]
        ]
      )
      assert.closeTo(explained.breakdown.totalUsd, expected, 1e-12)
      assert.closeTo(explained.storedCostUsd, expected, 1e-12)

      const text = yield* tollgate("cost", "explain", "req_claude", "--db", dbPath, "--config", configPath)
      assert.isTrue(text.ok, text.stderr)
      assert.include(text.stdout, "priced as claude-sonnet-4-5 (anthropic)")
      assert.include(text.stdout, `${resolved.source}, as of ${resolved.asOf}`)
      assert.include(text.stdout, `from ${explained.priceData}`)
      assert.match(text.stdout, /cache write 1h\s+2,000\s+\$6\.00\s+\$0\.012\n/)
      assert.include(text.stdout, Money.usd(expected))
      assert.include(text.stdout, "(the same)")
    }))

  it.live("an unpriced model, a request without tokens, and an unknown id (non-zero exit)", () =>
    Effect.gen(function*() {
      const { configPath, dbPath } = yield* seed
      const mystery = yield* tollgate("cost", "explain", "req_mystery_1", "--db", dbPath, "--config", configPath)
      assert.isTrue(mystery.ok, mystery.stderr)
      assert.include(mystery.stdout, "mystery-model has no price")

      const failed = yield* tollgate("cost", "explain", "req_failed", "--db", dbPath, "--config", configPath)
      assert.isTrue(failed.ok, failed.stderr)
      assert.include(failed.stdout, "no tokens were recorded")

      const missing = yield* tollgate("cost", "explain", "req_nope", "--db", dbPath, "--config", configPath)
      assert.isFalse(missing.ok)
      assert.include(missing.stderr, `no request with id "req_nope"`)
    }))

  it.live("prices at today's config: an override shows beside the stored cost", () =>
    Effect.gen(function*() {
      const { dbPath } = yield* seed
      const configPath = path.join(path.dirname(dbPath), "override.yaml")
      fs.writeFileSync(configPath, "pricing:\n  claude-sonnet-4-5: { input: 1, cachedInput: 0.1, cacheWrite5m: 1.25, cacheWrite1h: 2, output: 5 }\n")
      const json = yield* tollgate("cost", "explain", "req_claude", "--json", "--db", dbPath, "--config", configPath)
      assert.isTrue(json.ok, json.stderr)
      const explained = JSON.parse(json.stdout)
      assert.strictEqual(explained.breakdown.origin, "config")
      assert.closeTo(explained.breakdown.totalUsd, (1_200 * 1 + 30_000 * 0.1 + 4_000 * 1.25 + 2_000 * 2 + 900 * 5) / 1e6, 1e-12)
      assert.notStrictEqual(explained.breakdown.totalUsd, explained.storedCostUsd)
    }))

  it.live("--help describes the command, its argument and every option", () =>
    Effect.gen(function*() {
      const help = yield* tollgate("cost", "explain", "--help")
      assert.isTrue(help.ok, help.stderr)
      for (const text of ["request-id", "x-tollgate-request-id", "--json", "--db", "--config", "tokens x price"]) {
        assert.include(help.stdout, text)
      }
    }))
})

describe("tollgate stats", () => {
  it.live("lists unpriced requests separately, per model, with their tokens", () =>
    Effect.gen(function*() {
      const { dbPath } = yield* seed
      const json = yield* tollgate("stats", "--json", "--since", "all", "--db", dbPath)
      assert.isTrue(json.ok, json.stderr)
      const stats = JSON.parse(json.stdout)
      assert.deepStrictEqual(stats.unpriced, [{ model: "mystery-model", requests: 2, inputTokens: 1_400, outputTokens: 140 }])
      assert.strictEqual(stats.rows[0].unpriced, 2)
      const text = yield* tollgate("stats", "--since", "all", "--db", dbPath)
      assert.match(text.stdout, /UNPRICED MODEL[\s\S]*mystery-model\s+2\s+1,400\s+140/)
    }))
})
