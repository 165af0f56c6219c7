/**
 * The OpenAI chat dialect: `POST /v1/chat/completions` for clients, `/chat/completions` under an
 * OpenAI-compatible provider's base URL. Its answers are the ones tollgate caches (as chat
 * completions or their chunks; `Cache/Answer.ts` turns one into the other).
 */
import * as Either from "effect/Either"
import * as Cache from "../Cache/Answer.js"
import { isCacheableRequest } from "../Cache/Key.js"
import * as ChatRequest from "../Domain/ChatRequest.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { fromOpenAi } from "../Domain/Usage.js"
import { toResponse } from "../Http/Errors.js"
import * as Sse from "../Sse.js"
import { type AnswerReading, type CacheCodec, type CacheEntry, type Dialect, parsedOf, type ReadAnswer, type StreamWatch, watchOf } from "../Dialect.js"

const decoder = new TextDecoder()
const encoder = new TextEncoder()

export const streamError = (message: string) =>
  Sse.event(JSON.stringify({ error: { message, type: "upstream_error", code: "upstream_stream_error" } }))

const completionText = (choices: unknown): string =>
  Array.isArray(choices)
    ? choices
      .map((c: { message?: { content?: unknown; tool_calls?: unknown } }) =>
        `${typeof c.message?.content === "string" ? c.message.content : ""}${c.message?.tool_calls === undefined ? "" : JSON.stringify(c.message.tool_calls)}`
      )
      .join("")
    : ""

/** A chat completion, read for its model, usage and text. */
export const read = (bytes: Uint8Array): ReadAnswer => {
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
    completionText: () => completionText(json?.choices),
    valid: json !== undefined
  }
}

/** Watches a chat stream, removing its usage chunk when tollgate asked for it and the client did not. */
export const watch = (stripUsageChunk: boolean): StreamWatch => {
  const tap = new Sse.SseTap(stripUsageChunk, Sse.FOLD_PAST)
  return watchOf(tap, () => fromOpenAi(tap.usage))
}

const watchAsItIs = (): StreamWatch => watch(false)

const cascadeReading = (bytes: Uint8Array): AnswerReading | undefined => {
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
  if (typeof json !== "object" || json === null) return undefined
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

/** The client asked for the usage chunk on its stream. */
export const includeUsageOf = (json: Readonly<Record<string, unknown>>): boolean =>
  (json.stream_options as { include_usage?: unknown } | null | undefined)?.include_usage === true

/**
 * A hit's JSON body, encoded once per stored answer: the memory tier hands back the same answer
 * object on every hit, so repeats neither assemble nor encode it again (docs/performance.md, figures).
 */
const jsonBodies = new WeakMap<Cache.CachedAnswer, Uint8Array>()
const jsonBodyOf = (answer: Cache.CachedAnswer): Uint8Array => {
  let bytes = jsonBodies.get(answer)
  if (bytes === undefined) {
    bytes = encoder.encode(Cache.jsonBody(answer))
    jsonBodies.set(answer, bytes)
  }
  return bytes
}

/**
 * A hit's SSE body, every event in one piece, encoded once per stored answer and usage option.
 * The answer is complete, so nothing is gained by sending its events one by one, and an Effect
 * `Stream` of events cost CPU per event.
 */
const sseBodies = [new WeakMap<Cache.CachedAnswer, Uint8Array>(), new WeakMap<Cache.CachedAnswer, Uint8Array>()] as const
const sseBodyOf = (answer: Cache.CachedAnswer, includeUsage: boolean): Uint8Array => {
  const bodies = sseBodies[includeUsage ? 1 : 0]
  let bytes = bodies.get(answer)
  if (bytes === undefined) {
    bytes = encoder.encode(Cache.sseEvents(answer, includeUsage).join(""))
    bodies.set(answer, bytes)
  }
  return bytes
}

/** Chat completions and their streams, stored as they came; either serves both kinds of request. */
const cache: CacheCodec = {
  cacheable: isCacheableRequest,
  byStream: false,
  toCached: (landed, fallbackModel, mode) => {
    let entry: CacheEntry
    if (landed.head.kind === "Bytes") {
      const json = decoder.decode(landed.chunks[0])
      let parsed: { model?: unknown; usage?: unknown }
      try {
        parsed = JSON.parse(json) as typeof parsed
      } catch {
        return undefined
      }
      const usage = fromOpenAi(parsed.usage)
      if (usage === undefined) return undefined
      entry = { kind: "json", json, events: [], model: typeof parsed.model === "string" ? parsed.model : fallbackModel, usage }
    } else {
      const tap = new Sse.SseTap(false)
      for (const chunk of landed.chunks) tap.push(chunk)
      tap.end()
      if (!tap.done) return undefined
      const usage = fromOpenAi(tap.usage)
      if (usage === undefined) return undefined
      entry = { kind: "stream", json: "", events: tap.payloads, model: tap.model ?? fallbackModel, usage }
    }
    return mode === "deterministic" && Cache.hasToolCalls(entry) ? undefined : entry
  },
  serve: (answer, request) => request.stream ? sseBodyOf(answer, includeUsageOf(request.json)) : jsonBodyOf(answer)
}

/** `POST /v1/chat/completions`, the OpenAI chat API. */
export const OpenAiChat: Dialect = {
  id: "openai-chat",
  endpoint: "/v1/chat/completions",
  upstreamPath: "/chat/completions",
  parse: (raw, headers) =>
    Either.map(ChatRequest.parse(raw), ({ body, json }) => parsedOf(raw, json, body, RequestFacts.fromOpenAiChat(json, raw, headers), streamError)),
  errorResponse: toResponse,
  streamError,
  read,
  watch: watchAsItIs,
  usageOf: fromOpenAi,
  cascadeReading,
  cache
}
