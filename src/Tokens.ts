/**
 * Token estimates with `gpt-tokenizer` (o200k_base, the encoding of current OpenAI models), used
 * only when a provider reports no usage. The encoder is loaded on first use, so start-up does not
 * pay for it.
 */
import * as Effect from "effect/Effect"

type Encoder = { readonly countTokens: (text: string) => number }

const loadEncoder: Effect.Effect<Encoder> = Effect.runSync(
  Effect.cached(Effect.promise(() => import("gpt-tokenizer/encoding/o200k_base") as Promise<Encoder>))
)

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

/** Loads the encoder now, so the first estimate does not pay for it. */
export const warm: Effect.Effect<void> = Effect.asVoid(loadEncoder)

export const countText = (text: string): Effect.Effect<number> =>
  Effect.map(loadEncoder, (encoder) => (text.length === 0 ? 0 : encoder.countTokens(text)))

/** Estimated input tokens of a chat request (message text, names, tool definitions). */
export const countChatInput = (body: { readonly messages: ReadonlyArray<unknown>; readonly tools?: unknown }) =>
  Effect.map(loadEncoder, (encoder) => {
    let total = PER_REPLY
    for (const message of body.messages) {
      const m = (message ?? {}) as Record<string, unknown>
      total += PER_MESSAGE + encoder.countTokens(contentText(m.content))
      if (typeof m.name === "string") total += encoder.countTokens(m.name)
      if (Array.isArray(m.tool_calls)) total += encoder.countTokens(JSON.stringify(m.tool_calls))
    }
    if (body.tools !== undefined) total += encoder.countTokens(JSON.stringify(body.tools))
    return total
  })
