/**
 * Where the ledger writer puts rows while a PostgreSQL ledger cannot be reached: JSON lines, one
 * `LedgerEvent` a line, in files under `spill/<ledger>/` in the tollgate home (`$TOLLGATE_HOME`,
 * `~/.tollgate`): one folder per database, so a file is never replayed into another ledger. A file is named for the process that wrote
 * it (`ledger-<id>-<pid>.jsonl`): a process that finds the file of a process no longer alive
 * claims it (an atomic rename) and replays it. How far a file has been replayed is kept in the
 * ledger itself (`meta`, key `spill:<id>`), in the transaction of each replayed chunk, so a
 * replay cut short (the database gone again, the process killed) goes on where it stopped,
 * without a row written twice.
 */
import * as EnvConfig from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { createHash, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { LedgerEvent } from "../Domain/LedgerEvent.js"

export class SpillError extends Data.TaggedError("SpillError")<{ readonly message: string }> {}

/** The folder for the spill files of the ledger `where` (e.g. `postgres://host:5432/db`) under `root`. */
export const folder = (root: string, where: string): string =>
  path.join(root, createHash("sha256").update(where).digest("hex").slice(0, 16))

/** `spill` under the tollgate home: `$TOLLGATE_HOME`, or `~/.tollgate` (as `Pricing/Source.ts`'s). */
export const defaultRoot: Effect.Effect<string> = EnvConfig.string("TOLLGATE_HOME").pipe(
  EnvConfig.withDefault(path.join(os.homedir(), ".tollgate")),
  Effect.map((home) => path.join(home, "spill")),
  Effect.orElseSucceed(() => path.join(os.homedir(), ".tollgate", "spill"))
)

const NAME = /^ledger-([0-9a-f-]{36})-(\d+)\.jsonl$/

export interface SpillFile {
  readonly path: string
  /** The file's id: its replay progress is `meta`'s `spill:<id>`. */
  readonly id: string
}

export const progressKey = (file: SpillFile): string => `spill:${file.id}`

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * The files left in `dir` by processes that are gone, claimed for this one (renamed to its pid;
 * a file another process claimed first is skipped), oldest first.
 */
export const claimOrphans = (dir: string): Effect.Effect<ReadonlyArray<SpillFile>, SpillError> =>
  Effect.try({
    try: () => {
      if (!fs.existsSync(dir)) return []
      const found: Array<SpillFile & { readonly mtime: number }> = []
      for (const name of fs.readdirSync(dir)) {
        const match = NAME.exec(name)
        if (match === null || alive(Number(match[2]))) continue
        const id = match[1]!
        const claimed = path.join(dir, `ledger-${id}-${process.pid}.jsonl`)
        try {
          fs.renameSync(path.join(dir, name), claimed)
        } catch {
          continue
        }
        found.push({ path: claimed, id, mtime: fs.statSync(claimed).mtimeMs })
      }
      return found.sort((a, b) => a.mtime - b.mtime).map(({ id, path }) => ({ id, path }))
    },
    catch: (error) => new SpillError({ message: `cannot read the spill folder ${dir}: ${String(error)}` })
  })

/** A new (not yet created) spill file in `dir`. */
export const fresh = (dir: string): SpillFile => {
  const id = randomUUID()
  return { id, path: path.join(dir, `ledger-${id}-${process.pid}.jsonl`) }
}

/** Appends the events to the file (created, with its folder, if missing), one JSON line each. */
export const append = (file: SpillFile, events: ReadonlyArray<LedgerEvent>): Effect.Effect<void, SpillError> =>
  Effect.tryPromise({
    try: async () => {
      await fs.promises.mkdir(path.dirname(file.path), { recursive: true })
      let text = ""
      for (const event of events) text += JSON.stringify(event) + "\n"
      await fs.promises.appendFile(file.path, text)
    },
    catch: (error) => new SpillError({ message: `cannot write the spill file ${file.path}: ${error instanceof Error ? error.message : String(error)}` })
  })

/** The events in the file, in order (a last line cut short by a crash is left out). */
export const read = (file: SpillFile): Effect.Effect<ReadonlyArray<LedgerEvent>, SpillError> =>
  Effect.tryPromise({
    try: async () => {
      const text = await fs.promises.readFile(file.path, "utf8").catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return ""
        throw error
      })
      const events: Array<LedgerEvent> = []
      for (const line of text.split("\n")) {
        if (line === "") continue
        try {
          events.push(JSON.parse(line) as LedgerEvent)
        } catch {
          // Only a line being written when the process died can be partial: it was never acknowledged.
        }
      }
      return events
    },
    catch: (error) => new SpillError({ message: `cannot read the spill file ${file.path}: ${String(error)}` })
  })

export const remove = (file: SpillFile): Effect.Effect<void> =>
  Effect.promise(() => fs.promises.rm(file.path, { force: true }))
