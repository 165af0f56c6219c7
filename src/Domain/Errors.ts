/**
 * Every failure a request can end in, typed. The HTTP edge (`Http/Errors.ts`) is the one place
 * that turns these into a status code and an OpenAI-shaped body.
 */
import * as Data from "effect/Data"

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
  /** What the client should know instead of "unknown URL": the endpoints that exist, the model that does not. */
  readonly message?: string
  readonly code?: string
}> {}

export class MethodNotAllowed extends Data.TaggedError("MethodNotAllowed")<{
  readonly method: string
  readonly path: string
  readonly allow: ReadonlyArray<string>
}> {}

/** The request (headers or body) did not arrive within `server.bodyTimeout`. */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{
  readonly limitMs: number
}> {}

/** The request's headers are larger than the listener accepts (Node's `maxHeaderSize`). */
export class HeadersTooLarge extends Data.TaggedError("HeadersTooLarge")<{}> {}

/** tollgate is stopping: the request arrived after the listener began to drain. */
export class ShuttingDown extends Data.TaggedError("ShuttingDown")<{}> {}

/** Request bodies being buffered at once would pass `server.maxBodyBytesInFlight`: try again shortly. */
export class Overloaded extends Data.TaggedError("Overloaded")<{
  readonly limitBytes: number
}> {}

/**
 * The request as built could not be sent at all: the HTTP client refused it before anything went
 * out (a header it does not allow, say). The provider was never asked, so this is no failure of
 * the provider's: never retried, never counted by a breaker.
 */
export class UnsendableRequest extends Data.TaggedError("UnsendableRequest")<{
  readonly provider: string
  readonly reason: string
}> {}

/** The provider could not be reached, or dropped the connection: refused, reset, DNS failure. */
export class UpstreamUnreachable extends Data.TaggedError("UpstreamUnreachable")<{
  readonly provider: string
  readonly reason: string
}> {}

/** The provider did not answer in time: connecting, before the first byte, between chunks, or overall. */
export class UpstreamTimeout extends Data.TaggedError("UpstreamTimeout")<{
  readonly provider: string
  readonly phase: "connect" | "firstByte" | "idle" | "total"
  readonly afterMs: number
}> {}

/** What a provider answered when it answered with an error status. Passed back to the client as is. */
interface ProviderAnswer {
  readonly provider: string
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
  /** From `retry-after-ms` or `Retry-After` (seconds or HTTP date). */
  readonly retryAfterMs: number | undefined
}

/** 429: the provider wants us to slow down. Retryable, after at least `retryAfterMs`. */
export class UpstreamRateLimited extends Data.TaggedError("UpstreamRateLimited")<ProviderAnswer> {}

/** 408, 409, 5xx, 529: the provider failed or is overloaded. Retryable. */
export class UpstreamUnavailable extends Data.TaggedError("UpstreamUnavailable")<ProviderAnswer> {}

/** Any other error status (400, 401, 404, ...): the request itself is at fault. Never retried. */
export class UpstreamRejected extends Data.TaggedError("UpstreamRejected")<ProviderAnswer> {}

/**
 * The provider answered with success, but with a body that cannot be passed on as an answer: not
 * valid JSON (cut off, say), or too large to hold whole when it has to be translated.
 */
export class UpstreamInvalidAnswer extends Data.TaggedError("UpstreamInvalidAnswer")<{
  readonly provider: string
  readonly problem: "invalid_json" | "too_large"
  readonly message: string
}> {}

/** A target was skipped because its circuit breaker is open. */
export class CircuitOpen extends Data.TaggedError("CircuitOpen")<{
  readonly target: string
  /** Until the breaker lets a probe through. */
  readonly retryAfterMs: number
}> {}

/** Every target of the route was skipped (breakers open): nothing was sent. */
export class NoTargetAvailable extends Data.TaggedError("NoTargetAvailable")<{
  readonly route: string | null
  /** Until the earliest breaker lets a probe through. */
  readonly retryAfterMs: number
}> {}

/**
 * Every target that could serve the request was left out because its provider's key variable is
 * not set on the tollgate server: a server misconfiguration, not the client's fault. Nothing was sent.
 */
export class ProviderKeyMissing extends Data.TaggedError("ProviderKeyMissing")<{
  /** `provider` and the variable its `apiKeyEnv` names, each once. */
  readonly missing: ReadonlyArray<{ readonly provider: string; readonly variable: string }>
}> {}

/**
 * A budget limit would be passed by this request (its worst-case cost was reserved against every
 * limit that applies). `retryAfterSeconds` is until the limit's window reopens; `null` when waiting
 * does not help (a per-request or per-session limit).
 */
export class BudgetExceeded extends Data.TaggedError("BudgetExceeded")<{
  /** `global`, `client <hash>`, `project <name>`, `session <id>`. */
  readonly scope: string
  readonly window: "hourly" | "daily" | "monthly" | "session" | "perRequest"
  readonly limitUsd: number
  /** Settled plus reserved spend in the window before this request. */
  readonly spentUsd: number
  readonly retryAfterSeconds: number | null
  readonly message: string
}> {}

