/** `tollgate alerts list`: budget alerts (thresholds, breaches, anomalies) stored in the ledger. */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Alerts from "../Budget/Alerts.js"
import * as Money from "../Domain/Money.js"
import { ledgerLayer } from "./Open.js"
import { parseSince } from "./Shared.js"
import { renderTable } from "./Table.js"

const time = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z")

export const list = (flags: {
  readonly since: string
  readonly json: boolean
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const sinceMs = yield* parseSince(flags.since)
    const rows = yield* Alerts.list(sinceMs).pipe(Effect.provide(ledgerLayer(flags)))
    if (flags.json) {
      return yield* Console.log(JSON.stringify(rows.map((r) => ({
        time: new Date(r.ts).toISOString(),
        kind: r.kind,
        scope: r.scope,
        window: r.time_window,
        threshold: r.threshold,
        limitUsd: Money.jsonOrNull(r.limit_usd),
        spentUsd: Money.jsonOrNull(r.spent_usd),
        anomaly: r.anomaly,
        message: r.message,
        delivered: r.delivered_at === null ? null : new Date(r.delivered_at).toISOString(),
        attempts: r.attempts
      })), null, 2))
    }
    if (rows.length === 0) return yield* Console.log(`no alerts since ${time(sinceMs)}`)
    yield* Console.log(renderTable(
      ["TIME", "KIND", "SCOPE", "DELIVERED", "MESSAGE"],
      rows.map((r) => [time(r.ts), r.kind, r.scope, r.delivered_at === null ? (r.attempts > 0 ? "failed" : "-") : "yes", r.message])
    ))
  })
