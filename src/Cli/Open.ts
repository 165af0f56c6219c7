/** The ledger a command reads or writes (a SQLite file or a Postgres URL), opened so that a failure says which and what to do. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Store from "../Store.js"
import { ledgerPath } from "./Shared.js"

/**
 * The SQLite driver throws when it cannot open the file (a directory, a read-only place): that
 * arrives as a defect, which the CLI would print as an "unexpected failure" with a stack and no
 * path. Here it becomes a `StoreError` that names the file.
 */
const opened = (file: string) =>
  Store.layerFor(file).pipe(
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

/** The ledger named by `--db`, or the one `start` writes (see `Shared.ledgerPath`: said on stderr, never created empty). */
export const ledgerLayer = (options: { readonly config: Option.Option<string>; readonly db: Option.Option<string> }) =>
  Layer.unwrapEffect(Effect.map(ledgerPath(options), opened))
