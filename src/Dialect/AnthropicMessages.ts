/**
 * The Anthropic Messages dialect (what Claude Code speaks): `POST /v1/messages` for clients and
 * under an Anthropic provider's base URL. Its answers are not cached (no codec yet), so its
 * requests are never cached nor shared.
 */
import * as Either from "effect/Either"
import * as MessagesRequest from "../Domain/MessagesRequest.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { fromAnthropic } from "../Domain/Usage.js"
import { toAnthropicResponse } from "../Http/Errors.js"
import * as Sse from "../Sse.js"
import { AnthropicSseTap, messageFacts } from "../Sse/Anthropic.js"
import { type AnswerReading, type Dialect, parsedOf, type ReadAnswer, type StreamWatch, watchOf, parseJson } from "../Dialect.js"


const streamError = (message: string) =>
  `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`


const isObject = (json: unknown): boolean => typeof json === "object" && json !== null

/** The text of a message (text, thinking and tool input), only to estimate tokens. */
export const completionText = (message: unknown): string => {
  const content = (message as { content?: unknown } | undefined)?.content
  if (!Array.isArray(content)) return ""
  return content
    .map((block: { text?: unknown; thinking?: unknown; input?: unknown }) =>
      typeof block.text === "string" ? block.text : typeof block.thinking === "string" ? block.thinking : block.input === undefined ? "" : JSON.stringify(block.input)
    )
    .join("")
}

/** A message, read for its model, usage and text; `bytes` is what the client gets (the message as it came, or a translation of it). */
export const readAs = (json: unknown, bytes: Uint8Array): ReadAnswer => {
  const { model, usage } = messageFacts(json)
  return { bytes, model, usage, completionText: () => completionText(json), valid: isObject(json) }
}

const read = (bytes: Uint8Array): ReadAnswer => readAs(parseJson(bytes), bytes)

/** Watches a Messages stream: bytes as they came. */
export const watch = (): StreamWatch => {
  const tap = new AnthropicSseTap(Sse.FOLD_PAST)
  return watchOf(tap, () => tap.usage)
}

const cascadeReading = (bytes: Uint8Array): AnswerReading | undefined => {
  const json = parseJson(bytes)
  if (typeof json !== "object" || json === null) return undefined
  const message = json as { content?: unknown; stop_reason?: unknown }
  const blocks = Array.isArray(message.content) ? message.content : []
  return {
    text: blocks.map((b: { type?: unknown; text?: unknown }) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join(""),
    truncated: message.stop_reason === "max_tokens",
    refused: message.stop_reason === "refusal"
  }
}

/** `POST /v1/messages`, the Anthropic Messages API. */
export const AnthropicMessages: Dialect = {
  id: "anthropic-messages",
  endpoint: "/v1/messages",
  upstreamPath: "/v1/messages",
  parse: (raw, headers) =>
    Either.map(MessagesRequest.parse(raw), ({ body, json }) =>
      parsedOf(raw, json, body, RequestFacts.fromAnthropicMessages(json, raw, headers), streamError)),
  errorResponse: toAnthropicResponse,
  streamError,
  read,
  watch,
  usageOf: fromAnthropic,
  cascadeReading,
  cache: undefined
}
