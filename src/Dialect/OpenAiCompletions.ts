/**
 * The legacy OpenAI completions dialect: `POST /v1/completions` (code-completion tools still use
 * it), `/completions` under an OpenAI-compatible provider. JSON and SSE like chat, with `text` in
 * place of messages; usage on a stream is asked for as on chat. Not cached: few clients repeat a
 * completion exactly, and its stream cannot be rebuilt from chat's cache format.
 */
import * as Either from "effect/Either"
import { parseCompletions } from "../Domain/PromptRequest.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import { fromOpenAi } from "../Domain/Usage.js"
import { toResponse } from "../Http/Errors.js"
import { type AnswerReading, type Dialect, jsonObjectOf, parsedOf, type ReadAnswer } from "../Dialect.js"
import { streamError, watch as watchChat } from "./OpenAiChat.js"



const textOf = (choices: unknown): string =>
  Array.isArray(choices) ? choices.map((c: { text?: unknown }) => (typeof c?.text === "string" ? c.text : "")).join("") : ""

/** An OpenAI answer with chat's usage fields (completions, embeddings), read for its model, usage and the text `textOf` finds. */
export const readWith = (textOf: (json: Record<string, unknown> | undefined) => string) => (bytes: Uint8Array): ReadAnswer => {
  const json = jsonObjectOf(bytes)
  return {
    bytes,
    model: typeof json?.model === "string" ? json.model : undefined,
    usage: fromOpenAi(json?.usage),
    completionText: () => textOf(json),
    valid: json !== undefined
  }
}

/** Usage in a whole answer's JSON, with chat's field names. */
export const usageOfJson = (json: unknown) => fromOpenAi((json as { usage?: unknown } | undefined)?.usage)

/** A completion, read for its model, usage and text. */
export const read = readWith((json) => textOf(json?.choices))

const cascadeReading = (bytes: Uint8Array): AnswerReading | undefined => {
  const json = jsonObjectOf(bytes)
  if (json === undefined || !Array.isArray(json.choices)) return undefined
  const first = json.choices[0] as { finish_reason?: unknown } | undefined
  return { text: textOf(json.choices), truncated: first?.finish_reason === "length", refused: false }
}

/** `POST /v1/completions`. */
export const OpenAiCompletions: Dialect = {
  id: "openai-completions",
  endpoint: "/v1/completions",
  upstreamPath: "/completions",
  parse: (raw, headers) =>
    Either.map(parseCompletions(raw), ({ body, json }) => parsedOf(raw, json, body, RequestFacts.fromCompletions(json, raw, headers), streamError)),
  errorResponse: toResponse,
  streamError,
  read,
  // Chunks have chat's framing (`data:` lines, a usage chunk, `[DONE]`): chat's tap reads them.
  watch: () => watchChat(false),
  usageOf: usageOfJson,
  cascadeReading,
  cache: undefined
}
