/**
 * The fields of an OpenAI chat-completions request that the proxy needs to decide anything.
 * Everything else in the body is carried as the client's raw bytes and forwarded untouched.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { BadRequest } from "./Errors.js"

/** Longest model name accepted. */
export const MAX_MODEL_LENGTH = 256

/** Printable ASCII, no space at either end: a model name goes into header values and log lines. */
const MODEL_NAME = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

/** A model name tollgate can route, log and send on; anything else is a 400 before anything is sent. */
export const isModelName = (model: string): boolean => model.length <= MAX_MODEL_LENGTH && MODEL_NAME.test(model)

/** The `model` field of every endpoint's body. */
export const ModelName = Schema.String.annotations({ message: () => "must be a non-empty string" }).pipe(
  Schema.nonEmptyString({ message: () => "must be a non-empty string" }),
  Schema.filter((model) =>
    isModelName(model) ||
    `must be at most ${MAX_MODEL_LENGTH} printable ASCII characters, without control characters or spaces at either end`
  )
)

const Message = Schema.Struct({
  role: Schema.String.annotations({ message: () => "expected a string role" })
})

export const ChatBody = Schema.Struct({
  model: ModelName,
  messages: Schema.Array(Message).annotations({ message: () => "must be an array of messages" }).pipe(
    Schema.filter((messages) => messages.length > 0 || "must contain at least one message")
  ),
  stream: Schema.optional(Schema.Boolean),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Number))
})
export type ChatBody = typeof ChatBody.Type

export interface ChatRequest {
  /** The client's bytes, forwarded unchanged unless the proxy must change a field. */
  readonly raw: Uint8Array
  /** The whole parsed body (to rewrite a field, or for the simulated model). */
  readonly json: Record<string, unknown>
  readonly body: ChatBody
}

const decodeBody = Schema.decodeUnknownEither(ChatBody)

const isPlainObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isOptionalNumber = (u: unknown): boolean => u === undefined || u === null || typeof u === "number"

/**
 * The usual body, without Schema's walk over every message (which builds a decoded copy of each):
 * when the fields decisions read are plainly well-formed, they are taken as they are. Anything
 * else (and so every error) goes through `ChatBody`, which says exactly what is wrong. Only a body
 * `ChatBody` accepts passes here, with the same field values (`test/unit/ChatRequest.test.ts`).
 */
export const plainBody = (json: Record<string, unknown>): ChatBody | undefined => {
  const { model, messages, stream, stream_options, max_tokens, max_completion_tokens } = json
  if (typeof model !== "string" || model.length === 0 || !isModelName(model)) return undefined
  if (!Array.isArray(messages) || messages.length === 0) return undefined
  for (const message of messages) if (!isPlainObject(message) || typeof message.role !== "string") return undefined
  if (stream !== undefined && typeof stream !== "boolean") return undefined
  if (stream_options !== undefined && stream_options !== null) {
    if (!isPlainObject(stream_options)) return undefined
    if (stream_options.include_usage !== undefined && typeof stream_options.include_usage !== "boolean") return undefined
  }
  if (!isOptionalNumber(max_tokens) || !isOptionalNumber(max_completion_tokens)) return undefined
  const body: { -readonly [K in keyof ChatBody]: ChatBody[K] } = { model, messages: messages as ChatBody["messages"] }
  if (stream !== undefined) body.stream = stream
  if (stream_options !== undefined) {
    body.stream_options = stream_options === null
      ? null
      : stream_options.include_usage === undefined
      ? {}
      : { include_usage: stream_options.include_usage as boolean }
  }
  if (max_tokens !== undefined) body.max_tokens = max_tokens as number | null
  if (max_completion_tokens !== undefined) body.max_completion_tokens = max_completion_tokens as number | null
  return body
}
const decoder = new TextDecoder()

const firstIssue = (error: ParseResult.ParseError): { message: string; param: string | undefined } => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const param = issue?.path.map(String).join(".") || undefined
  if (issue === undefined || param === undefined) return { message: "invalid request body", param }
  return { message: issue._tag === "Missing" ? `\`${param}\` is required` : `\`${param}\` ${issue.message}`, param }
}

/** Deepest nesting of arrays and objects a request body may have: deeper, it is refused before it is parsed. */
export const MAX_JSON_DEPTH = 128

const OPEN_OBJECT = 0x7b
const OPEN_ARRAY = 0x5b

/** At least `n` bytes equal to `byte` in `raw` (a native search: no loop over every byte). */
const hasAtLeast = (raw: Uint8Array, byte: number, n: number): boolean => {
  let at = -1
  for (let found = 0; found < n; found++) {
    at = raw.indexOf(byte, at + 1)
    if (at === -1) return false
  }
  return true
}

/**
 * The deepest nesting of arrays and objects in a JSON text, stopping once past `limit` (brackets
 * inside strings are not counted). Bodies with few brackets cannot be deep and are not scanned.
 */
export const depthPast = (raw: Uint8Array, limit: number): boolean => {
  if (!hasAtLeast(raw, OPEN_OBJECT, 1 + (limit >> 1)) && !hasAtLeast(raw, OPEN_ARRAY, 1 + (limit >> 1))) {
    // Fewer than limit/2 + 1 of each: fewer than limit + 1 in all, so no deeper than the limit.
    return false
  }
  let depth = 0
  let inString = false
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > limit) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/**
 * The body as a JSON object, or the 400 that says why it is not one (shared by every endpoint).
 * Nesting is bounded first: every later walk of the body (cache key, token count, translation)
 * recurses, so a client must not choose its depth.
 */
export const parseJsonObject = (raw: Uint8Array): Either.Either<Record<string, unknown>, BadRequest> => {
  if (depthPast(raw, MAX_JSON_DEPTH)) {
    return Either.left(
      new BadRequest({
        code: "json_too_deep",
        message: `The JSON body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep, tollgate's limit`
      })
    )
  }
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(raw))
  } catch (e) {
    return Either.left(
      new BadRequest({
        code: "invalid_json",
        message: `We could not parse the JSON body of your request: ${e instanceof Error ? e.message : String(e)}`
      })
    )
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(new BadRequest({ code: "invalid_body", message: "The request body must be a JSON object" }))
  }
  return Either.right(json as Record<string, unknown>)
}

export const parse = (raw: Uint8Array): Either.Either<ChatRequest, BadRequest> =>
  Either.flatMap(parseJsonObject(raw), (json) => {
    const plain = plainBody(json)
    if (plain !== undefined) return Either.right({ raw, json, body: plain })
    return Either.match(decodeBody(json), {
      onLeft: (error) => {
        const { message, param } = firstIssue(error)
        const field = param?.split(".")[0]
        return Either.left(
          new BadRequest({
            code: field === "model" ? "invalid_model" : field === "messages" ? "invalid_messages" : "invalid_request",
            message,
            ...(param === undefined ? {} : { param })
          })
        )
      },
      onRight: (body) => Either.right({ raw, json, body })
    })
  })
