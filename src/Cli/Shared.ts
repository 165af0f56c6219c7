/** Options and helpers shared by the commands that read the ledger (`stats`, `export`, `cost`, `budget`, `alerts`). */
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Redacted from "effect/Redacted"
import * as Config from "../Config.js"
import * as Stats from "../Stats.js"
import { isPostgresUrl, redactUrl } from "../Store/Url.js"

export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

// The options several commands share are defined once, in the light module the CLI loads at start.
export { configOption, dbOption, jsonOption } from "./Flags.js"

/** `--since`: a window (`90s`, `30m`, `24h`, `7d`, `2w`), `all`, or a date (`2025-06-01`). Unix ms. */
export const parseSince = (value: string): Effect.Effect<number, UsageError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const since = Stats.sinceOf(value, now)
    return since === undefined ? Effect.fail(new UsageError({ message: `--${Stats.sinceProblem(value)}` })) : Effect.succeed(since)
  })

/**
 * The ledger a read command reads: `--db` (a file or a postgres:// URL), else the one `start`
 * writes (`database.url`, `TOLLGATE_DB`, the config file's `database.path`, `DATABASE_URL`,
 * `~/.tollgate/tollgate.db`). Said on stderr (a URL without its password); a path with no ledger
 * is refused rather than created empty (a typo would otherwise read as "no requests").
 */
export const ledgerPath = (options: { readonly config: Option.Option<string>; readonly db: Option.Option<string> }) =>
  Effect.gen(function*() {
    let file: string
    if (Option.isSome(options.db)) {
      file = options.db.value
    } else {
      const config = yield* Config.load({ configPath: Option.getOrUndefined(options.config) })
      file = config.databaseUrl === undefined ? config.dbPath : Redacted.value(config.databaseUrl)
    }
    if (isPostgresUrl(file)) {
      yield* Console.error(`ledger: ${redactUrl(file)}`)
      return file
    }
    const shown = file === ":memory:" ? file : path.resolve(file)
    if (file !== ":memory:" && !fs.existsSync(file)) {
      return yield* new UsageError({ message: `no ledger at ${shown} (start tollgate first, or pass --db)` })
    }
    yield* Console.error(`ledger: ${shown}`)
    return file
  })
