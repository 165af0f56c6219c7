/** Naming a ledger: a postgres:// URL or a SQLite file (a light module: the CLI's start loads it). */
import * as Redacted from "effect/Redacted"

/** A URL that names a PostgreSQL ledger rather than a SQLite file. */
export const isPostgresUrl = (target: string): boolean => /^postgres(ql)?:\/\//.test(target)

/** The URL with its password hidden, for logs and messages. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "postgres://(unparsable URL)"
  }
}

/** Where the configured ledger is, for people: the file, or the URL without its password. */
export const describeLedger = (config: { readonly dbPath: string; readonly databaseUrl: Redacted.Redacted<string> | undefined }): string =>
  config.databaseUrl === undefined ? config.dbPath : redactUrl(Redacted.value(config.databaseUrl))
