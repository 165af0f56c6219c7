/**
 * The `tollgate` command line: `start`, `stats`, `export`, `cost explain`, `route explain`,
 * `budget`, `alerts`, `prices`, `reprice`, `simulate`. `@effect/cli` gives every command `--help`, `--version`, `--completions` and
 * `--wizard`. Known failures print their message (no stack trace) and exit non-zero.
 */
import * as Command from "@effect/cli/Command"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createRequire } from "node:module"
import { alerts } from "./Cli/Alerts.js"
import { budget } from "./Cli/Budget.js"
import { cost } from "./Cli/Cost.js"
import { exportCommand } from "./Cli/Export.js"
import { prices } from "./Cli/Prices.js"
import { reprice, simulate } from "./Cli/Reprice.js"
import { route } from "./Cli/Route.js"
import { start } from "./Cli/Start.js"
import { stats } from "./Cli/Stats.js"
import { operations } from "./Cli/Operations.js"

export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version

const tollgate = Command.make("tollgate").pipe(
  Command.withDescription("Local-first LLM API proxy for OpenAI- and Anthropic-compatible providers: a cost ledger, routing, budgets that block, exact-match cache, coalescing, retries, failover and circuit breakers"),
  Command.withSubcommands([start, stats, exportCommand, cost, budget, alerts, route, prices, reprice, simulate, ...operations])
)

export const run = Command.run(tollgate, { name: "tollgate", version })

/** Failures that carry a message for a person: printed as they are. */
const messageOf = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const tag = (error as { _tag?: unknown })._tag
  const message = (error as { message?: unknown }).message
  if (tag === "ConfigError" || tag === "StoreError" || tag === "UsageError" || tag === "PricesError") return String(message)
  if (tag === "ServeError") return `cannot listen: ${String((error as { cause?: { message?: unknown } }).cause?.message ?? message)}`
  return undefined
}

/** Runs the CLI on `argv`; reports failures once, readably. */
export const main = (argv: ReadonlyArray<string>) =>
  run(argv).pipe(
    Effect.tapErrorCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.void
      const failure = Cause.failureOption(cause)
      // @effect/cli has already printed its own usage errors.
      if (Option.isSome(failure) && (failure.value as { _tag?: string })._tag?.startsWith("Validation") !== true) {
        const message = messageOf(failure.value)
        if (message !== undefined) return Console.error(`tollgate: ${message}`)
      }
      if (Option.isSome(failure)) return Effect.void
      return Console.error(`tollgate: unexpected failure\n${Cause.pretty(cause)}`)
    })
  )
