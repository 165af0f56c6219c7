/**
 * How a request travels to one kind of provider and how its answer comes back, for each pair of
 * client shape (OpenAI chat, Anthropic messages) and provider shape. Same shape both ways: the
 * client's bytes go through untouched unless a field must change (the served model, or usage
 * reporting on an OpenAI stream). Different shapes: the request is translated, and the answer is
 * translated back (whole, or event by event for a stream, never buffered).
 */
import * as Either from "effect/Either"
import type { BadRequest } from "../Domain/Errors.js"
import { fromAnthropic, fromOpenAi, type Usage } from "../Domain/Usage.js"
import * as Sse from "../Sse.js"
import { AnthropicSseTap, messageFacts } from "../Sse/Anthropic.js"
import {
  AnthropicToOpenAiStream,
  fromAnthropicMessage,
  fromOpenAiCompletion,
  OpenAiToAnthropicStream,
  toAnthropicRequest,
  toOpenAiRequest
} from "../Translate.js"
import type { StreamWatch } from "./StreamWatch.js"
import { watchWhole } from "./Whole.js"

export type { StreamWatch } from "./StreamWatch.js"

/** The wire format a client or a provider speaks. */
export type Shape = "openai" | "anthropic"

/** A whole (non-streamed) answer, read and put in the client's shape. */
export interface ReadAnswer {
  readonly bytes: Uint8Array
  readonly model: string | undefined
  readonly usage: Usage | undefined
  /** Generated text, only to estimate tokens when no usage came. */
  readonly completionText: () => string
  /** The body parsed as JSON: false for a truncated or otherwise broken answer. */
  readonly valid: boolean
}

export interface Wire {
  /** Path under the provider's base URL. */
  readonly path: string
  /** The request body to send, for the model this target serves. */
  readonly body: (model: string) => Uint8Array
  readonly read: (bytes: Uint8Array) => ReadAnswer
  readonly watch: () => StreamWatch
  /** Watches a whole answer too large to read into memory, passed through as it comes (`Proxy/Whole.ts`). */
  readonly watchWhole: () => StreamWatch
  /** The answer arrives in the client's shape as it is: it can be cached and shared. */
  readonly passthrough: boolean
}

/** What a wire needs of the client's request. */
export interface WireRequest {
  readonly raw: Uint8Array
  readonly json: Readonly<Record<string, unknown>>
  readonly model: string
  readonly stream: boolean
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const readOpenAi = (bytes: Uint8Array): ReadAnswer => {
  let json: { model?: unknown; usage?: unknown; choices?: unknown } | undefined
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    json = undefined
  }
  if (typeof json !== "object" || json === null) json = undefined
  return {
    bytes,
    model: typeof json?.model === "string" ? json.model : undefined,
    usage: fromOpenAi(json?.usage),
    completionText: () => openAiCompletionText(json?.choices),
    valid: json !== undefined
  }
}

const openAiCompletionText = (choices: unknown): string =>
  Array.isArray(choices)
    ? choices
      .map((c: { message?: { content?: unknown; tool_calls?: unknown } }) =>
        `${typeof c.message?.content === "string" ? c.message.content : ""}${c.message?.tool_calls === undefined ? "" : JSON.stringify(c.message.tool_calls)}`
      )
      .join("")
    : ""

/** Watch an OpenAI stream going to an OpenAI client, removing the usage chunk if we asked for it. */
export const watchOpenAi = (stripUsageChunk: boolean): StreamWatch => {
  const tap = new Sse.SseTap(stripUsageChunk, Sse.FOLD_PAST)
  return {
    newText: () => tap.newText(),
    push: (chunk) => tap.push(chunk),
    end: () => tap.end(),
    usage: () => fromOpenAi(tap.usage),
    model: () => tap.model,
    done: () => tap.done,
    completionText: () => tap.completionText(),
    completionChars: () => tap.completionChars(),
    pending: () => tap.events.pending,
    whole: false
  }
}

/** OpenAI client, OpenAI-compatible provider: bytes as they are, unless a field must change. */
export const openAiToOpenAi = (request: WireRequest): Wire => {
  const options = request.json.stream_options as { include_usage?: unknown } | null | undefined
  // Usage is how the ledger learns the cost: ask for it on every stream, hide it if not asked.
  const injectUsage = request.stream && options?.include_usage !== true
  return {
    path: "/chat/completions",
    body: (model) => {
      if (!injectUsage && model === request.model) return request.raw
      // Copied and filled in place: a property added after a spread (`{ ...json, stream_options }`)
      // would cost V8 a new hidden class on every request (see `Http/Response.ts`).
      const body: Record<string, unknown> = Object.assign({}, request.json)
      body.model = model
      if (injectUsage) body.stream_options = Object.assign({}, options, { include_usage: true })
      return encoder.encode(JSON.stringify(body))
    },
    read: readOpenAi,
    watch: () => watchOpenAi(injectUsage),
    watchWhole: () => watchWhole(fromOpenAi),
    passthrough: true
  }
}

