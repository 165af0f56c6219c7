/**
 * The fields of an Anthropic Messages request that the proxy needs to decide anything. Everything
 * else is carried as the client's raw bytes (forwarded untouched to an Anthropic provider).
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ModelName, parseJsonObject } from "./ChatRequest.js"
import { BadRequest } from "./Errors.js"

export const MessagesBody = Schema.Struct({
  model: ModelName,
  messages: Schema.Array(Schema.Struct({ role: Schema.String })).annotations({ message: () => "must be an array of messages" }),
  max_tokens: Schema.optional(Schema.Number.annotations({ message: () => "must be a number" })),
  stream: Schema.optional(Schema.Boolean)
})
export type MessagesBody = typeof MessagesBody.Type

export interface MessagesRequest {
  readonly json: Record<string, unknown>
  readonly body: MessagesBody
}

const decodeBody = Schema.decodeUnknownEither(MessagesBody)

export const parse = (raw: Uint8Array): Either.Either<MessagesRequest, BadRequest> =>
  Either.flatMap(parseJsonObject(raw), (json) =>
    Either.match(decodeBody(json), {
      onLeft: (error) => {
        const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
        const param = issue?.path.map(String).join(".") || undefined
        const message = issue === undefined || param === undefined
          ? "invalid request body"
          : issue._tag === "Missing"
          ? `${param}: Field required`
          : `${param}: ${issue.message}`
        return Either.left(new BadRequest({ code: "invalid_request", message, ...(param === undefined ? {} : { param }) }))
      },
      onRight: (body) => Either.right({ json, body })
    }))
