/**
 * Anomaly rules: each triggers on its scripted pattern and not on a normal one (the detector
 * takes the time as an argument); through the service on TestClock, each rule blocks one session
 * only, at the instant it should, until `unblock` or the end of its block.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, TestClock } from "effect"
import * as Budget from "../../src/Budget.js"
import { Detector } from "../../src/Budget/Anomalies.js"
import * as Control from "../../src/Budget/Control.js"
import * as Downgrade from "../../src/Budget/Downgrade.js"
import { Zone } from "../../src/Budget/Windows.js"
import { alertRows, budgetLayer, request, spend } from "../support/Budget.js"

const S = 1_000

describe("anomaly detector", () => {
  it("velocity: more than maxRequests in the window, not a steady rate under it", () => {
    const detector = new Detector({ velocity: { maxRequests: 5, window: 60 * S, action: "alert" } })
    // 4 per minute for 5 minutes: normal.
    for (let t = 0; t < 300 * S; t += 15 * S) assert.deepStrictEqual(detector.onRequest("k", "f", 0, t), [])
    // A burst of 6 within 10 s.
    const hits = [0, 1, 2, 3, 4, 5].map((i) => detector.onRequest("k", "f", 0, 400 * S + i * S))
    assert.deepStrictEqual(hits.slice(0, 5).map((h) => h.length), [0, 0, 0, 0, 0])
    assert.strictEqual(hits[5]![0]!.anomaly, "velocity")
    // Another key is not affected.
    assert.deepStrictEqual(detector.onRequest("other", "f", 0, 405 * S), [])
  })

  it("repetition: the same fingerprint more than maxRepeats times, not distinct requests", () => {
    const detector = new Detector({ repetition: { maxRepeats: 3, window: 60 * S, action: "block" } })
    for (let i = 0; i < 10; i++) assert.deepStrictEqual(detector.onRequest("k", `distinct-${i}`, 0, i * S), [])
    const counts = [0, 1, 2, 3].map((i) => detector.onRequest("k", "loop", 0, 20 * S + i * S).length)
    assert.deepStrictEqual(counts, [0, 0, 0, 1])
    // The same fingerprint spread wider than the window is fine.
    for (let i = 0; i < 5; i++) assert.deepStrictEqual(detector.onRequest("k2", "slow", 0, i * 61 * S), [])
  })

  it("token explosion: one request above maxUsd", () => {
    const detector = new Detector({ tokenExplosion: { maxUsd: 1, action: "alert", blockFor: 3_600_000 } })
    assert.deepStrictEqual(detector.onRequest("k", "f", 0.99, 0), [])
    assert.strictEqual(detector.onRequest("k", "f", 1.5, 0)[0]?.anomaly, "tokenExplosion")
  })

  it("cost acceleration: the last window spends factor x the one before; steady spend does not", () => {
    const detector = new Detector({ costAcceleration: { window: 60 * S, factor: 2, minUsd: 0.01, action: "alert" } })
    for (let t = 0; t < 300 * S; t += 10 * S) assert.deepStrictEqual(detector.onSpend("k", 0.1, t), [])
    let hit = false
    for (let t = 300 * S; t < 360 * S && !hit; t += 10 * S) hit = detector.onSpend("k", 0.5, t).length > 0
    assert.isTrue(hit)
  })

  it("prune forgets quiet keys", () => {
    const detector = new Detector({ velocity: { maxRequests: 5, window: 60 * S, action: "alert" } })
    detector.onRequest("k", "f", 0, 0)
    assert.strictEqual(detector.size, 1)
    detector.prune(61 * S)
    assert.strictEqual(detector.size, 0)
  })
})

describe("session kill switch", () => {
  const loop = { fingerprint: () => "same-body" }
  it.effect("a looping session is blocked (429 + Retry-After) until unblocked; other sessions are served", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      for (let i = 0; i < 3; i++) yield* spend({ session: "agent", ...loop })
      const blocked = yield* Effect.flip(budget.admit(request({ session: "agent", ...loop })))
      assert.strictEqual(blocked._tag, "SessionBlocked")
      // Any request of that session, not only the looping one.
      const other = yield* Effect.flip(budget.admit(request({ session: "agent" })))
      assert.strictEqual(other._tag === "SessionBlocked" ? other.retryAfterSeconds : -1, 300)
      yield* spend({ session: "someone-else", ...loop })
      // Unblocked from the CLI (another process): applied on the next refresh.
      yield* Control.unblock("agent")
      yield* TestClock.adjust("5 seconds")
      yield* spend({ session: "agent" })
      const rows = yield* alertRows
      assert.deepStrictEqual(rows.filter((r) => r.kind === "anomaly").map((r) => [r.anomaly, r.scope]), [["repetition", `session "agent"`]])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { repetition: { maxRepeats: 3, window: "5m", action: "block" } } }
    }))))

  it.effect("a block ends with its window", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.Budget
      for (let i = 0; i < 3; i++) yield* spend({ session: "s", ...loop })
      assert.isTrue(Either.isLeft(yield* Effect.either(budget.admit(request({ session: "s", ...loop })))))
      assert.deepStrictEqual((yield* budget.blocks).map((b) => b.session), ["s"])
      yield* TestClock.adjust("299 seconds")
      assert.isTrue(Either.isLeft(yield* Effect.either(budget.admit(request({ session: "s" })))))
      yield* TestClock.adjust("1 second")
      yield* spend({ session: "s" })
      assert.deepStrictEqual(yield* budget.blocks, [])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { repetition: { maxRepeats: 3, window: "5m", action: "block" } } }
    }))))

  it.effect("an alert-only rule raises an alert and serves", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 4; i++) yield* spend({ session: "s", ...loop })
      const rows = yield* alertRows
      assert.deepStrictEqual(rows.map((r) => r.anomaly), ["repetition"])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { repetition: { maxRepeats: 3, window: "5m" } } }
    }))))
})

/** The anomaly alerts stored so far, as [anomaly, scope]. */
const anomalyAlerts = Effect.map(alertRows, (rows) => rows.filter((r) => r.kind === "anomaly").map((r) => [r.anomaly, r.scope]))

