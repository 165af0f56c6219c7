/**
 * `tollgate budget status|set|reset|unblock`.
 *
 * The CLI is a separate process from `tollgate start`. Changes are appended to the
 * `budget_control` table of the ledger file; a running server applies them within
 * `budget.refreshInterval` (5 s by default), and a server started later reads them all at start.
 * `status` rebuilds spend per open window from the ledger, as the server does at start: it shows
 * settled spend, not the reservations of requests in flight, which live only in the server's memory.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Budget from "../Budget.js"
import * as Control from "../Budget/Control.js"
import * as Config from "../Config.js"
import * as Money from "../Domain/Money.js"
import { usd } from "../Domain/Money.js"
import * as Pricing from "../Pricing.js"
import { ledgerLayer } from "./Open.js"
import { UsageError } from "./Shared.js"
import { renderTable } from "./Table.js"

// The choices `Commands.ts` offers for --scope, --window and --on-breach.
type Scope = "global" | "client" | "project" | "session"
type Window = "hourly" | "daily" | "monthly" | "session" | "perRequest"
type Action = "block" | "downgrade" | "warn" | "alert"

interface Flags {
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}

const budgetLayer = (flags: Flags) => {
  const ConfigLive = Config.layer({ configPath: Option.getOrUndefined(flags.config) })
  return Budget.layer.pipe(
    Layer.provide(Layer.mergeAll(ledgerLayer(flags), Pricing.layer.pipe(Layer.provide(ConfigLive)), ConfigLive))
  )
}

const when = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().replace(".000Z", "Z"))

/** `tollgate budget status`. */
export const status = (flags: Flags & { readonly json: boolean }) =>
  Effect.gen(function*() {
    const budget = yield* Budget.Budget
    const lines = yield* budget.status
    const blocks = yield* budget.blocks
    if (flags.json) {
      return yield* Console.log(JSON.stringify({
        // Reservations of requests in flight live in the server's memory only.
        limits: lines.map((l) => ({ ...l, spentUsd: Money.json(l.spentUsd), limitUsd: Money.json(l.limitUsd), reservedUsd: null, resetsAt: l.resetsAt === null ? null : new Date(l.resetsAt).toISOString() })),
        blockedSessions: blocks.map((b) => ({ ...b, until: new Date(b.until).toISOString() }))
      }, null, 2))
    }
    if (lines.length === 0) {
      yield* Console.log("no budget limits: set budget.limits in tollgate.yaml or use `tollgate budget set`")
    } else {
      yield* Console.log(renderTable(
        ["SCOPE", "KEY", "WINDOW", "SPENT", "LIMIT", "USED", "ON BREACH", "RESETS AT"],
        lines.map((l) => [
          l.scope,
          l.key ?? "-",
          l.window,
          usd(l.spentUsd),
          usd(l.limitUsd),
          l.limitUsd > 0 ? `${Math.floor((l.spentUsd / l.limitUsd) * 100)}%` : "-",
          l.onBreach,
          when(l.resetsAt)
        ])
      ))
      yield* Console.log("\nSPENT is settled spend from the ledger; reservations of requests in flight\nare held by the running server only.")
    }
    for (const b of blocks) yield* Console.log(`blocked: session "${b.session}" (${b.anomaly}) until ${when(b.until)}`)
  }).pipe(Effect.provide(budgetLayer(flags)))

/** `tollgate budget set`. */
export const set = (flags: Flags & {
  readonly scope: Scope
  readonly key: Option.Option<string>
  readonly window: Window
  readonly usd: Option.Option<number>
  readonly onBreach: Option.Option<Action>
  readonly unset: boolean
}) =>
  Effect.gen(function*() {
    if (flags.unset === Option.isSome(flags.usd)) {
      return yield* new UsageError({ message: "budget set: give --usd N, or --unset to remove the limit" })
    }
    const amount = Option.getOrNull(flags.usd)
    if (amount !== null && (!Number.isFinite(amount) || amount < 0)) {
      return yield* new UsageError({ message: "budget set: --usd must be a number >= 0" })
    }
    if (flags.window === "session" && flags.scope !== "session") {
      return yield* new UsageError({ message: "budget set: the session window needs --scope session" })
    }
    const key = Option.getOrUndefined(flags.key)
    yield* Control.setLimit({ scope: flags.scope, key, window: flags.window, usd: amount, onBreach: Option.getOrUndefined(flags.onBreach) })
      .pipe(Effect.provide(ledgerLayer(flags)))
    const what = `${flags.window} limit for ${flags.scope}${key === undefined ? "" : ` ${key}`}`
    yield* Console.log(amount === null ? `removed the ${what}` : `set the ${what} to ${usd(amount)}`)
    yield* Console.log("a running server applies it within budget.refreshInterval (5 s by default); a limit set here turns budgets on")
  })

/** `tollgate budget reset`. */
export const reset = (flags: Flags & {
  readonly scope: Option.Option<Scope>
  readonly key: Option.Option<string>
  readonly window: Option.Option<Window>
}) =>
  Effect.gen(function*() {
    yield* Control.reset({
      scope: Option.getOrNull(flags.scope),
      key: Option.getOrNull(flags.key),
      window: Option.getOrNull(flags.window)
    }).pipe(Effect.provide(ledgerLayer(flags)))
    yield* Console.log("spend in the matching open windows counts from now on (the ledger keeps every row)")
  })

/** `tollgate budget unblock`. */
export const unblock = (flags: Flags & { readonly session: string }) =>
  Effect.gen(function*() {
    const was = yield* Control.unblock(flags.session).pipe(Effect.provide(ledgerLayer(flags)))
    yield* Console.log(was
      ? `session "${flags.session}" unblocked (a running server applies it within budget.refreshInterval)`
      : `session "${flags.session}" was not blocked`)
  })
