/**
 * Config hot reload (`tollgate start --watch`): the running configuration as a `SubscriptionRef`,
 * swapped atomically when the file changes, so the next request is routed by the new rules.
 *
 * What reloads: the routing sections (`routes`, `models`). What does not: the listener
 * (`server`), the ledger (`database`) and the providers (their connection pools and keys are
 * built once), nor the other sections: a change there is logged as needing a restart and the
 * running value stays. A file that fails to parse or validate is refused as a whole; the old
 * configuration keeps serving and the reason is logged with its key path.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as path from "node:path"
import { TollgateConfig, ConfigError, load, type TollgateSettings } from "./Config.js"
import * as Logging from "./Logging.js"
import { providerReferences } from "./Router/Settings.js"

export interface ReloadStatus {
  /** Changes applied since start. */
  readonly applied: number
  /** Changes refused since start (the previous configuration kept serving). */
  readonly rejected: number
  /** Why the last refused change was refused. */
  readonly lastError: string | null
}

export class LiveConfig extends Context.Tag("tollgate/LiveConfig")<LiveConfig, {
  /** The configuration in force; `changes` streams every swap. */
  readonly current: SubscriptionRef.SubscriptionRef<TollgateSettings>
  /** The configuration in force, read synchronously (for per-request decisions). */
  readonly get: () => TollgateSettings
  /** Outcomes of reload attempts, for logs and tests to wait on. */
  readonly status: SubscriptionRef.SubscriptionRef<ReloadStatus>
  /** Reads the config file again now and applies what can be (`POST /admin/reload`; `--watch` does it on change). */
  readonly reload: Effect.Effect<ReloadOutcome>
}>() {}

/** What one reload did. */
export type ReloadOutcome =
  | { readonly _tag: "Applied"; readonly source: string; readonly ignored: ReadonlyArray<string> }
  | { readonly _tag: "Unchanged"; readonly source: string }
  | { readonly _tag: "Refused"; readonly source: string; readonly message: string }
  | { readonly _tag: "NoFile" }

/** Sections a reload may change; the rest need a restart. */
const RELOADABLE = ["routes", "models"] as const
const FIXED = ["server", "dbPath", "databaseUrl", "pricing", "retry", "circuit", "cache"] as const

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * The configuration that results from applying `next` on top of `running`: the routing sections
 * of `next`, everything else of `running`. Fails when the routing refers to a provider that is not
 * running (providers only change on restart). `ignored` names the sections that changed but wait
 * for a restart.
 */
export const apply = (
  running: TollgateSettings,
  next: TollgateSettings
): Either.Either<{ readonly config: TollgateSettings; readonly ignored: ReadonlyArray<string> }, ConfigError> => {
  const ignored: Array<string> = FIXED.filter((key) => !same(running[key], next[key]))
  const providers = (c: TollgateSettings) => c.providers.map((p) => [p.name, p.config])
  if (!same(providers(running), providers(next))) ignored.push("providers")
  // The key is compared too (its JSON form is redacted); the sender is built once, at start.
  const cloud = (c: TollgateSettings) => c.cloud === undefined ? null : { ...c.cloud, key: Redacted.value(c.cloud.key) }
  if (!same(cloud(running), cloud(next))) ignored.push("telemetry.cloud")
  const known = new Set(running.providers.map((p) => p.name))
  const unknown = [
    ...next.routes.flatMap((route, i) => providerReferences(route, i)),
    ...Object.entries(next.models.catalogue).flatMap(([model, entry]) =>
      (entry.providers ?? []).map((provider, j) => ({ path: `models.catalogue.${model}.providers.${j}`, provider }))
    )
  ].flatMap(({ path, provider }) => known.has(provider) ? [] : [`  ${path}: "${provider}" is not a running provider`])
  if (unknown.length > 0) {
    return Either.left(
      new ConfigError({ message: `${unknown.join("\n")}\n  (new providers need a restart)` })
    )
  }
  const config: TollgateSettings = { ...running }
  for (const key of RELOADABLE) Object.assign(config, { [key]: next[key] })
  return Either.right({ config, ignored })
}

