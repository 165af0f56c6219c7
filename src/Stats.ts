/**
 * The ledger's summary, one shape for every surface that shows it: `tollgate stats --json`,
 * `GET /stats` on the public listener and `GET /admin/stats` on the admin one.
 */
import * as Effect from "effect/Effect"
import * as Money from "./Domain/Money.js"
import * as Ledger from "./Ledger.js"
import * as Outbox from "./Telemetry/Outbox.js"

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** The groupings a summary can be cut by. */
export const GROUPS: ReadonlyArray<Ledger.GroupBy> = ["model", "provider", "route", "project", "session", "day"]

/**
 * The start (Unix ms) of a window written as `90s`, `30m`, `24h`, `7d`, `2w`, `all` (0) or a date
 * (`2025-06-01`); undefined when it is none of those.
 */
export const sinceOf = (text: string, now: number): number | undefined => {
  const trimmed = text.trim()
  if (trimmed === "all") return 0
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(trimmed)
  if (match !== null) return now - Number(match[1]) * UNITS[match[2]!]!
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : date
}

/**
 * What `tollgate stats --json` prints: the rows (amounts rounded for JSON), unpriced models, lost
 * rows, and with `ingest` (cloud ingest is configured) the rows not yet sent, whatever the window.
 */
export const summary = (options: { readonly sinceMs: number; readonly by: Ledger.GroupBy | undefined; readonly ingest?: boolean }) =>
  Effect.map(
    Effect.all([
      Ledger.stats(options),
      Ledger.unpriced({ sinceMs: options.sinceMs }),
      Ledger.losses,
      options.ingest === true ? Outbox.backlog : Effect.succeed(undefined)
    ]),
    ([rows, unpriced, lost, backlog]) => ({
      since: new Date(options.sinceMs).toISOString(),
      by: options.by ?? null,
      rows: rows.map((r) => ({ ...r, costUsd: Money.json(r.costUsd), savedUsd: Money.json(r.savedUsd) })),
      unpriced,
      lost,
      ...(backlog === undefined ? {} : {
        ingest: { backlog: backlog.rows, oldestUnsent: backlog.oldest === null ? null : new Date(backlog.oldest).toISOString() }
      })
    })
  )

export type Summary = Effect.Effect.Success<ReturnType<typeof summary>>

/** The error text of a `since` that is not a window, `all` or a date. */
export const sinceProblem = (value: string): string =>
  `since: expected a window such as 30m, 24h or 7d, "all", or a date such as 2025-06-01; got "${value}"`

const GROUP_NAMES = new Set<string>(GROUPS)

/** A query's options that are not valid: what to answer (400). */
export interface OptionsProblem {
  readonly code: "invalid_since" | "invalid_by"
  readonly message: string
}

/**
 * The summary's options from a URL's query (`?since=24h&by=model`; `since` defaults to 24h as in
 * `tollgate stats`), or what is wrong with them.
 */
export const optionsOf = (url: string, now: number): { readonly sinceMs: number; readonly by: Ledger.GroupBy | undefined } | OptionsProblem => {
  const query = new URL(url, "http://tollgate").searchParams
  const since = query.get("since") ?? "24h"
  const sinceMs = sinceOf(since, now)
  if (sinceMs === undefined) return { code: "invalid_since", message: sinceProblem(since) }
  const by = query.get("by") ?? undefined
  if (by !== undefined && !GROUP_NAMES.has(by)) return { code: "invalid_by", message: `by: expected one of ${GROUPS.join(", ")}; got "${by}"` }
  return { sinceMs, by: by as Ledger.GroupBy | undefined }
}
