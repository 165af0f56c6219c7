/**
 * The ledger as a file on disk, as the writer sees it: which file SQLite opened, whether the path
 * still names that file, and the marker beside it that says a ledger was kept there.
 *
 * SQLite keeps writing to a file deleted (or renamed away) under it, and every row then vanishes
 * with the process; a fresh file at the same path reads $0 of spend, so a budget could be spent
 * again. The writer compares the path's inode with the one it opened before each batch (one
 * `stat`, not per row). At start, `<ledger>.id` holds the id of the ledger last written there: a
 * ledger without that id is not the one whose spend the budget counted.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"

export interface LedgerFile {
  readonly path: string
  readonly dev: number
  readonly ino: number
}

/** The file SQLite opened for the ledger; `undefined` for an in-memory one. */
export const opened: Effect.Effect<LedgerFile | undefined, SqlError.SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ file: string | null }>`SELECT file FROM pragma_database_list WHERE name = 'main'`
  const path = rows[0]?.file
  if (path === undefined || path === null || path === "") return undefined
  const stat = fs.statSync(path, { throwIfNoEntry: false })
  return stat === undefined ? undefined : { path, dev: stat.dev, ino: stat.ino }
})

/** Why the path no longer names the file the ledger was opened on, if it does not. */
export const trouble = (file: LedgerFile): string | undefined => {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(file.path, { throwIfNoEntry: false })
  } catch (error) {
    return `cannot check the ledger file ${file.path}: ${error instanceof Error ? error.message : String(error)}`
  }
  if (stat === undefined) return `the ledger file ${file.path} was deleted (or moved away) while tollgate had it open`
  if (stat.dev !== file.dev || stat.ino !== file.ino) return `the ledger file ${file.path} was replaced by another file while tollgate had it open`
  return undefined
}

export const markerPath = (file: LedgerFile): string => `${file.path}.id`

/** What the start found: the marker agrees (or there was none), or it names another ledger. */
export type Identity =
  | { readonly _tag: "Same" }
  | {
    readonly _tag: "Replaced"
    readonly marker: string
    /** The id the marker names. */
    readonly expected: string
    /** This ledger's id. */
    readonly id: string
    /** The ledger had no id: it was created after the marker's (a new file). */
    readonly fresh: boolean
  }

/**
 * Gives the ledger an id (once, in `meta`) and compares it with the marker beside the file. The
 * marker is written when missing; when it names another ledger it is left alone, for the caller
 * to decide (`adopt` rewrites it).
 */
export const identify = (file: LedgerFile) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const before = yield* sql<{ value: string }>`SELECT value FROM meta WHERE key = 'ledger_id'`
    const found = before[0]?.value
    const id = found ?? randomUUID()
    if (found === undefined) yield* sql`INSERT INTO meta (key, value) VALUES ('ledger_id', ${id})`
    const marker = markerPath(file)
    const expected = readMarker(marker)
    if (expected !== undefined && expected !== id) return { _tag: "Replaced", marker, expected, id, fresh: found === undefined } as Identity
    if (expected === undefined) yield* adopt(file, id)
    return { _tag: "Same" } as Identity
  })

/** Writes the marker for the ledger `id` (a failure is logged: the ledger itself is fine). */
export const adopt = (file: LedgerFile, id: string) =>
  Effect.try(() =>
    fs.writeFileSync(
      markerPath(file),
      `${id}\n# The id of the tollgate ledger ${file.path}. tollgate refuses to start on a ledger without this id\n# when budgets are on (database.onWriteFailure: block): its spend history would read $0.\n`
    )
  ).pipe(Effect.catchAll((error) => Effect.logWarning(`ledger: could not write the marker ${markerPath(file)}`, error)))

const readMarker = (marker: string): string | undefined => {
  try {
    const first = fs.readFileSync(marker, "utf8").split("\n")[0]?.trim()
    return first === undefined || first === "" ? undefined : first
  } catch {
    return undefined
  }
}
