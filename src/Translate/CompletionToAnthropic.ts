/**
 * OpenAI `chat.completion` -> Anthropic message, and OpenAI error -> Anthropic error body.
 *
 * The first choice is used (tollgate never asks an OpenAI provider for more than one). `content`
 * becomes a text block, `tool_calls` become `tool_use` blocks (arguments parsed; arguments that
 * are not a JSON object are kept under `{"_raw": "..."}` rather than lost). `reasoning_content`
 * (DeepSeek style) is dropped: an Anthropic thinking block needs a signature it cannot have.
 * `stop_reason` is `end_turn` for `stop` (OpenAI does not say whether a stop sequence was hit).
 * Usage: `cache_read_input_tokens` is OpenAI's `cached_tokens`, and leaves `input_tokens`.
 */
import { anthropicErrorTypeOf, anthropicUsageOf, asArray, asRecord, isRecord, type Json, str, stopReasonOf } from "./Common.js"

/** Tool arguments as an object; the raw string is kept when it is not one. */
export const toolInputOf = (args: unknown): Json => {
  if (typeof args !== "string" || args.trim() === "") return {}
  try {
    const parsed = JSON.parse(args) as unknown
    return isRecord(parsed) ? parsed : { _raw: args }
  } catch {
    return { _raw: args }
  }
}

/** Anthropic message ids start with `msg_`; OpenAI's are kept behind it for tracing. */
export const messageIdOf = (id: unknown): string => `msg_${str(id) ?? "tollgate"}`

/** An OpenAI chat completion as an Anthropic message. `model` is the served one, else `requestedModel`. */
export const fromOpenAiCompletion = (json: unknown, requestedModel?: string): Json => {
  const completion = asRecord(json)
  const choice = asRecord(asArray(completion.choices)[0])
  const message = asRecord(choice.message)
  const content: Array<Json> = []
  const text = typeof message.content === "string"
    ? message.content
    : asArray(message.content).map((p) => str(asRecord(p).text) ?? "").join("")
  if (text.length > 0) content.push({ type: "text", text })
  if (typeof message.refusal === "string" && message.refusal.length > 0) content.push({ type: "text", text: message.refusal })
  for (const raw of asArray(message.tool_calls)) {
    const call = asRecord(raw)
    const fn = asRecord(call.function)
    content.push({ type: "tool_use", id: str(call.id) ?? `toolu_${content.length}`, name: str(fn.name) ?? "", input: toolInputOf(fn.arguments) })
  }
  return {
    id: messageIdOf(completion.id),
    type: "message",
    role: "assistant",
    model: str(completion.model) ?? requestedModel ?? "unknown",
    content,
    stop_reason: stopReasonOf(choice.finish_reason),
    stop_sequence: null,
    usage: anthropicUsageOf(completion.usage)
  }
}

/** An OpenAI error body (or any body) as Anthropic's error shape, typed from the HTTP status. */
export const openAiErrorToAnthropic = (json: unknown, status: number): Json => {
  const error = asRecord(asRecord(json).error)
  const message = str(error.message) ?? (typeof asRecord(json).error === "string" ? String(asRecord(json).error) : undefined)
  return { type: "error", error: { type: anthropicErrorTypeOf(status), message: message ?? `Provider answered ${status}` } }
}
