/**
 * The OpenAI embeddings dialect: `POST /v1/embeddings`, `/embeddings` under an OpenAI-compatible
 * provider. Whole JSON answers only; usage is `prompt_tokens` (nothing is generated). Embeddings
 * are deterministic, so their answers are cached whatever the cache mode (`encoding_format` is part
 * of the key: float and base64 answers are stored apart).
 */
import * as Either from "effect/Either"
import { parseEmbeddings } from "../Domain/PromptRequest.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { toResponse } from "../Http/Errors.js"
import { type CacheCodec, type Dialect, parsedOf } from "../Dialect.js"
import { streamError, watch as watchChat } from "./OpenAiChat.js"
import { readWith, usageOfJson } from "./OpenAiCompletions.js"

const decoder = new TextDecoder()
const encoder = new TextEncoder()


/** An embeddings answer, read for its model and usage (it has no text). */
export const read = readWith(() => "")

const cache: CacheCodec = {
  cacheable: () => true,
  byStream: false,
  toCached: (landed, fallbackModel) => {
    if (landed.head.kind !== "Bytes") return undefined
    const answer = read(landed.chunks[0]!)
    if (!answer.valid || answer.usage === undefined) return undefined
    return { kind: "json", json: decoder.decode(landed.chunks[0]), events: [], model: answer.model ?? fallbackModel, usage: answer.usage }
  },
  serve: (answer) => encoder.encode(answer.json)
}

/** `POST /v1/embeddings`. */
export const OpenAiEmbeddings: Dialect = {
  id: "openai-embeddings",
  endpoint: "/v1/embeddings",
  upstreamPath: "/embeddings",
  parse: (raw, headers) =>
    Either.map(parseEmbeddings(raw), ({ body, json }) => parsedOf(raw, json, body, RequestFacts.fromEmbeddings(json, raw, headers), streamError)),
  errorResponse: toResponse,
  streamError,
  read,
  // Never streamed; a provider that streams anyway is watched as chat would be.
  watch: () => watchChat(false),
  usageOf: usageOfJson,
  cascadeReading: () => undefined,
  cache
}
