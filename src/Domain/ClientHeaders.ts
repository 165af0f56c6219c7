/**
 * Limits on the strings a client chooses in its headers. `x-tollgate-project` and
 * `x-tollgate-session` key budget counters, cache tenants and ledger rows, so each is bounded in
 * length and free of control characters (a 400 otherwise); free-form ones the ledger keeps (the
 * user agent) are clipped.
 */
import { BadRequest } from "./Errors.js"

/** Longest project or session name accepted. */
export const MAX_LABEL_LENGTH = 128

/** Longest free-form header value kept in a ledger row. */
export const MAX_KEPT_LENGTH = 256

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

const labelProblem = (name: string, value: string | undefined): BadRequest | undefined => {
  if (value === undefined) return undefined
  if (value.length > MAX_LABEL_LENGTH) {
    return new BadRequest({ code: "invalid_header", message: `The ${name} header may be at most ${MAX_LABEL_LENGTH} characters long` })
  }
  if (CONTROL.test(value)) {
    return new BadRequest({ code: "invalid_header", message: `The ${name} header may not contain control characters` })
  }
  return undefined
}

/**
 * The session a request belongs to: `x-tollgate-session`, else the one Claude Code sends on
 * every request of a conversation (so its sessions get budgets and ledger rows with no setup).
 */
export const sessionOf = (headers: Readonly<Record<string, string | undefined>>): string | undefined =>
  headers["x-tollgate-session"] ?? headers["x-claude-code-session-id"]

/** Why this request's project or session header is refused, if it is. */
export const problemOf = (headers: Readonly<Record<string, string | undefined>>): BadRequest | undefined =>
  labelProblem("x-tollgate-project", headers["x-tollgate-project"]) ??
    (headers["x-tollgate-session"] !== undefined
      ? labelProblem("x-tollgate-session", headers["x-tollgate-session"])
      : labelProblem("x-claude-code-session-id", headers["x-claude-code-session-id"]))

/** A free-form value as the ledger keeps it: at most `MAX_KEPT_LENGTH` characters. */
export const kept = (value: string | undefined): string | null =>
  value === undefined ? null : value.length > MAX_KEPT_LENGTH ? value.slice(0, MAX_KEPT_LENGTH) : value
