/**
 * The real PostgreSQL the project's machines run as a service (127.0.0.1:5432, trust auth,
 * database `test`; `TOLLGATE_TEST_PG_URL` to point elsewhere). Each suite gets a database of its
 * own, created fresh and dropped after. Where the server cannot be reached, `unreachable` says
 * why, and the suites skip with that reason.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import pg from "pg"

export const ADMIN_URL = process.env.TOLLGATE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const withAdmin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/** Why PostgreSQL cannot be used here, or `undefined` when it can (checked once, at load). */
export const unreachable: string | undefined = await withAdmin((c) => c.query("SELECT 1")).then(
  () => undefined,
  (error: unknown) =>
    `PostgreSQL is not reachable at ${ADMIN_URL.replace(/:[^:@/]*@/, ":***@")} (${error instanceof Error ? error.message : String(error)}); ` +
    "start it or set TOLLGATE_TEST_PG_URL"
)

if (unreachable !== undefined) console.warn(`SKIPPED: the PostgreSQL suites: ${unreachable}`)

/** SQL run as the admin user on the server's `test` database (CREATE/DROP DATABASE, pg_terminate_backend). */
export const admin = (text: string) => Effect.promise(() => withAdmin((c) => c.query(text)))

/** The URL of database `name` on the test server. */
export const urlOf = (name: string): string => {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** A fresh, empty database for this scope (`tollgate_test_<random>`), dropped when it closes. */
export const freshDatabase = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `tollgate_test_${randomBytes(6).toString("hex")}`
    yield* admin(`CREATE DATABASE ${name}`)
    return { name, url: urlOf(name) }
  }),
  ({ name }) => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
)

/** Ends every connection to database `name` (what a server restart or a failover does to a client). */
export const terminateConnections = (name: string) =>
  admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`)

/** The database stops (or starts again) accepting connections; `false` also ends the ones open. */
export const acceptConnections = (name: string, accept: boolean) =>
  accept
    ? admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
    : Effect.zipRight(admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`), terminateConnections(name))
