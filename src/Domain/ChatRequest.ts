/**
 * The fields of an OpenAI chat-completions request that the proxy needs to decide anything.
 * Everything else in the body is carried as the client's raw bytes and forwarded untouched.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { BadRequest } from "./Errors.js"

const Message = Schema.Struct({
  role: Schema.String.annotations({ message: () => "expected a string role" })
})

export const ChatBody = Schema.Struct({
  model: Schema.String.pipe(Schema.nonEmptyString({ message: () => "must be a non-empty string" })).annotations({
    message: () => "must be a non-empty string"
  }),
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
 * `ChatBody` accepts passes here, with the same field values (`test/ChatRequest.test.ts`).
 */
export const plainBody = (json: Record<string, unknown>): ChatBody | undefined => {
  const { model, messages, stream, stream_options, max_tokens, max_completion_tokens } = json
  if (typeof model !== "string" || model.length === 0) return undefined
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

/** The body as a JSON object, or the 400 that says why it is not one (shared by every endpoint). */
export const parseJsonObject = (raw: Uint8Array): Either.Either<Record<string, unknown>, BadRequest> => {
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
