import { assert, describe, it } from "@effect/vitest"
import type { Usage } from "../src/Domain/Usage.js"
import { fromOpenAi } from "../src/Domain/Usage.js"
import * as Pricing from "../src/Pricing.js"

const usage = (input: number, output: number, cached = 0): Usage => ({
  inputTokens: input,
  outputTokens: output,
  cachedInputTokens: cached,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "reported"
})

describe("Pricing", () => {
  const pricing = Pricing.make({ "my-local-model": { input: 0, output: 0 }, "gpt-4o": { input: 3, output: 12 } })

  it("bills cached input at its own rate", () => {
    // gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out per 1M.
    assert.closeTo(pricing.costOf("gpt-4o-mini", usage(1_000_000, 0))!, 0.15, 1e-12)
    assert.closeTo(pricing.costOf("gpt-4o-mini", usage(1_000_000, 1_000_000, 400_000))!, 0.6 * 0.15 + 0.4 * 0.075 + 0.6, 1e-12)
  })

  it("prices dated snapshots as their family, unless they have a price of their own", () => {
    assert.closeTo(pricing.costOf("gpt-4o-mini-2024-07-18", usage(1_000_000, 0))!, 0.15, 1e-12)
    assert.closeTo(pricing.costOf("gpt-4o-2024-05-13", usage(1_000_000, 0))!, 5, 1e-12)
  })

  it("config overrides win and can price a model at zero; unknown models are null, not $0", () => {
    assert.closeTo(pricing.costOf("gpt-4o", usage(1_000_000, 0))!, 3, 1e-12)
    assert.strictEqual(pricing.costOf("my-local-model", usage(500, 500)), 0)
    assert.isNull(pricing.costOf("some-unknown-model", usage(500, 500)))
  })

  it("reads OpenAI usage with cached and reasoning details", () => {
    assert.deepStrictEqual(
      fromOpenAi({ prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 2 } }),
      { inputTokens: 10, outputTokens: 5, cachedInputTokens: 4, cacheWriteTokens: 0, reasoningTokens: 2, source: "reported" }
    )
    assert.isUndefined(fromOpenAi(null))
    assert.isUndefined(fromOpenAi({ foo: 1 }))
  })
})
