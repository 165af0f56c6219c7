/**
 * Small pieces the translators share: loose JSON access (inputs are client or provider JSON that
 * was only parsed, not decoded), the typed refusal of what cannot be translated, and SSE framing.
 */
import * as Either from "effect/Either"
import { BadRequest } from "../Domain/Errors.js"

export type Json = Record<string, unknown>

export const isRecord = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value)

export const asRecord = (value: unknown): Json => (isRecord(value) ? value : {})

export const asArray = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [])

export const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

export const num = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined

/** Thrown inside a translator, turned into `Either.left` at its entry point: keeps walkers flat. */
export class Untranslatable {
  constructor(readonly error: BadRequest) {}
}

/** Refuse a request that cannot be translated without losing meaning: the client gets a 400. */
export const unsupported = (message: string, param?: string): never => {
  throw new Untranslatable(
    new BadRequest({ message, code: "unsupported_for_provider", ...(param === undefined ? {} : { param }) })
  )
}

export const invalid = (message: string, param?: string): never => {
  throw new Untranslatable(
    new BadRequest({ message, code: "invalid_request", ...(param === undefined ? {} : { param }) })
  )
}

/** Runs a translator that may throw `Untranslatable`; anything else is a bug and is rethrown. */
export const attempt = <A>(run: () => A): Either.Either<A, BadRequest> => {
  try {
    return Either.right(run())
  } catch (error) {
    if (error instanceof Untranslatable) return Either.left(error.error)
    throw error
  }
}

/** An Anthropic-style SSE event: `event:` line, then `data:`. */
export const namedEvent = (type: string, data: Json): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`

/** An OpenAI-style SSE event: `data:` only. */
export const dataEvent = (data: Json): string => `data: ${JSON.stringify(data)}\n\n`

export const DONE = "data: [DONE]\n\n"

/** A value that is absent, null, or equal to the default the target would use anyway. */
export const isUnsetOr = (value: unknown, neutral: unknown): boolean =>
  value === undefined || value === null || value === neutral

/** Anthropic `stop_reason` -> OpenAI `finish_reason`. */
export const finishReasonOf = (stopReason: unknown): string => {
  switch (stopReason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    default:
      // end_turn, stop_sequence, pause_turn, or none reported.
      return "stop"
  }
}

/** OpenAI `finish_reason` -> Anthropic `stop_reason`. */
export const stopReasonOf = (finishReason: unknown): string => {
  switch (finishReason) {
    case "length":
      return "max_tokens"
    case "tool_calls":
    case "function_call":
      return "tool_use"
    case "content_filter":
      return "refusal"
    default:
      return "end_turn"
  }
}

/** Anthropic usage (input excludes cache tokens) -> OpenAI usage (prompt includes them). */
export const openAiUsageOf = (usage: unknown): Json => {
  const u = asRecord(usage)
  const read = num(u.cache_read_input_tokens) ?? 0
  const split = asRecord(u.cache_creation)
  const write = Math.max(
    num(u.cache_creation_input_tokens) ?? 0,
    (num(split.ephemeral_5m_input_tokens) ?? 0) + (num(split.ephemeral_1h_input_tokens) ?? 0)
  )
  const prompt = (num(u.input_tokens) ?? 0) + read + write
  const completion = num(u.output_tokens) ?? 0
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read }
  }
}

/** OpenAI usage -> Anthropic usage: cached prompt tokens move out of `input_tokens`. */
export const anthropicUsageOf = (usage: unknown): Json => {
  const u = asRecord(usage)
  const cached = num(asRecord(u.prompt_tokens_details).cached_tokens) ?? 0
  return {
    input_tokens: Math.max(0, (num(u.prompt_tokens) ?? 0) - cached),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: num(u.completion_tokens) ?? 0
  }
}

/** Anthropic error `type` for an HTTP status (what Anthropic itself would send). */
export const anthropicErrorTypeOf = (status: number): string => {
  switch (status) {
    case 400:
      return "invalid_request_error"
    case 401:
      return "authentication_error"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 413:
      return "request_too_large"
    case 429:
      return "rate_limit_error"
    case 503:
    case 529:
      return "overloaded_error"
    default:
      return status >= 500 ? "api_error" : "invalid_request_error"
  }
}
