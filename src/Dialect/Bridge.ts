/**
 * The bridge table: for each pair of client dialect and provider dialect, how a request crosses
 * to the provider and how its answer comes back. Same dialect both ways: a passthrough, the
 * client's bytes untouched unless a field must change (the served model, or usage reporting on an
 * OpenAI stream). Different dialects: a translator (`Translate/`), the request translated and the
 * answer translated back (whole, or event by event for a stream, never buffered).
 *
 * Its rows are also the dialects the proxy serves: each gets its route (`Http/Routes.ts`), and the
 * error shape of every path under its endpoint.
 */
import * as Either from "effect/Either"
import { BadRequest } from "../Domain/Errors.js"
import type { Usage } from "../Domain/Usage.js"
import { watchWhole } from "../Proxy/Whole.js"
import {
  AnthropicToOpenAiStream,
  fromAnthropicMessage,
  fromOpenAiCompletion,
  OpenAiToAnthropicStream,
  toAnthropicRequest,
  toOpenAiRequest
} from "../Translate.js"
import { fromChatCompletion } from "../Translate/ChatToResponses.js"
import { translateResponses } from "../Translate/ResponsesToChat.js"
import { ChatToResponsesStream, errorEvent } from "../Translate/StreamToResponses.js"
import { type BridgeContext, type Dialect, type DialectId, parseJson, type ReadAnswer, type StreamWatch, type WireRequest } from "../Dialect.js"
import { AnthropicMessages, readAs as readMessageAs, watch as watchMessages } from "./AnthropicMessages.js"
import { includeUsageOf, OpenAiChat, read as readChat, watch as watchChat } from "./OpenAiChat.js"
import { OpenAiCompletions, read as readCompletion } from "./OpenAiCompletions.js"
import { OpenAiEmbeddings } from "./OpenAiEmbeddings.js"
import { OpenAiResponses } from "./OpenAiResponses.js"

/** One request's crossing to providers of one dialect. */
export interface Wire {
  /** Path under the provider's base URL. */
  readonly path: string
  /** The request body to send, for the model this target serves. */
  readonly body: (model: string) => Uint8Array
  /** A whole answer, read and put in the client's dialect. */
  readonly read: (bytes: Uint8Array) => ReadAnswer
  readonly watch: () => StreamWatch
  /** Watches a whole answer too large to read into memory, passed through as it comes (`Proxy/Whole.ts`). */
  readonly watchWhole: () => StreamWatch
  /** The answer arrives in the client's dialect as it is: it can be cached and shared. */
  readonly passthrough: boolean
  /** What of the client's request the translation leaves out (`x-tollgate-dropped`); none for a passthrough. */
  readonly dropped?: ReadonlyArray<string> | undefined
}

/** A table entry: the wire for this request, or why it cannot cross (a 400, before anything is sent). */
export type Bridge = (request: WireRequest, context?: BridgeContext) => Wire | BadRequest

const encoder = new TextEncoder()


/** `request`'s body for another model: copied and filled in place (see `rewritten` in `openAiToOpenAi`). */
const withModel = (json: Readonly<Record<string, unknown>>, model: string): Uint8Array => {
  const body: Record<string, unknown> = Object.assign({}, json)
  body.model = model
  return encoder.encode(JSON.stringify(body))
}

/** Same dialect both ways: the bytes as they are (the model rewritten if routing says so). */
export const passthrough = (dialect: Dialect): (request: WireRequest) => Wire => {
  const whole = () => watchWhole(dialect.usageOf)
  return (request) => ({
    path: dialect.upstreamPath,
    body: (model) => (model === request.model ? request.raw : withModel(request.json, model)),
    read: dialect.read,
    watch: dialect.watch,
    watchWhole: whole,
    passthrough: true
  })
}

const watchChatStripping = (): StreamWatch => watchChat(true)
const watchChatAsItIs = (): StreamWatch => watchChat(false)
const watchChatWhole = () => watchWhole(OpenAiChat.usageOf)
const watchMessagesWhole = () => watchWhole(AnthropicMessages.usageOf)

/**
 * An OpenAI dialect with chat's stream framing (chat, legacy completions) both ways: a passthrough
 * that also asks for usage on every stream (and hides it if the client did not).
 */