/** A refused admission's SessionBlocked, as [anomaly, retryAfterSeconds]. */
const blockedBy = (overrides: Parameters<typeof request>[0]) =>
  Effect.gen(function*() {
    const budget = yield* Budget.Budget
    const refused = yield* Effect.flip(budget.admit(request(overrides)))
    return refused._tag === "SessionBlocked" ? [refused.anomaly, refused.retryAfterSeconds] : assert.fail(`expected SessionBlocked, got ${refused._tag}`)
  })

describe("each anomaly through the Budget service", () => {
  it.effect("velocity: the request past maxRequests in the window blocks its session for the window; a steady rate never does", () =>
    Effect.gen(function*() {
      // One request every 20 s: three in any minute, never more.
      for (let i = 0; i < 6; i++) {
        yield* spend({ session: "steady" })
        yield* TestClock.adjust("20 seconds")
      }
      assert.deepStrictEqual(yield* anomalyAlerts, [])
      for (let i = 0; i < 3; i++) yield* spend({ session: "burst" })
      assert.deepStrictEqual(yield* blockedBy({ session: "burst" }), ["velocity", 60])
      yield* spend({ session: "steady" })
      // Watched without a request (a refused request counts towards the rate too).
      const budget = yield* Budget.Budget
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual((yield* budget.blocks).map((b) => b.session), ["burst"])
      yield* TestClock.adjust("1 second")
      yield* spend({ session: "burst" })
      assert.deepStrictEqual(yield* anomalyAlerts, [["velocity", `session "burst"`]])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { velocity: { maxRequests: 3, window: "60s", action: "block" } } }
    }))))

  it.effect("cost acceleration: a minute that spends twice the one before blocks the session once settled; steady spend never does", () =>
    Effect.gen(function*() {
      // $0.01 every 10 s for three minutes: each minute spends what the one before did.
      for (let i = 0; i < 18; i++) {
        yield* spend({ session: "agent" })
        yield* TestClock.adjust("10 seconds")
      }
      assert.deepStrictEqual(yield* anomalyAlerts, [])
      // At 180 s, one $0.20 call: the last minute is $0.25 against $0.06 the minute before. It was
      // admitted (the rule looks at spend, known once settled); the session's next request is not.
      const spike = yield* spend({ session: "agent", maxOutputTokens: 20_000 })
      assert.closeTo(spike.reservedUsd, 0.2, 1e-12)
      assert.deepStrictEqual(yield* blockedBy({ session: "agent" }), ["costAcceleration", 60])
      yield* spend({ session: "another" })
      assert.deepStrictEqual(yield* anomalyAlerts, [["costAcceleration", `session "agent"`]])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { costAcceleration: { window: "60s", factor: 2, minUsd: 0.01, action: "block" } } }
    }))))

  it.effect("token explosion: one request whose worst case is above maxUsd is refused and blocks its session for blockFor", () =>
    Effect.gen(function*() {
      // $0.90 at most (90,000 output tokens at $10 per 1M): under the rule.
      yield* spend({ session: "big", maxOutputTokens: 90_000 })
      assert.deepStrictEqual(yield* anomalyAlerts, [])
      // $1.50 at most: refused, and the session with it, even for a cheap request.
      assert.deepStrictEqual(yield* blockedBy({ session: "big", maxOutputTokens: 150_000 }), ["tokenExplosion", 600])
      assert.deepStrictEqual(yield* blockedBy({ session: "big" }), ["tokenExplosion", 600])
      yield* spend({ session: "small" })
      yield* TestClock.adjust("10 minutes")
      yield* spend({ session: "big" })
      assert.deepStrictEqual(yield* anomalyAlerts, [["tokenExplosion", `session "big"`]])
    }).pipe(Effect.provide(budgetLayer({
      budget: { enabled: true, anomalies: { tokenExplosion: { maxUsd: 1, action: "block", blockFor: "10m" } } }
    }))))
})

