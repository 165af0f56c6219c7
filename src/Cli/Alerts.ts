/** `tollgate alerts list`: budget alerts (thresholds, breaches, anomalies) stored in the ledger. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Alerts from "../Budget/Alerts.js"
import * as Money from "../Domain/Money.js"
import { configOption, dbOption, ledgerLayer, parseSince, jsonOption } from "./Shared.js"
import { renderTable } from "./Stats.js"

const time = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z")

const list = Command.make(
  "list",
  {
    since: Options.text("since").pipe(
      Options.withDescription("Alerts from this window: 30m, 24h, 7d, a date (2025-06-01) or all"),
      Options.withDefault("7d")
    ),
    json: jsonOption,
    config: configOption,
    db: dbOption
  },
  (flags) =>
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
).pipe(Command.withDescription("List budget alerts (thresholds, breaches, anomalies) and whether the webhook got them"))

export const alerts = Command.make("alerts").pipe(
  Command.withDescription("Budget alerts stored in the ledger"),
  Command.withSubcommands([list])
)
