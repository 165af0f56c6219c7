/**
 * Where the price data comes from: the data bundled with `@pydantic/genai-prices`, or the file
 * `tollgate prices update` fetched (`<tollgate home>/prices/genai-prices.json`), whichever is newer.
 *
 * The update fetches the data file the genai-prices project publishes (the package's own URL;
 * `--url` or $TOLLGATE_PRICES_URL for another), checks it against `Data.DataFile`, and writes it
 * whole or not at all (a temporary file beside it, then a rename). Offline or invalid, the update
 * fails with a message and the data in use stays what it was.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as EnvConfig from "effect/Config"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as os from "node:os"
import * as path from "node:path"
import {
  bundledData,
  bundledOrigin,
  DATA_URL_ENV,
  DataFile,
  DEFAULT_DATA_URL,
  makeIndex,
  updatedOrigin
} from "./Data.js"
import type { PriceData } from "./Resolve.js"

/** Why an update did not happen, for a person. */
export class PricesError extends Data.TaggedError("PricesError")<{ readonly message: string }> {}

/** What `prices update` writes: the data file as published, and when and where it was fetched. */
export const UpdatedFile = Schema.Struct({
  format: Schema.Literal("tollgate-genai-prices/1"),
  fetchedAt: Schema.String,
  url: Schema.String,
  providers: DataFile
})
export type UpdatedFile = typeof UpdatedFile.Type

/** `$TOLLGATE_HOME`, or `~/.tollgate` (where the ledger lives by default, see Config.ts). */
export const tollgateHome = EnvConfig.string("TOLLGATE_HOME").pipe(
  EnvConfig.withDefault(path.join(os.homedir(), ".tollgate"))
)

export const updatedFilePath = Effect.map(tollgateHome, (home) => path.join(home, "prices", "genai-prices.json"))

/** `--url`, else $TOLLGATE_PRICES_URL, else genai-prices' published file. */
export const dataUrl = (flag: Option.Option<string>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () => EnvConfig.string(DATA_URL_ENV).pipe(EnvConfig.withDefault(DEFAULT_DATA_URL))
  })

const bundled = (): PriceData => ({ index: makeIndex(bundledData()), origin: bundledOrigin })
let bundledOnce: PriceData | undefined
/** The bundled data, indexed once per process. */
export const bundledPriceData = (): PriceData => (bundledOnce ??= bundled())

const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "not genai-prices data"
  return `${issue.path.length === 0 ? "(top level)" : issue.path.map(String).join(".")}: ${issue.message}`
}

const dayOf = (iso: string) => iso.slice(0, 10)

export type Loaded =
  | { readonly _tag: "Bundled"; readonly data: PriceData; readonly ignored?: string }
  | { readonly _tag: "Updated"; readonly data: PriceData; readonly file: string }

/**
 * The data in force: the updated file when there is one, valid, and fetched after the bundled
 * package was published; otherwise the bundled data (with why the file was left aside, if it was).
 */
export const load: Effect.Effect<Loaded, never, FileSystem.FileSystem> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const file = yield* Effect.orDie(updatedFilePath)
  const text = yield* fs.readFileString(file).pipe(Effect.option)
  if (Option.isNone(text)) return { _tag: "Bundled", data: bundledPriceData() } as const
  const decoded = yield* Effect.try(() => JSON.parse(text.value) as unknown).pipe(
    Effect.flatMap(Schema.decodeUnknown(UpdatedFile)),
    Effect.either
  )
  if (decoded._tag === "Left") {
    const why = decoded.left instanceof ParseResult.ParseError ? firstIssue(decoded.left) : "not JSON"
    return { _tag: "Bundled", data: bundledPriceData(), ignored: `${file} is not valid price data (${why}): using the bundled data` } as const
  }
  const updated = decoded.right
  const date = dayOf(updated.fetchedAt)
  if (Date.parse(updated.fetchedAt) <= Date.parse(`${bundledOrigin.date}T23:59:59Z`)) {
    return { _tag: "Bundled", data: bundledPriceData(), ignored: `${file} (fetched ${date}) is older than the bundled data` } as const
  }
  return {
    _tag: "Updated",
    data: { index: makeIndex(updated.providers), origin: updatedOrigin(date, updated.url) },
    file
  } as const
})

export interface UpdateResult {
  readonly file: string
  readonly url: string
  readonly providers: number
  readonly models: number
  readonly fetchedAt: string
}

/**
 * Fetch the published data file, check it, and write it atomically. Fails with `PricesError` (and
 * writes nothing) when the server cannot be reached, answers with an error, or sends something
 * that is not genai-prices data.
 */
export const update = (url: string, options: { readonly timeoutMs?: number } = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const client = yield* HttpClient.HttpClient
    const file = yield* Effect.orDie(updatedFilePath)
    const unchanged = "the price data in use is unchanged"
    const body = yield* client.execute(HttpClientRequest.get(url, { acceptJson: true })).pipe(
      Effect.mapError((error) =>
        new PricesError({
          message: `prices update: cannot reach ${url} (${error.cause instanceof Error ? error.cause.message : error.message}); ${unchanged}`
        })
      ),
      Effect.flatMap((response): Effect.Effect<string, PricesError> =>
        response.status >= 200 && response.status < 300
          ? Effect.mapError(response.text, () => new PricesError({ message: `prices update: the answer from ${url} broke off; ${unchanged}` }))
          : Effect.fail(new PricesError({ message: `prices update: ${url} answered HTTP ${response.status}; ${unchanged}` }))
      ),
      Effect.scoped,
      Effect.timeoutFail({
        duration: options.timeoutMs ?? 30_000,
        onTimeout: () => new PricesError({ message: `prices update: no answer from ${url} in ${options.timeoutMs ?? 30_000} ms; ${unchanged}` })
      })
    )
    const json = yield* Effect.try({
      try: () => JSON.parse(body) as unknown,
      catch: () => new PricesError({ message: `prices update: ${url} did not send JSON; ${unchanged}` })
    })
    // Checked against the schema, kept as published (with the keys tollgate does not read).
    const providers = yield* Schema.decodeUnknown(DataFile)(json).pipe(
      Effect.mapError((error) => new PricesError({ message: `prices update: ${url} did not send genai-prices data (${firstIssue(error)}); ${unchanged}` }))
    )
    const fetchedAt = new Date(yield* Effect.clockWith((clock) => clock.currentTimeMillis)).toISOString()
    const content = { format: "tollgate-genai-prices/1", fetchedAt, url, providers: json }
    // Written beside the target and renamed over it: a reader sees the old file or the new, whole.
    const temporary = `${file}.${process.pid}.tmp`
    yield* Effect.gen(function*() {
      yield* fs.makeDirectory(path.dirname(file), { recursive: true })
      yield* fs.writeFileString(temporary, JSON.stringify(content))
      yield* fs.rename(temporary, file)
    }).pipe(
      Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)),
      Effect.mapError((error) => new PricesError({ message: `prices update: cannot write ${file}: ${error.message}` }))
    )
    return {
      file,
      url,
      providers: providers.length,
      models: providers.reduce((n, p) => n + p.models.length, 0),
      fetchedAt
    } satisfies UpdateResult
  })
