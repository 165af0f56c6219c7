/**
 * The complexity classifier on a hand-labelled set (test/fixtures/complexity.json). The accuracy
 * is printed, and must stay at or above Complexity.ACCURACY_THRESHOLD (0.8, documented in
 * src/Router/Complexity.ts). Labels were written from what each prompt asks, before tuning.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as RequestFacts from "../../src/Domain/RequestFacts.js"
import * as Complexity from "../../src/Router/Complexity.js"

interface Labelled {
  readonly name: string
  readonly label: Complexity.Tier
  readonly body: Record<string, unknown>
}

const set = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "../fixtures/complexity.json"), "utf8")) as ReadonlyArray<Labelled>
const encoder = new TextEncoder()
const factsOf = (body: Record<string, unknown>) => RequestFacts.fromOpenAiChat(body, encoder.encode(JSON.stringify(body)), {})

describe("Complexity", () => {
  it("the labelled set has at least 30 prompts of every tier", () => {
    assert.isAtLeast(set.length, 30)
    for (const tier of ["simple", "moderate", "complex"] as const) {
      assert.isAtLeast(set.filter((e) => e.label === tier).length, 8, tier)
    }
  })

  it(`accuracy on the labelled set is at least ${Complexity.ACCURACY_THRESHOLD}`, () => {
    const misses: Array<string> = []
    for (const entry of set) {
      const score = Complexity.classify(factsOf(entry.body))
      if (score.tier !== entry.label) {
        misses.push(`${entry.name}: labelled ${entry.label}, classified ${score.tier} (${score.points}: ${score.reasons.join("; ")})`)
      }
    }
    const accuracy = (set.length - misses.length) / set.length
    console.log(`complexity classifier: accuracy ${(accuracy * 100).toFixed(1)}% (${set.length - misses.length}/${set.length})` +
      (misses.length > 0 ? `\n  misses:\n  ${misses.join("\n  ")}` : ""))
    assert.isAtLeast(accuracy, Complexity.ACCURACY_THRESHOLD)
  })

  it.each([
    [0, "simple"], [1, "simple"], [2, "moderate"], [4, "moderate"], [5, "complex"], [9, "complex"]
  ] as const)("%i points is %s", (points, tier) => {
    assert.strictEqual(Complexity.tierOf(points), tier)
  })

  it("each signal moves the score the documented amount", () => {
    const base = { messageCount: 1, toolCount: 0, text: () => "hello there friend, how are you doing", estimatedInputTokens: () => 45 }
    assert.strictEqual(Complexity.classify(base).points, 0)
    assert.strictEqual(Complexity.classify({ ...base, messageCount: 6 }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, messageCount: 12 }).points, 2)
    assert.strictEqual(Complexity.classify({ ...base, estimatedInputTokens: () => 50 }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, estimatedInputTokens: () => 400 }).points, 2)
    assert.strictEqual(Complexity.classify({ ...base, estimatedInputTokens: () => 2_000 }).points, 3)
    assert.strictEqual(Complexity.classify({ ...base, toolCount: 1 }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, toolCount: 5 }).points, 2)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "a\n```js\nx\n```\n" }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "```a```\n```b```" }).points, 2)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "please analyze it" }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "analyze and compare" }).points, 2)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "analyze, compare, refactor, prove it" }).points, 3)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "analyze, compare, refactor, prove, debug, migrate" }).points, 4)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "please write a poem" }).points, 1)
    assert.strictEqual(Complexity.classify({ ...base, text: () => "why? how? when?" }).points, 1)
    // Stems start words: "redesign" is not "design", "overview" is not "review".
    assert.strictEqual(Complexity.classify({ ...base, text: () => "a redesign overview" }).points, 0)
    assert.strictEqual(Complexity.classify({ ...base, estimatedInputTokens: () => 10 }).points, -1)
  })
})
