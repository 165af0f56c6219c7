/**
 * The one place where a typed error becomes an HTTP response: an OpenAI-shaped body
 * `{"error":{"message","type","code"}}` with the right status. Never a stack trace.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type RequestError, statusOf } from "../Domain/Errors.js"

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
        error: { message: `Unknown request URL: ${error.method} ${error.path}`, type: "invalid_request_error", code: "unknown_url" }
      }
    case "MethodNotAllowed":
      return {
        error: {
          message: `Method ${error.method} is not allowed on ${error.path}; use ${error.allow.join(", ")}`,
          type: "invalid_request_error",
          code: "method_not_allowed"
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
    case "NoTargetAvailable":
      return {
        error: {
          message: `Every provider for ${error.route === null ? "this model" : `route "${error.route}"`} is failing and has been taken out of rotation; retry in ${Math.ceil(error.retryAfterMs / 1000)} s`,
          type: "upstream_error",
          code: "no_target_available"
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

export const toResponse = (
  error: RequestError,
  headers: Readonly<Record<string, string>> = {}
): HttpServerResponse.HttpServerResponse => {
  if (error._tag === "UpstreamRateLimited" || error._tag === "UpstreamUnavailable" || error._tag === "UpstreamRejected") {
    // The provider's error goes back to the client unchanged: its status, its body, its type.
    const passed: Record<string, string> = { ...headers }
    for (const [name, value] of Object.entries(error.headers)) {
      if (PASSED_THROUGH.has(name) || name.startsWith("x-ratelimit-")) passed[name] = value
    }
    return HttpServerResponse.uint8Array(error.body, { status: error.status, headers: passed })
  }
  const extra = error._tag === "MethodNotAllowed"
    ? { ...headers, allow: error.allow.join(", ") }
    : error._tag === "NoTargetAvailable"
    ? { ...headers, "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }
    : headers
  return HttpServerResponse.unsafeJson(bodyOf(error), { status: statusOf(error), headers: extra })
}