describe("downgrade mapping", () => {
  it("built-in families, dated snapshots, custom entries first, nothing for unknown or cheapest models", () => {
    const lookup = Downgrade.make({ mapping: { "my-model": "my-small" }, builtIn: true })
    assert.strictEqual(lookup("gpt-5"), "gpt-5-mini")
    assert.strictEqual(lookup("gpt-4.1"), "gpt-4.1-mini")
    assert.strictEqual(lookup("gpt-4o-2024-08-06"), "gpt-4o-mini")
    assert.strictEqual(lookup("o3"), "o4-mini")
    assert.strictEqual(lookup("claude-opus-4-1-20250805"), "claude-sonnet-4-0")
    assert.strictEqual(lookup("claude-3-opus-20240229"), "claude-sonnet-4-0")
    assert.strictEqual(lookup("claude-sonnet-4-20250514"), "claude-3-5-haiku-latest")
    assert.strictEqual(lookup("my-model"), "my-small")
    assert.isUndefined(lookup("gpt-5-nano"))
    assert.isUndefined(lookup("llama-3"))
    assert.isUndefined(Downgrade.make({ mapping: {}, builtIn: false })("gpt-5"))
  })
})

describe("calendar windows", () => {
  it("a DST day in Paris is 23 hours long; a month ends at local midnight", () => {
    const zone = new Zone("Europe/Paris")
    const day = zone.bounds("daily", Date.UTC(2025, 2, 30, 12))
    assert.strictEqual(day.end - day.start, 23 * 3_600_000)
    assert.strictEqual(day.start, Date.UTC(2025, 2, 29, 23))
    const month = zone.bounds("monthly", Date.UTC(2025, 11, 31, 23, 30)) // already January in Paris
    assert.strictEqual(month.start, Date.UTC(2025, 11, 31, 23))
    assert.strictEqual(month.end, Date.UTC(2026, 0, 31, 23))
  })

  it("UTC's windows, computed without Intl, are those of an Intl zone with the same clock", () => {
    // `Etc/GMT` goes through Intl.DateTimeFormat; `UTC` and `Etc/UTC` through Date's UTC fields.
    const viaIntl = new Zone("Etc/GMT")
    const viaDate = [new Zone("UTC"), new Zone("Etc/UTC")]
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2100, 0, 1) }),
        fc.constantFrom("hourly" as const, "daily" as const, "monthly" as const),
        (at, window) => {
          const expected = viaIntl.bounds(window, at)
          for (const zone of viaDate) assert.deepStrictEqual(zone.bounds(window, at), expected)
        }
      ),
      { seed: 8, numRuns: 500 }
    )
    const day = new Zone("UTC").bounds("daily", Date.UTC(2024, 1, 29, 13, 5))
    assert.deepStrictEqual(day, { start: Date.UTC(2024, 1, 29), end: Date.UTC(2024, 2, 1) })
  })
})
