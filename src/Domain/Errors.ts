/**
 * Every failure a request can end in, typed. The HTTP edge (`Http/Errors.ts`) is the one place
 * that turns these into a status code and an OpenAI-shaped body.
 */
import { Data } from "effect"

/** The client sent something the proxy cannot accept (malformed JSON, missing `model`, ...). */
export class BadRequest extends Data.TaggedError("BadRequest")<{
  readonly message: string
  readonly code: string
  readonly param?: string
}> {}

export class PayloadTooLarge extends Data.TaggedError("PayloadTooLarge")<{
  readonly limitBytes: number
}> {}

export class Unauthorized extends Data.TaggedError("Unauthorized")<{
  readonly message: string
}> {}

export class NotFound extends Data.TaggedError("NotFound")<{
  readonly method: string
  readonly path: string
}> {}

export class MethodNotAllowed extends Data.TaggedError("MethodNotAllowed")<{
  readonly method: string
  readonly path: string
  readonly allow: ReadonlyArray<string>
}> {}

/** The provider could not be reached at all: connection refused, reset, DNS failure. */
export class UpstreamUnreachable extends Data.TaggedError("UpstreamUnreachable")<{
  readonly provider: string
  readonly reason: string
}> {}

/** The provider did not answer in time. */
export class UpstreamTimeout extends Data.TaggedError("UpstreamTimeout")<{
  readonly provider: string
  readonly phase: "headers" | "body"
  readonly afterMs: number
}> {}

/**
 * The provider answered with a non-2xx status. Its body goes back to the client unchanged;
 * `retryAfterMs` is read from `Retry-After` / `retry-after-ms` for the retry schedule.
 */
export class UpstreamHttpError extends Data.TaggedError("UpstreamHttpError")<{
  readonly provider: string
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
  readonly retryAfterMs: number | undefined
}> {}

/** The provider is configured in a way that cannot serve the request (e.g. no key). */
export class ProviderMisconfigured extends Data.TaggedError("ProviderMisconfigured")<{
  readonly provider: string
  readonly message: string
}> {}

export type UpstreamError = UpstreamUnreachable | UpstreamTimeout | UpstreamHttpError | ProviderMisconfigured

export type RequestError =
  | BadRequest
  | PayloadTooLarge
  | Unauthorized
  | NotFound
  | MethodNotAllowed
  | UpstreamError

/** A stable, short error type for the ledger's `error_type` column. */
export const errorTypeOf = (error: RequestError): string => {
  switch (error._tag) {
    case "BadRequest":
      return error.code
    case "PayloadTooLarge":
      return "payload_too_large"
    case "Unauthorized":
      return "unauthorized"
    case "NotFound":
      return "not_found"
    case "MethodNotAllowed":
      return "method_not_allowed"
    case "UpstreamUnreachable":
      return "upstream_unreachable"
    case "UpstreamTimeout":
      return "upstream_timeout"
    case "UpstreamHttpError":
      return `upstream_${error.status}`
    case "ProviderMisconfigured":
      return "provider_misconfigured"
  }
}

/** The HTTP status the client receives for an error. */
export const statusOf = (error: RequestError): number => {
  switch (error._tag) {
    case "BadRequest":
      return 400
    case "Unauthorized":
      return 401
    case "NotFound":
      return 404
    case "MethodNotAllowed":
      return 405
    case "PayloadTooLarge":
      return 413
    case "UpstreamHttpError":
      return error.status
    case "ProviderMisconfigured":
    case "UpstreamUnreachable":
      return 502
    case "UpstreamTimeout":
      return 504
  }
}
