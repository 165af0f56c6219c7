/** `tollgate ledger path`: where `start` writes its ledger. */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Config from "../Config.js"
import { describeLedger } from "../Store/Url.js"
import { configOption } from "./Shared.js"

/** The ledger file as an absolute path (`:memory:` as it is). */
export const shownPath = (dbPath: string): string => (dbPath === ":memory:" ? dbPath : path.resolve(dbPath))

const ledgerPath = Command.make(
  "path",
  { config: configOption },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
      if (config.databaseUrl !== undefined) return yield* Console.log(describeLedger(config))
      const file = shownPath(config.dbPath)
      // Only the path on stdout, so that `$(tollgate ledger path)` can be used in a script.
      yield* Console.log(file)
      if (file !== ":memory:" && !fs.existsSync(file)) yield* Console.error("(no ledger there yet: start creates it)")
    })
).pipe(Command.withDescription(
  "Print the ledger start would use: database.url, else $TOLLGATE_DB, else database.path in tollgate.yaml, else a postgres:// $DATABASE_URL (printed without its password), else ~/.tollgate/tollgate.db"
))

export const ledger = Command.make("ledger").pipe(
  Command.withDescription("Where the ledger lives"),
  Command.withSubcommands([ledgerPath])
)
