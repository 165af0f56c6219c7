/**
 * What routing decisions need to know about an OpenAI Responses request, with the same meaning as
 * `RequestFacts` gives a chat or Messages body: cheap facts read eagerly in one pass over the
 * items, the prompt text and the token estimates lazy and memoised.
 *
 * Responses input differs from chat messages: `input` is a string or a list of items (messages
 * with `input_text` / `input_image` / `output_text` parts, `function_call` and
 * `function_call_output` items, reasoning items), `instructions` stands where a system message
 * would, and the output limit is `max_output_tokens`. Every item counts as a message for framing.
 */
import * as Tokens from "../Tokens.js"
import { clientKeyOf, isObject, memo, PER_MESSAGE, PER_REPLY, positiveNumber, type RequestFacts } from "./RequestFacts.js"

/** `RequestFacts` of a `/v1/responses` body. */
export interface ResponsesFacts extends RequestFacts {
  readonly endpoint: "responses"
}

const finite = positiveNumber

const isImagePart = (part: unknown): boolean => isObject(part) && (part.type === "input_image" || part.type === "image_url")

/** The parts of an item that can hold images: a message's content, a tool output's parts. */
const partsOf = (item: Record<string, unknown>): ReadonlyArray<unknown> =>
  Array.isArray(item.content) ? item.content : Array.isArray(item.output) ? item.output : []

/** The text of one input item: message text, refusals, tool call arguments and outputs. */
const itemText = (item: Record<string, unknown>, into: Array<string>): void => {
  if (typeof item.content === "string") into.push(item.content)
  if (typeof item.output === "string") into.push(item.output)
  for (const part of partsOf(item)) {
    if (!isObject(part)) continue
    if (typeof part.text === "string") into.push(part.text)
    if (typeof part.refusal === "string") into.push(part.refusal)
  }
  if (item.type === "function_call") {
    if (typeof item.name === "string") into.push(item.name)
    if (typeof item.arguments === "string") into.push(item.arguments)
  }
}

/** Facts of an OpenAI Responses body. */
export const fromResponses = (
  json: Readonly<Record<string, unknown>>,
  raw: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>
): ResponsesFacts => {
  const items = Array.isArray(json.input) ? json.input : []
  const inputString = typeof json.input === "string" ? json.input : undefined
  const tools = Array.isArray(json.tools) ? json.tools : []
  let hasImages = false
  for (const item of items) {
    if (!isObject(item)) continue
    if (partsOf(item).some(isImagePart)) {
      hasImages = true
      break
    }
  }
  const format = isObject(json.text) ? json.text.format : undefined
  const messageCount = inputString === undefined ? items.length : 1
  const text = memo(() => {
    const parts: Array<string> = []
    if (typeof json.instructions === "string") parts.push(json.instructions)
    if (inputString !== undefined) parts.push(inputString)
    for (const item of items) if (isObject(item)) itemText(item, parts)
    return parts.length === 0 ? "" : parts.join("\n") + "\n"
  })
  const tokens = (counter: (text: string) => number) => {
    const framed = messageCount + (typeof json.instructions === "string" ? 1 : 0)
    let total = PER_REPLY + PER_MESSAGE * framed + counter(text())
    if (tools.length > 0) total += counter(JSON.stringify(tools))
    return total
  }
  const estimatedInputTokens = memo(() => tokens(Tokens.count))
  const inputTokensAtMost = memo(() => Math.min(raw.byteLength, tokens(Tokens.upperBound)))
  return {
    endpoint: "responses",
    model: typeof json.model === "string" ? json.model : "",
    stream: json.stream === true,
    maxTokens: finite(json.max_output_tokens),
    toolCount: tools.length,
    hasImages,
    hasResponseFormat: isObject(format) && format.type !== "text",
    messageCount,
    headers,
    clientKey: clientKeyOf(headers),
    byteLength: raw.byteLength,
    estimatedInputTokens,
    inputTokensAtMost,
    text
  }
}
