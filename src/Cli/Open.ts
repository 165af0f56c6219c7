/** The ledger a command reads or writes, opened so that a failure says which file and what to do. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import * as Store from "../Store.js"

/**
 * The SQLite driver throws when it cannot open the file (a directory, a read-only place): that
 * arrives as a defect, which the CLI would print as an "unexpected failure" with a stack and no
 * path. Here it becomes a `StoreError` that names the file.
 */
const opened = (file: string) =>
  Store.layerAt(file).pipe(
    Layer.catchAllCause((cause) =>
      Cause.isFailType(cause) || Option.isSome(Cause.failureOption(cause)) || Cause.isInterruptedOnly(cause)
        ? Layer.failCause(cause)
        : Layer.fail(
          new Store.StoreError({
            message: `cannot open the ledger ${file}: ${describe(Cause.squash(cause))}; check that it is a file that this ` +
              "user can read and write, or point --db (TOLLGATE_DB, database.path) at another file"
          })
        )
    )
  )

const describe = (defect: unknown) => (defect instanceof Error ? defect.message : String(defect))

/** The ledger named by `--db`, or the configured one. */
export const ledgerLayer = (options: { readonly config: Option.Option<string>; readonly db: Option.Option<string> }) =>
  Option.match(options.db, {
    onSome: opened,
    onNone: () =>
      Layer.unwrapEffect(Effect.map(Config.Config, (config) => opened(config.dbPath))).pipe(
        Layer.provide(Config.layer({ configPath: Option.getOrUndefined(options.config) }))
      )
  })
