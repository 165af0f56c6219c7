/**
 * Token counts for the ledger when the provider reported none: estimated with the tokenizer (the
 * row then says `usage_source = estimated`). Text is only counted, never kept.
 */
import * as Effect from "effect/Effect"
import type { Landed } from "../Coalesce.js"
import type { Usage } from "../Domain/Usage.js"
import * as Tokens from "../Tokens.js"
import { readOpenAi, watchOpenAi } from "./Wire.js"

const estimated = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "estimated"
})

/** Usage estimated from the request's input and the generated text. */
export const estimate = (input: Effect.Effect<number>, completionText: string): Effect.Effect<Usage> =>
  Effect.zipWith(input, Tokens.countText(completionText), estimated)

/**
 * Usage and model of a whole answer a flight received (for a leader that left before the end).
 * Flights only ever carry OpenAI-shaped answers (only those are shared).
 */
export const usageOfLanded = (landed: Landed, input: Effect.Effect<number> | undefined) =>
  Effect.gen(function*() {
    if (landed.head.kind === "Bytes") {
      const answer = readOpenAi(landed.chunks[0] ?? new Uint8Array())
      const usage = answer.usage ?? (input === undefined ? undefined : yield* estimate(input, answer.completionText()))
      return { usage, model: answer.model }
    }
    const watch = watchOpenAi(false)
    for (const chunk of landed.chunks) watch.push(chunk)
    watch.end()
    const usage = watch.usage() ?? (input === undefined ? undefined : yield* estimate(input, watch.completionText()))
    return { usage, model: watch.model() }
  })
