/**
 * The endpoints clients call, each in its own wire shape: how its request is parsed (only what
 * decisions need), how its errors look, and how a stream tells its client that it failed midway.
 */
import type * as Headers from "@effect/platform/Headers"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ChatRequest from "../Domain/ChatRequest.js"
import type { BadRequest, RequestError } from "../Domain/Errors.js"
import * as MessagesRequest from "../Domain/MessagesRequest.js"
import { toAnthropicResponse, toResponse } from "../Http/Errors.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import * as Sse from "../Sse.js"
import type { Shape, WireRequest } from "./Wire.js"

/** A client request, parsed. */
export interface Parsed extends WireRequest {
  /** What routing and budgets decide on (token counts computed only when asked, once). */
  readonly facts: RequestFacts.RequestFacts
  /** Estimated input tokens (the tokenizer runs only when this is used). */
  readonly estimateInput: Effect.Effect<number>
  /** The final SSE event that tells this client its stream failed. */
  readonly streamError: (message: string) => string
}

export interface Inbound {
  /** The path, as the ledger records it. */
  readonly endpoint: string
  readonly shape: Shape
  readonly parse: (raw: Uint8Array, headers: Headers.Headers) => Either.Either<Parsed, BadRequest>
  /** The error answer, in this endpoint's shape. */
  readonly errorResponse: (error: RequestError, headers: Readonly<Record<string, string>>) => HttpServerResponse.HttpServerResponse
}

/** What every endpoint's parse gives the program, from its body and the facts read from it. */
const parsed = (
  raw: Uint8Array,
  json: Record<string, unknown>,
  body: { readonly model: string; readonly stream?: boolean | undefined },
  facts: RequestFacts.RequestFacts,
  streamError: (message: string) => string
): Parsed => ({
  raw,
  json,
  model: body.model,
  stream: body.stream === true,
  facts,
  estimateInput: Effect.sync(facts.estimatedInputTokens),
  streamError
})

const openAiStreamError = (message: string) =>
  Sse.event(JSON.stringify({ error: { message, type: "upstream_error", code: "upstream_stream_error" } }))

/** `POST /v1/chat/completions`, the OpenAI chat API. */
export const OpenAiChat: Inbound = {
  endpoint: "/v1/chat/completions",
  shape: "openai",
  parse: (raw, headers) =>
    Either.map(ChatRequest.parse(raw), ({ body, json }) =>
      parsed(raw, json, body, RequestFacts.fromOpenAiChat(json, raw, headers), openAiStreamError)),
  errorResponse: toResponse
}

const anthropicStreamError = (message: string) =>
  `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`

/** `POST /v1/messages`, the Anthropic Messages API (what Claude Code speaks). */
export const AnthropicMessages: Inbound = {
  endpoint: "/v1/messages",
  shape: "anthropic",
  parse: (raw, headers) =>
    Either.map(MessagesRequest.parse(raw), ({ body, json }) =>
      parsed(raw, json, body, RequestFacts.fromAnthropicMessages(json, raw, headers), anthropicStreamError)),
  errorResponse: toAnthropicResponse
}