/** The session (or this request) was stopped by an anomaly rule with `action: block`. */
export class SessionBlocked extends Data.TaggedError("SessionBlocked")<{
  readonly session: string | null
  /** `velocity`, `costAcceleration`, `repetition`, `tokenExplosion`. */
  readonly anomaly: string
  readonly retryAfterSeconds: number | null
  readonly message: string
}> {}

/**
 * The ledger cannot be written and `database.onWriteFailure` is `block`: the request is refused
 * before anything is sent, so no spend happens that the ledger and the budget cannot see.
 */
export class LedgerUnavailable extends Data.TaggedError("LedgerUnavailable")<{
  readonly retryAfterSeconds: number
}> {}

/**
 * The shared budget store (Redis) cannot be reached and `budget.onStoreDown` is `block`: a
 * request under a limit is refused rather than counted by this replica alone, which could let
 * every replica spend up to the limit.
 */
export class BudgetStoreUnavailable extends Data.TaggedError("BudgetStoreUnavailable")<{
  /** The server, password hidden. */
  readonly store: string
  readonly retryAfterSeconds: number
}> {}

/** The statuses a provider is retried on. */
const RETRYABLE_STATUS = new Set([408, 409, 429, 500, 502, 503, 504, 529])

/** Classifies a provider's error status into its typed error. */
export const fromStatus = (answer: ProviderAnswer): UpstreamRateLimited | UpstreamUnavailable | UpstreamRejected =>
  answer.status === 429
    ? new UpstreamRateLimited(answer)
    : RETRYABLE_STATUS.has(answer.status) || answer.status >= 500
    ? new UpstreamUnavailable(answer)
    : new UpstreamRejected(answer)

/** An error from one attempt at one target. */
export type UpstreamError =
  | UpstreamUnreachable
  | UpstreamTimeout
  | UpstreamRateLimited
  | UpstreamUnavailable
  | UpstreamRejected
  | UnsendableRequest

/** Worth another try (here or at the next target): the provider failed, not the request. */
export const isRetryable = (error: UpstreamError | CircuitOpen): boolean =>
  error._tag === "UpstreamUnreachable" || error._tag === "UpstreamTimeout" || error._tag === "UpstreamRateLimited" ||
  error._tag === "UpstreamUnavailable"

export type RequestError =
  | BadRequest
  | PayloadTooLarge
  | Unauthorized
  | NotFound
  | MethodNotAllowed
  | RequestTimeout
  | HeadersTooLarge
  | ShuttingDown
  | Overloaded
  | UpstreamError
  | UpstreamInvalidAnswer
  | NoTargetAvailable
  | ProviderKeyMissing
  | BudgetExceeded
  | SessionBlocked
  | LedgerUnavailable
  | BudgetStoreUnavailable

/** A stable, short error type for the ledger's `error_type` column. */
export const errorTypeOf = (error: RequestError | CircuitOpen): string => {
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
    case "RequestTimeout":
      return "request_timeout"
    case "HeadersTooLarge":
      return "headers_too_large"
    case "ShuttingDown":
      return "shutting_down"
    case "Overloaded":
      return "overloaded"
    case "UnsendableRequest":
      return "unsendable_request"
    case "CircuitOpen":
      return "circuit_open"
    case "UpstreamUnreachable":
      return "upstream_unreachable"
    case "UpstreamTimeout":
      return `upstream_timeout_${error.phase}`
    case "UpstreamRateLimited":
    case "UpstreamUnavailable":
    case "UpstreamRejected":
      return `upstream_${error.status}`
    case "UpstreamInvalidAnswer":
      return error.problem === "invalid_json" ? "invalid_upstream_json" : "upstream_answer_too_large"
    case "NoTargetAvailable":
      return "no_target_available"
    case "ProviderKeyMissing":
      return "provider_key_missing"
    case "BudgetExceeded":
      return "budget_exceeded"
    case "SessionBlocked":
      return "session_blocked"
    case "LedgerUnavailable":
      return "ledger_unavailable"
    case "BudgetStoreUnavailable":
      return "budget_store_unavailable"
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
    case "RequestTimeout":
      return 408
    case "HeadersTooLarge":
      return 431
    case "UnsendableRequest":
      return 400
    case "ShuttingDown":
    case "Overloaded":
      return 503
    case "UpstreamRateLimited":
    case "UpstreamUnavailable":
    case "UpstreamRejected":
      return error.status
    case "NoTargetAvailable":
    case "ProviderKeyMissing":
    case "LedgerUnavailable":
    case "BudgetStoreUnavailable":
      return 503
    case "BudgetExceeded":
    case "SessionBlocked":
      return 429
    case "UpstreamUnreachable":
    case "UpstreamInvalidAnswer":
      return 502
    case "UpstreamTimeout":
      return 504
  }
}
