/**
 * Token counts for the ledger when the provider reported none: estimated with the tokenizer (the
 * row then says `usage_source = estimated`). Text is only counted, never kept.
 */
import * as Effect from "effect/Effect"
import type { Landed } from "../Coalesce.js"
import type { Usage } from "../Domain/Usage.js"
import { Completion } from "../Sse.js"
import * as Tokens from "../Tokens.js"
import type { Dialect } from "../Dialect.js"

/** The answer is an SSE stream (a stream body of any other type is a whole answer too large to buffer). */
export const isEventStream = (headers: Readonly<Record<string, string>>): boolean =>
  (headers["content-type"] ?? "").includes("text/event-stream")

const estimated = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "estimated"
})

/**
 * Usage estimated from the request's input and the generated text. `completionChars` is how long
 * the text really was when only its start was kept (a bounded `Completion`): the count is scaled.
 */
export const estimate = (
  input: Effect.Effect<number>,
  completionText: string,
  completionChars: number = completionText.length
): Effect.Effect<Usage> =>
  Effect.zipWith(
    input,
    Tokens.countText(completionText),
    (inputTokens, outputTokens) =>
      estimated(
        inputTokens,
        completionChars <= completionText.length || completionText.length === 0
          ? outputTokens
          : Math.round(outputTokens * completionChars / completionText.length)
      )
  )

/** Usage estimated from the request's input and a body that could not be read as an answer (its text counted as it is). */
export const estimateFromBytes = (input: Effect.Effect<number>, bytes: Uint8Array): Effect.Effect<Usage> =>
  Effect.suspend(() => {
    const text = new Completion()
    text.add(new TextDecoder().decode(bytes))
    return estimate(input, text.text(), text.chars)
  })

/**
 * Usage and model of a whole answer a flight received (for a leader that left before the end).
 * Flights only carry answers in their client's dialect (only passthrough answers are shared).
 */
export const usageOfLanded = (landed: Landed, dialect: Dialect, input: Effect.Effect<number> | undefined) =>
  Effect.gen(function*() {
    if (landed.head.kind === "Bytes" || !isEventStream(landed.head.headers)) {
      // A whole answer (one that was too large to buffer came as a stream: its chunks joined here).
      const answer = dialect.read(landed.chunks.length === 1 ? landed.chunks[0]! : Buffer.concat(landed.chunks))
      const usage = answer.usage ?? (input === undefined ? undefined : yield* estimate(input, answer.completionText()))
      return { usage, model: answer.model }
    }
    const watch = dialect.watch()
    for (const chunk of landed.chunks) watch.push(chunk)
    watch.end()
    const usage = watch.usage() ?? (input === undefined ? undefined : yield* estimate(input, watch.completionText(), watch.completionChars()))
    return { usage, model: watch.model() }
  })