const isObject = (json: unknown): boolean => typeof json === "object" && json !== null

const parseJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
}

/** Watch an Anthropic stream going to an Anthropic client: bytes as they came. */
export const watchAnthropic = (): StreamWatch => {
  const tap = new AnthropicSseTap(Sse.FOLD_PAST)
  return {
    newText: () => tap.newText(),
    push: (chunk) => tap.push(chunk),
    end: () => tap.end(),
    usage: () => tap.usage,
    model: () => tap.model,
    done: () => tap.done,
    completionText: () => tap.completionText(),
    completionChars: () => tap.completionChars(),
    pending: () => tap.events.pending,
    whole: false
  }
}

/**
 * A translating watch: `translate` turns upstream bytes into the client's shape, and `seen`
 * watches the same upstream bytes in their own shape, for the text (token estimates when no
 * usage came, and the mid-stream budget guard).
 */
const translating = (
  translate: { push(chunk: Uint8Array): Uint8Array; end(): Uint8Array; readonly usage: Usage | undefined; readonly model: string | undefined; readonly done: boolean },
  seen: StreamWatch
): StreamWatch => ({
  push: (chunk) => {
    seen.push(chunk)
    return translate.push(chunk)
  },
  end: () => {
    seen.end()
    return translate.end()
  },
  usage: () => translate.usage,
  model: () => translate.model,
  done: () => translate.done,
  completionText: seen.completionText,
  completionChars: seen.completionChars,
  newText: seen.newText,
  // The translator holds the same unterminated event as `seen`.
  pending: seen.pending,
  whole: false
})

/** Anthropic client, Anthropic provider: bytes as they are (the model rewritten if routing says so). */
export const anthropicToAnthropic = (request: WireRequest): Wire => ({
  path: "/v1/messages",
  body: (model) => (model === request.model ? request.raw : encoder.encode(JSON.stringify({ ...request.json, model }))),
  read: (bytes) => {
    const json = parseJson(bytes)
    const { model, usage } = messageFacts(json)
    return { bytes, model, usage, completionText: () => anthropicCompletionText(json), valid: isObject(json) }
  },
  watch: watchAnthropic,
  watchWhole: () => watchWhole(fromAnthropic),
  passthrough: true
})

const anthropicCompletionText = (message: unknown): string => {
  const content = (message as { content?: unknown } | undefined)?.content
  if (!Array.isArray(content)) return ""
  return content
    .map((block: { text?: unknown; thinking?: unknown; input?: unknown }) =>
      typeof block.text === "string" ? block.text : typeof block.thinking === "string" ? block.thinking : block.input === undefined ? "" : JSON.stringify(block.input)
    )
    .join("")
}

/** OpenAI client, Anthropic provider: the request translated to Messages, the answer back to chat. */
export const openAiToAnthropic = (request: WireRequest): Wire | BadRequest => {
  const translated = toAnthropicRequest(request.json)
  if (Either.isLeft(translated)) return translated.left
  const message = translated.right
  const includeUsage = (request.json.stream_options as { include_usage?: unknown } | null | undefined)?.include_usage === true
  return {
    path: "/v1/messages",
    body: (model) => encoder.encode(JSON.stringify({ ...message, model })),
    read: (bytes) => {
      const json = parseJson(bytes)
      const { model, usage } = messageFacts(json)
      return {
        bytes: encoder.encode(JSON.stringify(fromAnthropicMessage(json, request.model))),
        model,
        usage,
        completionText: () => anthropicCompletionText(json),
        valid: isObject(json)
      }
    },
    watch: () => translating(new AnthropicToOpenAiStream({ includeUsage, requestedModel: request.model }), watchAnthropic()),
    watchWhole: () => watchWhole(fromAnthropic),
    passthrough: false
  }
}

/** Anthropic client, OpenAI-compatible provider: the request translated to chat, the answer back to Messages. */
export const anthropicToOpenAi = (request: WireRequest): Wire | BadRequest => {
  const translated = toOpenAiRequest(request.json)
  if (Either.isLeft(translated)) return translated.left
  const chat = translated.right
  return {
    path: "/chat/completions",
    body: (model) => encoder.encode(JSON.stringify({ ...chat, model })),
    read: (bytes) => {
      const answer = readOpenAi(bytes)
      return { ...answer, bytes: encoder.encode(JSON.stringify(fromOpenAiCompletion(parseJson(bytes), request.model))) }
    },
    watch: () => translating(new OpenAiToAnthropicStream({ requestedModel: request.model }), watchOpenAi(false)),
    watchWhole: () => watchWhole(fromOpenAi),
    passthrough: false
  }
}

/** The wire between a client shape and a provider shape, or why this request cannot cross it. */
export const wireFor = (client: Shape, provider: Shape, request: WireRequest): Wire | BadRequest =>
  client === "openai"
    ? provider === "openai" ? openAiToOpenAi(request) : openAiToAnthropic(request)
    : provider === "anthropic"
    ? anthropicToAnthropic(request)
    : anthropicToOpenAi(request)