const openAiStreaming = (dialect: Dialect, read: (bytes: Uint8Array) => ReadAnswer): Bridge => {
  const whole = () => watchWhole(dialect.usageOf)
  return (request) => {
    // Usage is how the ledger learns the cost: ask for it on every stream, hide it if not asked.
    const injectUsage = request.stream && !includeUsageOf(request.json)
    return {
      path: dialect.upstreamPath,
      body: (model) => {
        if (!injectUsage && model === request.model) return request.raw
        // Copied and filled in place: a property added after a spread (`{ ...json, stream_options }`)
        // would cost V8 a new hidden class on every request (see `Http/Response.ts`).
        const body: Record<string, unknown> = Object.assign({}, request.json)
        body.model = model
        if (injectUsage) body.stream_options = Object.assign({}, request.json.stream_options, { include_usage: true })
        return encoder.encode(JSON.stringify(body))
      },
      read,
      watch: injectUsage ? watchChatStripping : watchChatAsItIs,
      watchWhole: whole,
      passthrough: true
    }
  }
}

const openAiToOpenAi = openAiStreaming(OpenAiChat, readChat)

/**
 * A translating watch: `translate` turns upstream bytes into the client's dialect, and `seen`
 * watches the same upstream bytes in their own, for the text (token estimates when no usage
 * came, and the mid-stream budget guard).
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

/** OpenAI chat client, Anthropic provider: the request translated to Messages, the answer back to chat. */
const openAiToAnthropic: Bridge = (request) => {
  const translated = toAnthropicRequest(request.json)
  if (Either.isLeft(translated)) return translated.left
  const message = translated.right
  const includeUsage = includeUsageOf(request.json)
  return {
    path: AnthropicMessages.upstreamPath,
    body: (model) => encoder.encode(JSON.stringify({ ...message, model })),
    read: (bytes) => {
      const json = parseJson(bytes)
      return readMessageAs(json, encoder.encode(JSON.stringify(fromAnthropicMessage(json, request.model))))
    },
    watch: () => translating(new AnthropicToOpenAiStream({ includeUsage, requestedModel: request.model }), watchMessages()),
    watchWhole: watchMessagesWhole,
    passthrough: false
  }
}

/** Anthropic Messages client, OpenAI chat provider: the request translated to chat, the answer back to Messages. */
const anthropicToOpenAi: Bridge = (request) => {
  const translated = toOpenAiRequest(request.json)
  if (Either.isLeft(translated)) return translated.left
  const chat = translated.right
  return {
    path: OpenAiChat.upstreamPath,
    body: (model) => encoder.encode(JSON.stringify({ ...chat, model })),
    read: (bytes) => {
      const answer = readChat(bytes)
      return { ...answer, bytes: encoder.encode(JSON.stringify(fromOpenAiCompletion(parseJson(bytes), request.model))) }
    },
    watch: () => translating(new OpenAiToAnthropicStream({ requestedModel: request.model }), watchChatAsItIs()),
    watchWhole: watchChatWhole,
    passthrough: false
  }
}

interface StreamTranslator {
  push(chunk: Uint8Array): Uint8Array
  end(): Uint8Array
  readonly usage: Usage | undefined
  readonly model: string | undefined
  readonly done: boolean
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  if (a.byteLength === 0) return b
  if (b.byteLength === 0) return a
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}

/** Two stream translators one after the other; usage and model from the first (the provider's own count). */
const chained = (first: StreamTranslator, second: StreamTranslator): StreamTranslator => ({
  push: (chunk) => second.push(first.push(chunk)),
  end: () => concat(second.push(first.end()), second.end()),
  get usage() {
    return first.usage
  },
  get model() {
    return first.model
  },
  get done() {
    return second.done
  }
})

/**
 * A watch translating into the Responses event stream (after `before`, when the provider's stream
 * is first put in chat's shape), whose error event continues the translated stream's numbering.
 */
const numbered = (responses: ChatToResponsesStream, seen: StreamWatch, before?: StreamTranslator): StreamWatch => ({
  ...translating(before === undefined ? responses : chained(before, responses), seen),
  streamError: (message) => errorEvent(message, responses.nextSequence)
})

/** Responses client, chat-only provider: the request translated to chat, the answer back to a Responses object or event stream. */
const responsesToChat: Bridge = (request, context) => {
  const translated = translateResponses(request.json, { resolveItem: context?.items.resolve })
  if (Either.isLeft(translated)) return translated.left
  const { request: chat, dropped } = translated.right
  const options = { request: request.json, requestedModel: request.model, onCompleted: context?.items.remember }
  return {
    path: OpenAiChat.upstreamPath,
    body: (model) => encoder.encode(JSON.stringify({ ...chat, model })),
    read: (bytes) => {
      const answer = readChat(bytes)
      const response = fromChatCompletion(parseJson(bytes), options)
      context?.items.remember(response)
      return { ...answer, bytes: encoder.encode(JSON.stringify(response)) }
    },
    watch: () => numbered(new ChatToResponsesStream(options), watchChatAsItIs()),
    watchWhole: watchChatWhole,
    passthrough: false,
    dropped
  }
}

