/**
 * What routing decisions need to know about a request, read once from its parsed body.
 *
 * Cheap facts (model, stream, counts, flags) are read eagerly in one pass over the body. The two
 * expensive ones are lazy and memoised: `text()` (what the complexity classifier reads) and
 * `estimatedInputTokens()` (gpt-tokenizer). `byteLength` is an upper bound on the input tokens
 * (every token covers at least one byte of the JSON body, and the per-message framing tokens are
 * fewer than the JSON punctuation around each message), so a decision that only needs "does it fit"
 * checks the bytes first and tokenises only when they do not already prove it.
 */
import * as Tokens from "../Tokens.js"

export type Endpoint = "chat" | "messages" | "responses" | "embeddings" | "completions"

export interface RequestFacts {
  readonly endpoint: Endpoint
  readonly model: string
  readonly stream: boolean
  /** The larger of `max_tokens` and `max_completion_tokens`, when the client set either (a provider may honour either). */
  readonly maxTokens: number | undefined
  readonly toolCount: number
  readonly hasImages: boolean
  readonly hasResponseFormat: boolean
  readonly messageCount: number
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The client's API key (bearer token or `x-api-key`), if it sent one. */
  readonly clientKey: string | undefined
  /** UTF-8 size of the body: an upper bound on `estimatedInputTokens()`. */
  readonly byteLength: number
  /** Input tokens as gpt-tokenizer (o200k_base) counts them, with chat framing (estimated past `Tokens.EXACT_CHARS`). Memoised. */
  readonly estimatedInputTokens: () => number
  /** At least the input tokens: counted like `estimatedInputTokens`, bounded from above past what is tokenised. Memoised. */
  readonly inputTokensAtMost: () => number
  /** The prompt's text (system, messages, tool results), for the classifier. Memoised. */
  readonly text: () => string
}

/** Loads the tokenizer, so that the first estimate does not pay for it. */
export const warm = Tokens.warm

/** Tokens of a text (bounded work: see `Tokens`); 0 for the empty text without loading anything. */
export const countTokens = Tokens.count

/** Framing tokens per message, and for the reply's start (OpenAI's chat format; used for every dialect). */
export const PER_MESSAGE = 3
export const PER_REPLY = 3

export const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** `Authorization: Bearer k` or `x-api-key: k`. */
export const clientKeyOf = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const auth = headers["authorization"]
  if (auth !== undefined && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim()
  return headers["x-api-key"]
}

export const positiveNumber = (u: unknown): number | undefined => (typeof u === "number" && Number.isFinite(u) ? u : undefined)

const largest = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b)

/** A lazy value computed at most once. */
export const memo = <A>(compute: () => A): () => A => {
  let done = false
  let value: A
  return () => {
    if (!done) {
      value = compute()
      done = true
    }
    return value
  }
}

/** Text and image parts of a content value (a string, or an array of typed parts / blocks). */
interface Parts {
  text: string
  images: boolean
}

const readContent = (content: unknown, into: Parts): void => {
  if (typeof content === "string") {
    into.text += content + "\n"
    return
  }
  if (!Array.isArray(content)) return
  for (const part of content) {
    if (!isObject(part)) continue
    const type = part.type
    if (type === "image_url" || type === "image" || type === "input_image") into.images = true
    if (typeof part.text === "string") into.text += part.text + "\n"
    // Anthropic tool results nest their own content; tool_use carries its input as JSON.
    if (type === "tool_result") readContent(part.content, into)
    if (type === "tool_use" && part.input !== undefined) into.text += JSON.stringify(part.input) + "\n"
  }
}

