/**
 * Token counts with `gpt-tokenizer` (o200k_base, the encoding of current OpenAI models): input
 * estimates for routing and budget reservations, and usage estimates when a provider reports none.
 *
 * One copy of the encoder per process (~70 MB resident), loaded on first use, synchronously, so a
 * decision never waits on a promise and never loads a second copy. Layers whose config will need
 * counts on every request (`warm`) load it when they are built instead, so no request pays for it.
 */
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"

type Encoder = { readonly countTokens: (text: string) => number }

let loaded: Encoder | undefined

const encoder = (): Encoder => {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)("gpt-tokenizer/cjs/encoding/o200k_base") as Encoder
  }
  return loaded
}

/** Per-message framing tokens OpenAI adds around each chat message. */
const PER_MESSAGE = 3
const PER_REPLY = 3

/** The text of a message's content, whether a string or an array of parts. */
const contentText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let text = ""
  for (const part of content) {
    if (typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string") {
      text += (part as { text: string }).text
    }
  }
  return text
}

/** Loads the encoder now, so the first count does not pay for it. */
export const warm: Effect.Effect<void> = Effect.sync(() => void encoder())

/** Tokens of a text; 0 for the empty text without loading anything. */
export const count = (text: string): number => (text.length === 0 ? 0 : encoder().countTokens(text))

export const countText = (text: string): Effect.Effect<number> => Effect.sync(() => count(text))

/** Estimated input tokens of a chat request (message text, names, tool definitions). */
export const countChatInput = (body: { readonly messages: ReadonlyArray<unknown>; readonly tools?: unknown }) =>
  Effect.sync(() => {
    let total = PER_REPLY
    for (const message of body.messages) {
      const m = (message ?? {}) as Record<string, unknown>
      total += PER_MESSAGE + count(contentText(m.content))
      if (typeof m.name === "string") total += count(m.name)
      if (Array.isArray(m.tool_calls)) total += count(JSON.stringify(m.tool_calls))
    }
    if (body.tools !== undefined) total += count(JSON.stringify(body.tools))
    return total
  })
