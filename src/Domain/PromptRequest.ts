/**
 * The fields of the one-prompt OpenAI requests that the proxy needs to decide anything:
 * embeddings (`POST /v1/embeddings`: `model`, `input`) and legacy completions
 * (`POST /v1/completions`: `model`, `prompt`, `stream`, `max_tokens`). Everything else goes to the
 * provider as the client's bytes.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ModelName, parseJsonObject } from "./ChatRequest.js"
import { BadRequest } from "./Errors.js"

const Prompt = Schema.Union(Schema.String, Schema.Array(Schema.Unknown)).annotations({
  message: () => "must be a string or an array of strings or token ids"
})

export const EmbeddingsBody = Schema.Struct({ model: ModelName, input: Prompt })

export const CompletionsBody = Schema.Struct({
  model: ModelName,
  prompt: Prompt,
  stream: Schema.optional(Schema.NullOr(Schema.Boolean.annotations({ message: () => "must be a boolean" }))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number.annotations({ message: () => "must be a number" })))
})

/** A body's first problem, worded as OpenAI words it (`` `param` what is wrong ``). */
const problem = (error: ParseResult.ParseError): BadRequest => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const param = issue?.path.map(String).join(".") || undefined
  const message = issue === undefined || param === undefined
    ? "invalid request body"
    : issue._tag === "Missing"
    ? `\`${param}\` is required`
    : `\`${param}\` ${issue.message}`
  return new BadRequest({ code: param === "model" ? "invalid_model" : "invalid_request", message, ...(param === undefined ? {} : { param }) })
}

const parser = <A extends { readonly model: string }>(schema: Schema.Schema<A, any>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (raw: Uint8Array): Either.Either<{ readonly json: Record<string, unknown>; readonly body: A }, BadRequest> =>
    Either.flatMap(parseJsonObject(raw), (json) => Either.mapBoth(decode(json), { onLeft: problem, onRight: (body) => ({ json, body }) }))
}

export const parseEmbeddings = parser(EmbeddingsBody)
export const parseCompletions = parser(CompletionsBody)