/**
 * Responses client, Anthropic provider: through chat both ways (Responses -> chat -> Messages, and
 * back). Usage is the Anthropic translator's, which keeps cache writes (chat has no field for them).
 */
const responsesToAnthropic: Bridge = (request, context) => {
  const translated = translateResponses(request.json, { resolveItem: context?.items.resolve })
  if (Either.isLeft(translated)) return translated.left
  const message = toAnthropicRequest(translated.right.request)
  if (Either.isLeft(message)) return message.left
  const options = { request: request.json, requestedModel: request.model, onCompleted: context?.items.remember }
  return {
    path: AnthropicMessages.upstreamPath,
    body: (model) => encoder.encode(JSON.stringify({ ...message.right, model })),
    read: (bytes) => {
      const json = parseJson(bytes)
      const response = fromChatCompletion(fromAnthropicMessage(json, request.model), options)
      context?.items.remember(response)
      return readMessageAs(json, encoder.encode(JSON.stringify(response)))
    },
    watch: () => numbered(new ChatToResponsesStream(options), watchMessages(), new AnthropicToOpenAiStream({ includeUsage: true, requestedModel: request.model })),
    watchWhole: watchMessagesWhole,
    passthrough: false,
    dropped: translated.right.dropped
  }
}

/** Every dialect by its id. */
export const DIALECTS: { readonly [D in DialectId]: Dialect } = {
  "openai-chat": OpenAiChat,
  "anthropic-messages": AnthropicMessages,
  "openai-responses": OpenAiResponses,
  "openai-embeddings": OpenAiEmbeddings,
  "openai-completions": OpenAiCompletions
}

/**
 * Client dialect -> provider dialect -> bridge. A pair left out cannot be crossed: a request
 * routed to a target of that dialect is refused before anything is sent (400, `noBridge`), as a
 * request a translator cannot put in the target's dialect is.
 */
const TABLE: { readonly [C in DialectId]: Partial<Record<DialectId, Bridge>> } = {
  "openai-chat": {
    "openai-chat": openAiToOpenAi,
    "anthropic-messages": openAiToAnthropic
  },
  "anthropic-messages": {
    "anthropic-messages": passthrough(AnthropicMessages),
    "openai-chat": anthropicToOpenAi
  },
  "openai-responses": {
    "openai-responses": passthrough(OpenAiResponses),
    "openai-chat": responsesToChat,
    "anthropic-messages": responsesToAnthropic
  },
  // Embeddings and legacy completions have no counterpart on other APIs: OpenAI-compatible providers only.
  "openai-embeddings": {
    "openai-embeddings": passthrough(OpenAiEmbeddings)
  },
  "openai-completions": {
    "openai-completions": openAiStreaming(OpenAiCompletions, readCompletion)
  }
}

/** The served dialects by the short name the CLI and routing rules use (`match.endpoint`). */
export const BY_NAME = {
  chat: OpenAiChat,
  messages: AnthropicMessages,
  responses: OpenAiResponses,
  embeddings: OpenAiEmbeddings,
  completions: OpenAiCompletions
} as const
export type EndpointName = keyof typeof BY_NAME
export const ENDPOINT_NAMES = Object.keys(BY_NAME) as ReadonlyArray<EndpointName>

/** The dialects clients speak to tollgate, in the order their routes are listed. */
export const SERVED: ReadonlyArray<Dialect> = [OpenAiChat, AnthropicMessages, OpenAiResponses, OpenAiEmbeddings, OpenAiCompletions]

/**
 * The dialect to send a client's request in, to a provider speaking `speaks`: the client's own when
 * the provider speaks it (a passthrough), else the first the table crosses to; undefined: none.
 */
export const dialectFor = (client: DialectId, speaks: ReadonlyArray<DialectId>): DialectId | undefined => {
  if (speaks.includes(client)) return client
  const row = TABLE[client]
  for (const dialect of speaks) if (row[dialect] !== undefined) return dialect
  return undefined
}

/** The bridge from a client's dialect to a provider's, if there is one. */
export const bridgeFor = (client: DialectId, provider: DialectId): Bridge | undefined => TABLE[client][provider]

/** Why a request cannot go to providers of a dialect: no bridge for the pair. */
export const noBridge = (client: Dialect, provider: DialectId): BadRequest =>
  new BadRequest({
    code: "no_routable_target",
    message: `${client.endpoint} requests cannot be sent to a provider speaking ${DIALECTS[provider].endpoint} (no bridge ${client.id} -> ${provider})`
  })

/** The served dialect whose endpoint this path is, or is under (its errors are in that dialect's shape). */
export const ownerOf = (path: string): Dialect | undefined => {
  for (const dialect of SERVED) if (path.startsWith(dialect.endpoint)) return dialect
  return undefined
}