const build = (
  endpoint: Endpoint,
  json: Readonly<Record<string, unknown>>,
  raw: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>,
  system: unknown
): RequestFacts => {
  const messages = Array.isArray(json.messages) ? json.messages : []
  const tools = Array.isArray(json.tools) ? json.tools : []
  // Only a scan for images here; text is gathered when someone asks for it.
  let hasImages = false
  for (const message of messages) {
    if (isObject(message) && Array.isArray(message.content)) {
      for (const part of message.content) {
        if (isObject(part) && (part.type === "image_url" || part.type === "image" || part.type === "input_image")) {
          hasImages = true
          break
        }
      }
    }
    if (hasImages) break
  }
  const text = memo(() => {
    const parts: Parts = { text: "", images: false }
    readContent(system, parts)
    for (const message of messages) {
      if (!isObject(message)) continue
      readContent(message.content, parts)
      if (Array.isArray(message.tool_calls)) parts.text += JSON.stringify(message.tool_calls) + "\n"
    }
    return parts.text
  })
  const tokens = (counter: (text: string) => number) => {
    let total = PER_REPLY + PER_MESSAGE * messages.length + counter(text())
    if (tools.length > 0) total += counter(JSON.stringify(tools))
    return total
  }
  const estimatedInputTokens = memo(() => tokens(Tokens.count))
  const inputTokensAtMost = memo(() => Math.min(raw.byteLength, tokens(Tokens.upperBound)))
  return {
    endpoint,
    model: typeof json.model === "string" ? json.model : "",
    stream: json.stream === true,
    maxTokens: largest(positiveNumber(json.max_completion_tokens), positiveNumber(json.max_tokens)),
    toolCount: tools.length,
    hasImages,
    hasResponseFormat: isObject(json.response_format) && json.response_format.type !== "text",
    messageCount: messages.length,
    headers,
    clientKey: clientKeyOf(headers),
    byteLength: raw.byteLength,
    estimatedInputTokens,
    inputTokensAtMost,
    text
  }
}

/** Facts of an OpenAI chat-completions body (`system` messages are ordinary messages there). */
export const fromOpenAiChat = (
  json: Readonly<Record<string, unknown>>,
  raw: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>
): RequestFacts => build("chat", json, raw, headers, undefined)

/** Facts of an Anthropic Messages body: top-level `system`, content blocks, `tools`, image blocks. */
export const fromAnthropicMessages = (
  json: Readonly<Record<string, unknown>>,
  raw: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>
): RequestFacts => build("messages", json, raw, headers, json.system)

/** The text of a prompt or embeddings input: a string, or an array of strings (token-id arrays carry none to read). */
const promptText = (input: unknown): string =>
  typeof input === "string" ? input : Array.isArray(input) ? input.filter((x): x is string => typeof x === "string").join("\n") : ""

/**
 * Facts of a body with one prompt and no conversation: embeddings (`input`, nothing generated: at
 * most 0 output tokens) and legacy completions (`prompt`, `max_tokens`).
 */
const fromPrompt = (
  endpoint: "embeddings" | "completions",
  json: Readonly<Record<string, unknown>>,
  raw: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>
): RequestFacts => {
  const text = memo(() => promptText(endpoint === "embeddings" ? json.input : json.prompt))
  const estimatedInputTokens = memo(() => Tokens.count(text()))
  const inputTokensAtMost = memo(() => Math.min(raw.byteLength, Tokens.upperBound(text())))
  return {
    endpoint,
    model: typeof json.model === "string" ? json.model : "",
    stream: json.stream === true,
    maxTokens: endpoint === "embeddings" ? 0 : positiveNumber(json.max_tokens),
    toolCount: 0,
    hasImages: false,
    hasResponseFormat: false,
    messageCount: 1,
    headers,
    clientKey: clientKeyOf(headers),
    byteLength: raw.byteLength,
    estimatedInputTokens,
    inputTokensAtMost,
    text
  }
}

/** Facts of an OpenAI embeddings body. */
export const fromEmbeddings = (json: Readonly<Record<string, unknown>>, raw: Uint8Array, headers: Readonly<Record<string, string | undefined>>) =>
  fromPrompt("embeddings", json, raw, headers)

/** Facts of a legacy OpenAI completions body. */
export const fromCompletions = (json: Readonly<Record<string, unknown>>, raw: Uint8Array, headers: Readonly<Record<string, string | undefined>>) =>
  fromPrompt("completions", json, raw, headers)
