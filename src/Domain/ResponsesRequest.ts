/**
 * The fields of an OpenAI Responses request (`POST /v1/responses`) that the proxy needs to decide
 * anything. Everything else is carried as the client's raw bytes: forwarded untouched to an OpenAI
 * provider, or translated (`Translate/ResponsesToChat.ts`) for a chat-only one.
 *
 * `input` is optional here as it is in the API (a stored prompt or conversation can stand in for
 * it); a translated target refuses a request without one, since tollgate stores nothing.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ModelName, parseJsonObject } from "./ChatRequest.js"
import { BadRequest } from "./Errors.js"

const OptionalNumber = Schema.optional(Schema.NullOr(Schema.Number.annotations({ message: () => "must be a number" })))

export const ResponsesBody = Schema.Struct({
  model: ModelName,
  input: Schema.optional(
    Schema.Union(Schema.String, Schema.Array(Schema.Unknown)).annotations({ message: () => "must be a string or an array of input items" })
  ),
  instructions: Schema.optional(Schema.NullOr(Schema.String.annotations({ message: () => "must be a string" }))),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean.annotations({ message: () => "must be a boolean" }))),
  background: Schema.optional(Schema.NullOr(Schema.Boolean.annotations({ message: () => "must be a boolean" }))),
  max_output_tokens: OptionalNumber,
  tools: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown).annotations({ message: () => "must be an array of tools" }))),
  previous_response_id: Schema.optional(Schema.NullOr(Schema.String.annotations({ message: () => "must be a string" })))
})
export type ResponsesBody = typeof ResponsesBody.Type

export interface ResponsesRequest {
  /** The client's bytes, forwarded unchanged to an OpenAI provider unless a field must change. */
  readonly raw: Uint8Array
  /** The whole parsed body (to translate it, or to rewrite a field). */
  readonly json: Record<string, unknown>
  readonly body: ResponsesBody
}

const decodeBody = Schema.decodeUnknownEither(ResponsesBody)

/** The OpenAI-style message (`` `param` what is wrong ``) of a decode failure, as `ChatRequest` words it. */
const firstIssue = (error: ParseResult.ParseError): { message: string; param: string | undefined } => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const param = issue?.path.map(String).join(".") || undefined
  if (issue === undefined || param === undefined) return { message: "invalid request body", param }
  return { message: issue._tag === "Missing" ? `\`${param}\` is required` : `\`${param}\` ${issue.message}`, param }
}

export const parse = (raw: Uint8Array): Either.Either<ResponsesRequest, BadRequest> =>
  Either.flatMap(parseJsonObject(raw), (json) =>
    Either.match(decodeBody(json), {
      onLeft: (error) => {
        const { message, param } = firstIssue(error)
        const field = param?.split(".")[0]
        return Either.left(
          new BadRequest({
            code: field === "model" ? "invalid_model" : field === "input" ? "invalid_input" : "invalid_request",
            message,
            ...(param === undefined ? {} : { param })
          })
        )
      },
      onRight: (body) => Either.right({ raw, json, body })
    }))
