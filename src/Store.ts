/**
 * The ledger store: an `@effect/sql` client with the schema migrated, on SQLite (WAL on, the
 * default) or on PostgreSQL when `database.url` (or `DATABASE_URL`) is set. Everything that reads
 * or writes the ledger goes through the `SqlClient` this layer provides, with the same queries on
 * both engines (what differs is in `Store/Dialect.ts`).
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { TollgateConfig } from "./Config.js"
import { migrations } from "./Store/Migrations.js"
import { isPostgresUrl, redactUrl } from "./Store/Url.js"

/** The ledger could not be opened or migrated, or the shared store (`Redis.ts`) reached at start. */
export class StoreError extends Data.TaggedError("StoreError")<{ readonly message: string }> {}

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "tollgate_migrations" })

const tune = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if (sql.onDialectOrElse({ sqlite: () => false, orElse: () => true })) return
  // WAL with NORMAL sync is durable across process crashes; a busy timeout lets `tollgate stats`
  // read while the server writes.
  yield* sql.unsafe("PRAGMA synchronous = NORMAL")
  yield* sql.unsafe("PRAGMA busy_timeout = 5000")
  // SQLite's own default page cache, not better-sqlite3's larger one: a busy ledger fills that with
  // resident memory that the writer, appending at the end of the table and of its `ts` index, does
  // not need, for no CPU saved (docs/performance.md, "Figures behind src/ comments").
  yield* sql.unsafe("PRAGMA cache_size = -2000")
})

/** A migrated ledger in the SQLite file at `filename` (created, with its directory, if missing). */
export const layerAt = (filename: string): Layer.Layer<SqlClient.SqlClient, StoreError> =>
  Layer.effectDiscard(Effect.zipRight(tune, migrate)).pipe(
    Layer.provideMerge(
      Layer.unwrapEffect(
        Effect.try({
          try: () => {
            if (filename !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
            return SqliteClient.layer({ filename })
          },
          catch: (cause) => new StoreError({ message: `cannot create the ledger directory for ${filename}: ${String(cause)}` })
        })
      )
    ),
    Layer.catchAll((error) =>
      Layer.fail(
        error instanceof StoreError
          ? error
          : new StoreError({
            message: `cannot open the ledger ${filename}: ${describe(error)}; check that the file and its directory are ` +
              `readable and writable by this user, or point database.path (TOLLGATE_DB) at another file`
          })
      )
    )
  )

const describe = (error: unknown): string => {
  const cause = (error as { cause?: unknown }).cause
  return cause instanceof Error ? cause.message : error instanceof Error ? error.message : String(error)
}

export { describeLedger, isPostgresUrl, redactUrl } from "./Store/Url.js"

/** A migrated ledger on the PostgreSQL database at `url`. */
export const layerPostgres = (url: Redacted.Redacted<string>): Layer.Layer<SqlClient.SqlClient, StoreError> =>
  Layer.effectDiscard(migrate).pipe(
    Layer.provideMerge(
      Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./Store/Postgres.js")), (pg) => pg.client(url)))
    ),
    Layer.catchAll((error) =>
      Layer.fail(
        new StoreError({
          message: `cannot open the ledger ${redactUrl(Redacted.value(url))}: ${describe(error)}; check that PostgreSQL ` +
            `runs there and that this user may create tables in that database, or change database.url (DATABASE_URL)`
        })
      )
    )
  )

/** The ledger a CLI command names (`--db`): a postgres:// URL or a SQLite file. */
export const layerFor = (target: string): Layer.Layer<SqlClient.SqlClient, StoreError> =>
  isPostgresUrl(target) ? layerPostgres(Redacted.make(target)) : layerAt(target)

/**
 * The configured ledger: PostgreSQL at `database.url` (or `DATABASE_URL`) when set, else the
 * SQLite file (`TOLLGATE_DB`, `database.path`, `~/.tollgate/tollgate.db`). The one switch
 * between the engines: the composition root (`Services.ts`) and the CLI take the store from here.
 */
export const layer: Layer.Layer<SqlClient.SqlClient, StoreError, TollgateConfig> = Layer.unwrapEffect(
  Effect.map(TollgateConfig, (config) => config.databaseUrl === undefined ? layerAt(config.dbPath) : layerPostgres(config.databaseUrl))
)