const make = Effect.gen(function*() {
  const initial = yield* TollgateConfig
  const current = yield* SubscriptionRef.make(initial)
  let latest = initial
  const get = () => latest
  const status = yield* SubscriptionRef.make<ReloadStatus>({ applied: 0, rejected: 0, lastError: null })
  const source = initial.source
  if (source === undefined) {
    if (initial.watch) yield* Effect.logWarning("--watch: no config file is in use, so there is nothing to watch")
    return LiveConfig.of({ current, status, get, reload: Effect.succeed({ _tag: "NoFile" }) })
  }

  const reject = (message: string) =>
    Effect.zipRight(
      Logging.event("error", "reload", `config reload refused; the previous configuration stays in force:\n${message}`, {
        source,
        outcome: "refused"
      }),
      SubscriptionRef.update(status, (s) => ({ ...s, rejected: s.rejected + 1, lastError: message }))
    ).pipe(Effect.as<ReloadOutcome>({ _tag: "Refused", source, message }))

  // One reload at a time: a file change and `POST /admin/reload` at once would race on `latest`.
  const lock = yield* Effect.makeSemaphore(1)
  const reload: Effect.Effect<ReloadOutcome> = lock.withPermits(1)(Effect.gen(function*() {
    const running = yield* SubscriptionRef.get(current)
    const next = yield* Effect.either(load({ ...initial.overrides, configPath: source }))
    if (Either.isLeft(next)) return yield* reject(next.left.message)
    if (same(next.right, running)) return { _tag: "Unchanged", source } as const
    const applied = apply(running, next.right)
    if (Either.isLeft(applied)) return yield* reject(applied.left.message)
    latest = applied.right.config
    yield* SubscriptionRef.set(current, latest)
    yield* SubscriptionRef.update(status, (s) => ({ ...s, applied: s.applied + 1 }))
    const ignored = applied.right.ignored
    yield* Logging.event("info", "reload", `config reloaded from ${source}`, { source, outcome: "applied", restartNeededFor: ignored.length === 0 ? null : ignored.join(",") })
    if (ignored.length > 0) {
      yield* Effect.logWarning(`config: changes to ${ignored.join(", ")} take effect after a restart`)
    }
    return { _tag: "Applied", source, ignored } as const
  }))
  if (!initial.watch) return LiveConfig.of({ current, status, get, reload })

  // Watch the directory, not the file: editors save by writing a new file and renaming it over
  // the old one, which ends a watch on the file itself. The watcher is attached before this layer
  // is built (not in a forked stream), so no change made after start can be missed.
  const name = path.basename(source)
  const changed = yield* Queue.sliding<void>(1)
  yield* Effect.acquireRelease(
    Effect.try({
      try: () =>
        fs.watch(path.dirname(source), (_event, file) => {
          if (file === null || path.basename(file) === name) changed.unsafeOffer(undefined)
        }),
      catch: (error) => new ConfigError({ message: `--watch: cannot watch ${source}: ${String(error)}` })
    }),
    (watcher) => Effect.sync(() => watcher.close())
  ).pipe(Effect.catchAll((error) => Effect.logError(error.message)))
  yield* Stream.fromQueue(changed).pipe(
    // One reload per burst of writes (an editor's save is several events).
    Stream.debounce(Duration.millis(50)),
    Stream.runForEach(() => reload),
    Effect.forkScoped
  )
  yield* Effect.logInfo(`watching ${source} for routing changes`)
  return LiveConfig.of({ current, status, get, reload })
})

/** The live configuration: fixed, or watched when the config says `watch` (from `start --watch`). */
export const layer: Layer.Layer<LiveConfig, never, TollgateConfig> = Layer.scoped(LiveConfig, make)
