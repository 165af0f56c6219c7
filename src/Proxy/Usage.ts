/**
 * Token counts for the ledger: read from a completion, or estimated with the tokenizer when the
 * provider reported none (the row then says `usage_source = estimated`). Text is only counted.
 */
import * as Effect from "effect/Effect"
import type * as ChatRequest from "../Domain/ChatRequest.js"
import { fromOpenAi, type Usage } from "../Domain/Usage.js"
import type { Landed } from "../Coalesce.js"
import type * as Sse from "../Sse.js"
import { SseTap } from "../Sse.js"
import * as Tokens from "../Tokens.js"

/** `model` and `usage` of a non-streaming completion; both optional. */
export const readCompletion = (bytes: Uint8Array): { model: string | undefined; usage: Usage | undefined } => {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { model?: unknown; usage?: unknown }
    return { model: typeof json.model === "string" ? json.model : undefined, usage: fromOpenAi(json.usage) }
  } catch {
    return { model: undefined, usage: undefined }
  }
}

const estimated = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  source: "estimated"
})

export const estimateFromStream = (parsed: ChatRequest.ChatRequest, tap: Sse.SseTap) =>
  Effect.zipWith(
    Tokens.countChatInput(parsed.json as { messages: ReadonlyArray<unknown> }),
    Tokens.countText(tap.completionText()),
    estimated
  )

export const estimateFromCompletion = (parsed: ChatRequest.ChatRequest, bytes: Uint8Array) =>
  Effect.zipWith(
    Tokens.countChatInput(parsed.json as { messages: ReadonlyArray<unknown> }),
    Tokens.countText(completionTextOf(bytes)),
    estimated
  )

const completionTextOf = (bytes: Uint8Array): string => {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as {
      choices?: Array<{ message?: { content?: unknown; tool_calls?: unknown } }>
    }
    return (json.choices ?? [])
      .map((c) => `${typeof c.message?.content === "string" ? c.message.content : ""}${c.message?.tool_calls === undefined ? "" : JSON.stringify(c.message.tool_calls)}`)
      .join("")
  } catch {
    return ""
  }
}

/** Usage and model of a whole answer a flight received (for a leader that left before the end). */
export const usageOfLanded = (landed: Landed, parsed: ChatRequest.ChatRequest | undefined) =>
  Effect.gen(function*() {
    if (landed.head.kind === "Bytes") {
      const bytes = landed.chunks[0] ?? new Uint8Array()
      const read = readCompletion(bytes)
      const usage = read.usage ?? (parsed === undefined ? undefined : yield* estimateFromCompletion(parsed, bytes))
      return { usage, model: read.model }
    }
    const tap = new SseTap(false)
    for (const chunk of landed.chunks) tap.push(chunk)
    tap.end()
    const usage = fromOpenAi(tap.usage) ?? (parsed === undefined ? undefined : yield* estimateFromStream(parsed, tap))
    return { usage, model: tap.model }
  })
