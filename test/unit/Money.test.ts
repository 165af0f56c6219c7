import { assert, describe, it } from "@effect/vitest"
import { usd as alertUsd } from "../../src/Budget/Alert.js"
import { payloadOf } from "../../src/Budget/Webhook.js"
import * as Money from "../../src/Domain/Money.js"

describe("Money.usd: amounts for people", () => {
  it("under $1: at least cents, three significant digits, no trailing zeros past the cents", () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [0, "$0"],
      [0.015, "$0.015"],
      [0.000084, "$0.000084"],
      [0.00008399999999999998, "$0.000084"],
      [0.5, "$0.50"],
      [0.01, "$0.01"],
      [0.0123456, "$0.0123"],
      [0.999, "$0.999"],
      [0.0531, "$0.0531"],
      [1e-10, "$0.0000000001"],
      [-0.25, "-$0.25"]
    ]
    for (const [value, text] of cases) assert.strictEqual(Money.usd(value), text, String(value))
  })

  it("$1 and more: cents and thousands separators", () => {
    assert.strictEqual(Money.usd(1), "$1.00")
    assert.strictEqual(Money.usd(12.3), "$12.30")
    assert.strictEqual(Money.usd(1234.567), "$1,234.57")
    assert.strictEqual(Money.usd(0.9999), "$1.00")
  })

  it("is what budget messages use: a $0.015 limit reads $0.015, not $0.01", () => {
    assert.strictEqual(alertUsd(0.015), "$0.015")
  })
})

describe("Money.json: amounts for programs", () => {
  it("rounds to 10 decimals, so float noise is gone", () => {
    assert.strictEqual(Money.json(0.00008399999999999998), 0.000084)
    assert.strictEqual(Money.json(0.1 + 0.2), 0.3)
    assert.strictEqual(JSON.stringify(Money.json(0.000028 * 3)), "0.000084")
    assert.strictEqual(Money.json(1e-11), 0)
    assert.isNull(Money.jsonOrNull(null))
  })

  it("webhook payloads carry rounded amounts", () => {
    const body = JSON.stringify(payloadOf({
      ts: 0,
      kind: "threshold",
      scope: "global",
      window: "daily",
      windowStart: 0,
      thresholdPercent: 80,
      limitUsd: 0.0001,
      spentUsd: 0.00008399999999999998,
      anomaly: null,
      message: "m",
      dedupeKey: "k",
      block: null
    }))
    assert.include(body, `"spentUsd":0.000084`)
    assert.include(body, `"limitUsd":0.0001`)
    assert.notInclude(body, "99999")
  })
})
