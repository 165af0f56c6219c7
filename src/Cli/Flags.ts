/**
 * The options that several commands share, defined without loading what the commands do: the
 * command definitions import this module when the CLI starts, and each command's implementation
 * (SQLite, the config loader, pricing data) is loaded only when that command runs. `Shared.ts`
 * re-exports them for the implementations.
 */
import * as Options from "@effect/cli/Options"

export const configOption = Options.file("config").pipe(
  Options.withDescription("Path to tollgate.yaml (default: $TOLLGATE_CONFIG, ./tollgate.yaml, ~/.config/tollgate/tollgate.yaml)"),
  Options.optional
)

export const dbOption = Options.file("db").pipe(
  Options.withDescription(
    "Path to the SQLite ledger, or a postgres:// URL (default: database.url, $TOLLGATE_DB, database.path, $DATABASE_URL, ~/.tollgate/tollgate.db)"
  ),
  Options.optional
)

/** `--json`: machine-readable output instead of the human one. */
export const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table"))

/** `--since`: a window such as `24h`; `@effect/cli` does not show a default that is not an Option, so the text does. */
export const sinceOption = (what: string, fallback: string) =>
  Options.text("since").pipe(
    Options.withDescription(`${what}: 30m, 24h, 7d, a date (2025-06-01) or all (default: ${fallback})`),
    Options.withDefault(fallback)
  )
