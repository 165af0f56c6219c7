/**
 * The one place where a typed error becomes an HTTP response: an OpenAI-shaped body
 * `{"error":{"message","type","code"}}` with the right status. Never a stack trace.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import {
  type RequestError,
  statusOf,
  type UpstreamRateLimited,
  type UpstreamRejected,
  type UpstreamUnavailable
} from "../Domain/Errors.js"
import { anthropicErrorToOpenAi, openAiErrorToAnthropic } from "../Translate.js"
import { anthropicErrorTypeOf } from "../Translate/Common.js"

export interface ErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly code: string | null; readonly param?: string }
}

const bodyOf = (error: RequestError): ErrorBody => {
  switch (error._tag) {
    case "BadRequest":
      return {
        error: {
          message: error.message,
          type: "invalid_request_error",
          code: error.code,
          ...(error.param === undefined ? {} : { param: error.param })
        }
      }
    case "PayloadTooLarge":
      return {
        error: {
          message: `Request body is larger than the limit of ${error.limitBytes} bytes`,
          type: "invalid_request_error",
          code: "payload_too_large"
        }
      }
    case "Unauthorized":
      return { error: { message: error.message, type: "authentication_error", code: "invalid_api_key" } }
    case "NotFound":
      return {
        error: {
          message: error.message ?? `Unknown request URL: ${error.method} ${error.path}`,
          type: "invalid_request_error",
          code: error.code ?? "unknown_url"
        }
      }
    case "MethodNotAllowed":
      return {
        error: {
          message: `Method ${error.method} is not allowed on ${error.path}; use ${error.allow.join(", ")}`,
          type: "invalid_request_error",
          code: "method_not_allowed"
        }
      }
    case "RequestTimeout":
      return {
        error: {
          message: `The request did not arrive within ${error.limitMs} ms (server.bodyTimeout)`,
          type: "invalid_request_error",
          code: "request_timeout"
        }
      }
    case "HeadersTooLarge":
      return { error: { message: "Request headers are too large", type: "invalid_request_error", code: "headers_too_large" } }
    case "ShuttingDown":
      return {
        error: { message: "tollgate is shutting down and takes no new requests; retry against another instance or once it is back", type: "server_error", code: "shutting_down" }
      }
    case "Overloaded":
      return {
        error: {
          message: `tollgate is already reading ${error.limitBytes} bytes of request bodies (server.maxBodyBytesInFlight); retry shortly`,
          type: "server_error",
          code: "overloaded"
        }
      }
    case "UnsendableRequest":
      return {
        error: {
          message: `The request could not be sent to provider "${error.provider}": ${error.reason}`,
          type: "invalid_request_error",
          code: "unsendable_request"
        }
      }
    case "UpstreamUnreachable":
      return {
        error: {
          message: `Provider "${error.provider}" could not be reached: ${error.reason}`,
          type: "upstream_error",
          code: "upstream_unreachable"
        }
      }
    case "UpstreamTimeout":
      return {
        error: {
          message: `Provider "${error.provider}" timed out (${TIMEOUT_PHASES[error.phase]}, ${error.afterMs} ms)`,
          type: "upstream_error",
          code: "upstream_timeout"
        }
      }
    case "UpstreamInvalidAnswer":
      return { error: { message: error.message, type: "upstream_error", code: "upstream_invalid_answer" } }
    case "NoTargetAvailable":
      return {
        error: {
          message: `Every provider for ${error.route === null ? "this model" : `route "${error.route}"`} is failing and has been taken out of rotation; retry in ${Math.ceil(error.retryAfterMs / 1000)} s`,
          type: "upstream_error",
          code: "no_target_available"
        }
      }
    case "ProviderKeyMissing":
      return {
        error: {
          message: `tollgate has no key for ${
            error.missing.map((m) => `provider "${m.provider}" (${m.variable} is not set)`).join(", ")
          }: set it where tollgate runs and restart tollgate`,
          type: "server_error",
          code: "provider_key_missing"
        }
      }
    case "BudgetExceeded":
      return { error: { message: error.message, type: "budget_exceeded", code: `budget_${error.window}` } }
    case "SessionBlocked":
      return { error: { message: error.message, type: "budget_exceeded", code: "session_blocked" } }
    case "LedgerUnavailable":
      return {
        error: {
          message: "tollgate cannot write its cost ledger, so it refuses requests until it can (database.onWriteFailure: block); see its log",
          type: "server_error",
          code: "ledger_unavailable"
        }
      }
    case "BudgetStoreUnavailable":
      return {
        error: {
          message: `tollgate cannot reach its shared budget store (${error.store}), so it refuses requests under a budget limit ` +
            "until it can (budget.onStoreDown: block); see its log",
          type: "server_error",
          code: "budget_store_unavailable"
        }
      }
    case "UpstreamRateLimited":
    case "UpstreamUnavailable":
    case "UpstreamRejected":
      // Not used: the provider's own body is passed through (see toResponse).
      return { error: { message: `Provider "${error.provider}" answered ${error.status}`, type: "upstream_error", code: null } }
  }
}

const TIMEOUT_PHASES = {
  connect: "connecting",
  firstByte: "waiting for the first byte",
  idle: "waiting for the next chunk",
  total: "overall"
} as const

const PASSED_THROUGH = new Set(["content-type", "retry-after", "retry-after-ms", "x-request-id"])

/** The provider's error answer, in the shape the client speaks (translated only when the shapes differ). */
const providerAnswer = (
  error: UpstreamRateLimited | UpstreamUnavailable | UpstreamRejected,
  headers: Readonly<Record<string, string>>,
  shape: "openai" | "anthropic"
): HttpServerResponse.HttpServerResponse => {
  const passed: Record<string, string> = { ...headers }
  for (const [name, value] of Object.entries(error.headers)) {
    if (PASSED_THROUGH.has(name) || name.startsWith("x-ratelimit-")) passed[name] = value
  }
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(error.body))
  } catch {
    json = undefined
  }
  const anthropicShaped = typeof json === "object" && json !== null && (json as { type?: unknown }).type === "error"
  if (json !== undefined && shape === "anthropic" && !anthropicShaped) {
    return HttpServerResponse.unsafeJson(openAiErrorToAnthropic(json, error.status), { status: error.status, headers: passed })
  }
  if (shape === "openai" && anthropicShaped) {
    return HttpServerResponse.unsafeJson(anthropicErrorToOpenAi(json), { status: error.status, headers: passed })
  }
  // Same shape: the provider's error goes back unchanged, its status, its body, its type.
  return HttpServerResponse.uint8Array(error.body, { status: error.status, headers: passed })
}

