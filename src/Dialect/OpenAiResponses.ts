/**
 * The OpenAI Responses dialect: `POST /v1/responses` for clients (Codex CLI, the Vercel AI SDK's
 * default OpenAI provider, LangChain's `useResponsesApi`), `/responses` under a provider that
 * serves it (`responsesApi`, on for OpenAI itself). Its errors have OpenAI's shape; a failed
 * stream ends with the Responses `error` event; usage comes from the terminal event
 * (`response.completed` / `response.incomplete`). Its answers are cached as the bytes they came
 * in (a stream as its whole event sequence), only for requests that store nothing (`store: false`).
 */
import * as Either from "effect/Either"
import { isCacheableRequest } from "../Cache/Key.js"
import { parse as parseRequest } from "../Domain/ResponsesRequest.js"
import { fromResponses as factsOf } from "../Domain/ResponsesFacts.js"
import { toResponse } from "../Http/Errors.js"
import * as Sse from "../Sse.js"
import { fromResponses, readResponse, ResponsesSseTap } from "../Sse/Responses.js"
import { errorEvent } from "../Translate/StreamToResponses.js"
import { type AnswerReading, type CacheCodec, type Dialect, parsedOf, type ReadAnswer, type StreamWatch, watchOf, parseJson } from "../Dialect.js"

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** A whole Responses object, read for its model, usage and text. */
export const read = (bytes: Uint8Array): ReadAnswer => {
  const facts = readResponse(bytes)
  return { bytes, model: facts.model, usage: facts.usage, completionText: facts.completionText, valid: facts.valid }
}

/** Watches a Responses event stream: its bytes as they came; usage and model from its terminal event. */
export const watch = (): StreamWatch => {
  const tap = new ResponsesSseTap(Sse.FOLD_PAST)
  // The error event continues the provider's numbering.
  return Object.assign(watchOf(tap, () => tap.usage), { streamError: (message: string) => errorEvent(message, tap.lastSequence + 1) })
}


const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const cascadeReading = (bytes: Uint8Array): AnswerReading | undefined => {
  const json = parseJson(bytes)
  if (!isRecord(json) || !Array.isArray(json.output)) return undefined
  let text = ""
  let refused = false
  for (const item of json.output) {
    if (!isRecord(item) || item.type !== "message" || !Array.isArray(item.content)) continue
    for (const part of item.content) {
      if (!isRecord(part)) continue
      if (part.type === "output_text" && typeof part.text === "string") text += part.text
      if (part.type === "refusal") refused = true
    }
  }
  const incomplete = isRecord(json.incomplete_details) ? json.incomplete_details.reason : undefined
  return { text, truncated: json.status === "incomplete" && incomplete === "max_output_tokens", refused }
}

/** Requests that may be cached or shared: nothing stored upstream, nothing that refers to stored state. */
const storesNothing = (json: Readonly<Record<string, unknown>>): boolean =>
  json.store === false && json.previous_response_id == null && json.background !== true && json.conversation == null

/**
 * Answers stored as the provider sent them: a Responses object, or the whole event stream (a
 * stream is kept only when it reached its terminal event with usage). A stored stream serves only
 * stream requests and a stored object only JSON ones: one cannot be rebuilt from the other without
 * inventing ids, so the kind is part of what a hit must match.
 */
const cache: CacheCodec = {
  cacheable: (json, mode) => storesNothing(json) && isCacheableRequest(json, mode),
  byStream: true,
  toCached: (landed, fallbackModel) => {
    if (landed.head.kind === "Bytes") {
      const facts = readResponse(landed.chunks[0]!)
      if (!facts.valid || facts.usage === undefined) return undefined
      return { kind: "json", json: decoder.decode(landed.chunks[0]), events: [], model: facts.model ?? fallbackModel, usage: facts.usage }
    }
    const tap = new ResponsesSseTap()
    const text: Array<string> = []
    for (const chunk of landed.chunks) {
      tap.push(chunk)
      text.push(decoder.decode(chunk, { stream: true }))
    }
    tap.end()
    const usage = tap.usage
    if (!tap.done || usage === undefined) return undefined
    return { kind: "stream", json: text.join(""), events: [], model: tap.model ?? fallbackModel, usage }
  },
  serve: (answer) => encoder.encode(answer.json)
}

/** `POST /v1/responses`, the OpenAI Responses API. */
export const OpenAiResponses: Dialect = {
  id: "openai-responses",
  endpoint: "/v1/responses",
  upstreamPath: "/responses",
  parse: (raw, headers) =>
    Either.map(parseRequest(raw), ({ body, json }) => parsedOf(raw, json, body, factsOf(json, raw, headers), streamError)),
  errorResponse: toResponse,
  streamError: (message) => streamError(message),
  read,
  watch,
  usageOf: (json) => fromResponses(isRecord(json) ? json.usage : undefined),
  cascadeReading,
  cache,
  // Its translations remember their output items, for the client's item references.
  needsContext: true
}

function streamError(message: string): string {
  return errorEvent(message)
}
