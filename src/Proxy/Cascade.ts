/**
 * Cascade: try the cheapest model first and escalate to the next when its answer shows a
 * configured signal. This module reads an answer for those signals; the request program runs the
 * ladder.
 *
 * Non-streaming only, on purpose: judging an answer needs all of it, and once a streamed byte has
 * reached the client it cannot be taken back. Buffering the stream instead would cost the client
 * its time to first token, the reason it asked for a stream. A streamed request on a cascade rule
 * is served by the ladder's first step (with the other steps as failover targets).
 */
import type { Signals } from "../Router/Settings.js"
import type { Shape } from "./Wire.js"

export type Signal = "error" | "truncated" | "refusal" | "uncertainty"

const decoder = new TextDecoder()

interface Reading {
  readonly text: string
  readonly truncated: boolean
  /** The provider itself flagged a refusal (OpenAI `message.refusal`, Anthropic `stop_reason: refusal`). */
  readonly refused: boolean
}

/** The text of an answer and whether it was cut by the output limit, in either shape. */
const read = (bytes: Uint8Array, shape: Shape): Reading | undefined => {
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
  if (typeof json !== "object" || json === null) return undefined
  if (shape === "openai") {
    const choices = (json as { choices?: unknown }).choices
    if (!Array.isArray(choices)) return undefined
    const first = choices[0] as { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown } | undefined
    const content = first?.message?.content
    const refusal = first?.message?.refusal
    return {
      text: typeof content === "string" ? content : "",
      truncated: first?.finish_reason === "length",
      refused: typeof refusal === "string" && refusal.length > 0
    }
  }
  const message = json as { content?: unknown; stop_reason?: unknown }
  const blocks = Array.isArray(message.content) ? message.content : []
  return {
    text: blocks.map((b: { type?: unknown; text?: unknown }) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join(""),
    truncated: message.stop_reason === "max_tokens",
    refused: message.stop_reason === "refusal"
  }
}

/** The first signal in this answer that says "escalate", or undefined when it is good enough. */
export const signalOf = (bytes: Uint8Array, shape: Shape, signals: Signals): Signal | undefined => {
  const reading = read(bytes, shape)
  if (reading === undefined) return signals.error ? "error" : undefined
  if (signals.truncated && reading.truncated) return "truncated"
  const text = reading.text.toLowerCase()
  if (reading.refused && signals.refusal.length > 0) return "refusal"
  if (signals.refusal.some((phrase) => text.includes(phrase.toLowerCase()))) return "refusal"
  if (signals.uncertainty.some((phrase) => text.includes(phrase.toLowerCase()))) return "uncertainty"
  return undefined
}
