/**
 * A dialect is one wire shape an LLM API speaks (OpenAI chat, Anthropic Messages, ...), as one
 * value: how a client's request in it is parsed (only what decisions need; the raw bytes kept),
 * how its errors and its stream's failure event look, how a whole answer and a stream in it are
 * read for usage, how an answer in it is cached and served again (when it can be), how a cascade
 * reads it, and, provider-side, the path a provider speaking it is sent to.
 *
 * The values live in `Dialect/` (one module per wire shape); how a request crosses from one
 * dialect to another is the bridge table in `Dialect/Bridge.ts`, which also lists the dialects
 * the proxy serves. This module holds only the interface, so that both can import it.
 */
import type * as Headers from "@effect/platform/Headers"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type { CachedAnswer } from "./Cache/Answer.js"
import type { Mode } from "./Cache/Key.js"
import type { BadRequest, RequestError } from "./Domain/Errors.js"
import type * as RequestFacts from "./Domain/RequestFacts.js"
import type { Usage } from "./Domain/Usage.js"
import type { ItemScope } from "./Dialect/Items.js"
import type { StreamWatch } from "./Proxy/StreamWatch.js"

export type { StreamWatch } from "./Proxy/StreamWatch.js"

/** A dialect's name (also what the bridge table is keyed on). */
export type DialectId = "openai-chat" | "anthropic-messages" | "openai-responses" | "openai-embeddings" | "openai-completions"

/** What a bridge needs of the client's request. */
export interface WireRequest {
  readonly raw: Uint8Array
  readonly json: Readonly<Record<string, unknown>>
  readonly model: string
  readonly stream: boolean
}

/** What a bridge may use beside the request: the items of answers it translated before, for this tenant (`Dialect/Items.ts`). */
export interface BridgeContext {
  readonly items: ItemScope
}

/** A client request, parsed. */
export interface Parsed extends WireRequest {
  /** What routing and budgets decide on (token counts computed only when asked, once). */
  readonly facts: RequestFacts.RequestFacts
  /** Estimated input tokens (the tokenizer runs only when this is used). */
  readonly estimateInput: Effect.Effect<number>
  /** The final SSE event that tells this client its stream failed (its dialect's `streamError`). */
  readonly streamError: (message: string) => string
}

/** A whole (non-streamed) answer, read (and, across dialects, put in the client's). */
export interface ReadAnswer {
  readonly bytes: Uint8Array
  readonly model: string | undefined
  readonly usage: Usage | undefined
  /** Generated text, only to estimate tokens when no usage came. */
  readonly completionText: () => string
  /** The body parsed as JSON: false for a truncated or otherwise broken answer. */
  readonly valid: boolean
}

/** What a cascade looks at in an answer. */
export interface AnswerReading {
  readonly text: string
  /** Cut by the output limit. */
  readonly truncated: boolean
  /** The provider itself flagged a refusal (OpenAI `message.refusal`, Anthropic `stop_reason: refusal`). */
  readonly refused: boolean
}

/** A whole answer (its one chunk) or a stream (its chunks), as a shared flight received it. */
export interface LandedAnswer {
  readonly head: { readonly kind: "Bytes" | "Stream" }
  readonly chunks: ReadonlyArray<Uint8Array>
}

/** What a dialect's codec stores of an answer (the cache adds who served it and what it cost). */
export type CacheEntry = Pick<CachedAnswer, "kind" | "json" | "events" | "model" | "usage">

/** How answers in a dialect are cached: what a landed answer stores, and how a stored one is served. */
export interface CacheCodec {
  /** Whether this request's answer may be cached at all in this mode (the same answer would come again). */
  readonly cacheable: (json: Readonly<Record<string, unknown>>, mode: Mode) => boolean
  /** Stored streams and JSON answers are told apart: a hit must be of the kind the request asks for. */
  readonly byStream: boolean
  /**
   * The cacheable form of a landed answer (a 200 from a target), or undefined when it must not be
   * stored: a stream without its terminal event, no usage, or (in deterministic mode) tool calls.
   */
  readonly toCached: (landed: LandedAnswer, fallbackModel: string, mode: Mode) => CacheEntry | undefined
  /** A stored answer's body for this request (JSON, or the whole SSE stream when it asked for one). */
  readonly serve: (answer: CachedAnswer, request: Parsed) => Uint8Array
}

export interface Dialect {
  readonly id: DialectId
  /** The client-facing path, as the ledger records it (and the route serving it). */
  readonly endpoint: string
  /** Path under a provider's base URL, for a provider speaking this dialect. */
  readonly upstreamPath: string
  /** The request, parsed and validated, or a 400 saying what is wrong. */
  readonly parse: (raw: Uint8Array, headers: Headers.Headers) => Either.Either<Parsed, BadRequest>
  /** An error answer, in this dialect's shape. */
  readonly errorResponse: (error: RequestError, headers: Readonly<Record<string, string>>) => HttpServerResponse.HttpServerResponse
  /** The final SSE event that tells a client of this dialect that its stream failed. */
  readonly streamError: (message: string) => string
  /** A whole answer in this dialect, read for its model, usage and text. */
  readonly read: (bytes: Uint8Array) => ReadAnswer
  /** Watches a stream in this dialect, passing its bytes as they are. */
  readonly watch: () => StreamWatch
  /** Usage in a whole answer's parsed JSON (for one too large to buffer, read from its end). */
  readonly usageOf: (json: unknown) => Usage | undefined
  /** What a cascade looks at in a whole answer; undefined when it is not one (broken, not JSON). */
  readonly cascadeReading: (bytes: Uint8Array) => AnswerReading | undefined
  /** How its answers are cached; none: its requests are never cached nor shared. */
  readonly cache: CacheCodec | undefined
  /** Its bridges use a `BridgeContext` (the Proxy makes one per request only for these). */
  readonly needsContext?: boolean | undefined
}

const decoder = new TextDecoder()

/** An answer's body as JSON, or undefined when it is not JSON (cut off, or not JSON at all). */
export const parseJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
}

/** An answer's body as a JSON object, or undefined. */
export const jsonObjectOf = (bytes: Uint8Array): Record<string, unknown> | undefined => {
  const json = parseJson(bytes)
  return typeof json === "object" && json !== null && !Array.isArray(json) ? json as Record<string, unknown> : undefined
}

/** What an SSE tap (`Sse.ts`, `Sse/`) offers a watch: the bytes through, and what it read of them. */
export interface SseTap {
  push(chunk: Uint8Array): Uint8Array
  end(): Uint8Array
  newText(): string
  completionText(): string
  completionChars(): number
  readonly events: { readonly pending: number }
  readonly model: string | undefined
  readonly done: boolean
}

/** A dialect's stream watch over its tap; `usage` reads the tap's usage in tollgate's terms. */
export const watchOf = (tap: SseTap, usage: () => Usage | undefined): StreamWatch => ({
  newText: () => tap.newText(),
  push: (chunk) => tap.push(chunk),
  end: () => tap.end(),
  usage,
  model: () => tap.model,
  done: () => tap.done,
  completionText: () => tap.completionText(),
  completionChars: () => tap.completionChars(),
  pending: () => tap.events.pending,
  whole: false
})

/** The parse every dialect gives: the client's bytes and body, the facts read from them. */
export const parsedOf = (
  raw: Uint8Array,
  json: Record<string, unknown>,
  body: { readonly model: string; readonly stream?: boolean | null | undefined },
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
