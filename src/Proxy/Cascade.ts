/**
 * Cascade: try the cheapest model first and escalate to the next when its answer shows a
 * configured signal. This module judges an answer (as its dialect's `cascadeReading` reads it)
 * for those signals; the request program runs the ladder.
 *
 * Non-streaming only, on purpose: judging an answer needs all of it, and once a streamed byte has
 * reached the client it cannot be taken back. Buffering the stream instead would cost the client
 * its time to first token, the reason it asked for a stream. A streamed request on a cascade rule
 * is served by the ladder's first step (with the other steps as failover targets).
 */
import type { Signals } from "../Router/Settings.js"
import type { AnswerReading } from "../Dialect.js"

export type Signal = "error" | "truncated" | "refusal" | "uncertainty"

/** The first signal in this answer that says "escalate", or undefined when it is good enough. */
export const signalOf = (reading: AnswerReading | undefined, signals: Signals): Signal | undefined => {
  if (reading === undefined) return signals.error ? "error" : undefined
  if (signals.truncated && reading.truncated) return "truncated"
  const text = reading.text.toLowerCase()
  if (reading.refused && signals.refusal.length > 0) return "refusal"
  if (signals.refusal.some((phrase) => text.includes(phrase.toLowerCase()))) return "refusal"
  if (signals.uncertainty.some((phrase) => text.includes(phrase.toLowerCase()))) return "uncertainty"
  return undefined
}