const headersOf = (error: RequestError, headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> =>
  error._tag === "MethodNotAllowed"
    ? { ...headers, allow: error.allow.join(", ") }
    : error._tag === "NoTargetAvailable"
    ? { ...headers, "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }
    : error._tag === "Overloaded"
    ? { ...headers, "retry-after": "1" }
    : (error._tag === "BudgetExceeded" || error._tag === "SessionBlocked" || error._tag === "LedgerUnavailable" ||
        error._tag === "BudgetStoreUnavailable") &&
        error.retryAfterSeconds !== null
    ? { ...headers, "retry-after": String(Math.max(1, Math.ceil(error.retryAfterSeconds))) }
    : headers

const isProviderAnswer = (error: RequestError): error is UpstreamRateLimited | UpstreamUnavailable | UpstreamRejected =>
  error._tag === "UpstreamRateLimited" || error._tag === "UpstreamUnavailable" || error._tag === "UpstreamRejected"

/** The error answer on OpenAI routes: `{"error":{"message","type","code"}}`. */
export const toResponse = (
  error: RequestError,
  headers: Readonly<Record<string, string>> = {}
): HttpServerResponse.HttpServerResponse =>
  isProviderAnswer(error)
    ? providerAnswer(error, headers, "openai")
    : HttpServerResponse.unsafeJson(bodyOf(error), { status: statusOf(error), headers: headersOf(error, headers) })

/** The error answer on Anthropic routes: `{"type":"error","error":{"type","message"}}`. */
export const toAnthropicResponse = (
  error: RequestError,
  headers: Readonly<Record<string, string>> = {}
): HttpServerResponse.HttpServerResponse => {
  if (isProviderAnswer(error)) return providerAnswer(error, headers, "anthropic")
  const status = statusOf(error)
  const type = error._tag === "BudgetExceeded" || error._tag === "SessionBlocked" ? "rate_limit_error" : anthropicErrorTypeOf(status)
  return HttpServerResponse.unsafeJson(
    { type: "error", error: { type, message: bodyOf(error).error.message } },
    { status, headers: headersOf(error, headers) }
  )
}

/** The error's body in the OpenAI shape, for the listener to write on a socket it could not parse. */
export const errorBodyOf: (error: RequestError) => ErrorBody = bodyOf
