/**
 * `tollgate start --workers N`: N processes serving one port. A `node:cluster` primary holds the
 * listening socket and hands each connection to a worker in turn; every worker is the normal
 * server (its own listener, services and ledger writer), and the workers share state only through
 * the configured backends (the ledger on PostgreSQL, budgets and the cache on Redis).
 *
 * The primary prints the one banner, replaces a worker that dies with a bounded backoff, and on
 * SIGINT/SIGTERM asks every worker to stop (each drains its requests and writes its queued ledger
 * rows) and exits when all have. A worker that cannot start the first time fails the whole start
 * with its reason. See docs/scale-out.md ("--workers").
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import cluster, { type Worker } from "node:cluster"
import * as os from "node:os"
import { ConfigError, type TollgateSettings } from "../Config.js"

/** The most workers `--workers` forks: a typo such as 400 is refused rather than forking that many processes. */
export const MAX_WORKERS = 64

/** Set by the primary in each worker's environment: `index/count`, index from 1. */
const ENV = "TOLLGATE_WORKER"

/** Which worker this process is, when it is one. */
export interface Identity {
  readonly index: number
  readonly count: number
}

/** This process's place among the workers, or `undefined` when it is not a worker of `start --workers`. */
export const identity: Identity | undefined = (() => {
  if (!cluster.isWorker) return undefined
  const match = /^(\d+)\/(\d+)$/.exec(process.env[ENV] ?? "")
  return match === null ? undefined : { index: Number(match[1]), count: Number(match[2]) }
})()

/**
 * Why this process cannot be the primary of `count` workers: it is itself a worker of another
 * cluster (a process manager's cluster mode), where `node:cluster` cannot fork.
 */
export const forkRefusal = (count: number): string | undefined =>
  count > 1 && !cluster.isPrimary
    ? `--workers ${count}: this process is already a worker of a Node cluster (a process manager's cluster mode?); ` +
      "let the process manager run the processes (tollgate start without --workers), or run tollgate start --workers outside its cluster mode"
    : undefined

/**
 * How many workers `--workers` (or `server.workers`) asks for: an integer from 1 to 64, or `auto`,
 * one per core this process may use. A message naming the setting when it is neither.
 */
export const parseCount = (value: string | number, from: string): number | { readonly problem: string } => {
  if (value === "auto") return Math.min(MAX_WORKERS, Math.max(1, os.availableParallelism()))
  const text = String(value).trim()
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN
  return Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS
    ? n
    : { problem: `${from}: expected an integer from 1 to ${MAX_WORKERS}, or auto (one per core); got ${JSON.stringify(String(value))}` }
}

/** The admin listener's address for worker `index`: its own port (`admin.port + index - 1`), or a free one for port 0. */
export const adminFor = <A extends { readonly host: string; readonly port: number }>(admin: A | false, index: number): A | false =>
  admin === false || admin.port === 0 ? admin : { ...admin, port: admin.port + index - 1 }

/**
 * Why `count` workers cannot serve this configuration, or `undefined` when they can. Checked
 * before anything is forked: each would otherwise run with state of its own where one is meant.
 */
export const refusal = (config: TollgateSettings, count: number): string | undefined => {
  if (count <= 1) return undefined
  if (config.databaseUrl === undefined) {
    return `--workers ${count} needs a shared ledger: SQLite is one process's file; set database.url to a postgres:// URL ` +
      "(or DATABASE_URL), or start one worker"
  }
  if (config.budget.enabled && config.redis === undefined) {
    return `--workers ${count} with budgets needs a shared budget store: each worker would enforce the limits on its own ` +
      `spend and together they could spend ${count} times a limit; set redis: redis://host:6379 (or TOLLGATE_REDIS_URL), or start one worker`
  }
  const admin = config.server.admin
  if (admin !== false && admin.port !== 0) {
    const last = admin.port + count - 1
    if (last > 65_535) return `--workers ${count}: the workers' admin ports ${admin.port}-${last} pass 65535; set server.admin.port lower`
    const publicPort = config.server.port
    if (publicPort !== 0 && publicPort >= admin.port && publicPort <= last) {
      return `--workers ${count}: the workers' admin ports ${admin.port}-${last} (one per worker) include the public port ${publicPort}; ` +
        "set server.admin.port (or --admin-port) outside that range"
    }
  }
  return undefined
}

/** What the primary says once about `count` workers on this configuration. */
export const notes = (config: TollgateSettings, count: number): ReadonlyArray<string> =>
  count > 1 && config.cache.enabled && config.cache.redis === undefined
    ? [`each of the ${count} workers has a cache of its own (set cache.redis: true to share one on Redis)`]
    : []

/** Where a started worker serves, as it tells the primary. */
export interface Ready {
  readonly pid: number
  /** `http://host:port` of the public listener. */
  readonly url: string
  /** `http://host:port` of its admin listener, `null` when off. */
  readonly admin: string | null
}

type Message =
  | { readonly tollgate: "ready"; readonly url: string; readonly admin: string | null }
  | { readonly tollgate: "failed"; readonly message: string }

const isMessage = (value: unknown): value is Message =>
  typeof value === "object" && value !== null && ((value as { tollgate?: unknown }).tollgate === "ready" ||
    (value as { tollgate?: unknown }).tollgate === "failed")

/** Sends `message` to the primary; `false` when there is no primary to send to. */
const send = (message: Message): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    if (process.send === undefined || !process.connected) return resume(Effect.succeed(false))
    process.send(message, undefined, {}, (error) => resume(Effect.succeed(error === null)))
  })

/** In a worker: tells the primary it serves at these addresses. */
export const announceReady = (url: string, admin: string | null) => send({ tollgate: "ready", url, admin })

/**
 * In a worker that could not start: tells the primary why and exits. The primary reports the
 * reason once for the whole start, so the worker does not print it too.
 */
export const failStart = (message: string): Effect.Effect<void> =>
  Effect.flatMap(send({ tollgate: "failed", message }), (sent) => sent ? Effect.sync(() => process.exit(1)) : Effect.void)

/**
 * In a worker: a second SIGINT or SIGTERM (the terminal's Ctrl-C reaches the workers and the
 * primary forwards one too) must not kill a worker that is draining. The runtime's own handler
 * stops listening after the first signal, and with no listener left Node would end the process.
 */
export const ignoreRepeatedSignals = Effect.sync(() => {
  const ignore = () => {}
  process.on("SIGINT", ignore)
  process.on("SIGTERM", ignore)
})

/**
 * In a worker: when the primary goes away without stopping it (killed with SIGKILL), drain and
 * exit as on SIGTERM. `node:cluster` would end the worker at once, losing its requests in flight
 * and its queued ledger rows, unless the worker is marked as one whose disconnect is expected.
 */
export const drainWhenOrphaned = Effect.sync(() => {
  const worker = cluster.worker
  if (worker === undefined) return
  worker.exitedAfterDisconnect = true
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"))
})

/** How the primary runs the workers (the defaults are the product's; tests shorten them). */
export interface Options {
  readonly count: number
  /** Printed once every worker is ready (the banner). */
  readonly onReady: (workers: ReadonlyArray<Ready>) => Effect.Effect<void>
  /** The first restart's delay; each quick death doubles it, up to `maxRestartDelay`. */
  readonly restartDelay?: Duration.DurationInput
  readonly maxRestartDelay?: Duration.DurationInput
  /** A worker that served this long before it died starts its restarts at `restartDelay` again. */
  readonly healthyAfter?: Duration.DurationInput
  /** How long a worker may take to drain after SIGTERM before it is killed. */
  readonly stopTimeout: Duration.DurationInput
}

/** The `attempt`-th restart's delay (from 1): `first` doubled each time, at most `max`. */
export const restartDelay = (attempt: number, first: Duration.DurationInput, max: Duration.DurationInput): Duration.Duration =>
  Duration.min(Duration.times(Duration.decode(first), 2 ** Math.min(30, Math.max(0, attempt - 1))), Duration.decode(max))

interface Handle {
  readonly index: number
  readonly worker: Worker
  readonly ready: Deferred.Deferred<Ready, string>
  readonly exited: Deferred.Deferred<string>
  /** Set when it reported a failed start (it then exits by itself). */
  readonly failedToStart: { done: boolean }
}

/** How a worker's exit reads in a log line. */
const exitText = (code: number | null, signal: string | null): string =>
  signal !== null ? `killed by ${signal}` : `exit code ${code ?? "unknown"}`

/**
 * The primary: forks `count` workers and supervises them until interrupted (SIGINT/SIGTERM reach
 * it through the runtime), then stops them all. Fails with the reason of a worker that cannot
 * start the first time.
 */
export const supervise = (options: Options): Effect.Effect<never, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const { count } = options
    const first = options.restartDelay ?? "500 millis"
    const max = options.maxRestartDelay ?? "30 seconds"
    const healthyAfter = Duration.toMillis(options.healthyAfter ?? "60 seconds")
    const running = yield* Ref.make(new Map<number, Handle>())
    const stopping = yield* Ref.make(false)

    const spawn = (index: number) =>
      Effect.gen(function*() {
        const ready = yield* Deferred.make<Ready, string>()
        const exited = yield* Deferred.make<string>()
        const handle = yield* Effect.sync((): Handle => {
          const failedToStart = { done: false }
          const worker = cluster.fork({ [ENV]: `${index}/${count}` })
          const pid = worker.process.pid ?? 0
          worker.on("message", (message: unknown) => {
            if (!isMessage(message)) return
            if (message.tollgate === "ready") Deferred.unsafeDone(ready, Exit.succeed({ pid, url: message.url, admin: message.admin }))
            else {
              failedToStart.done = true
              Deferred.unsafeDone(ready, Exit.fail(message.message))
            }
          })
          worker.on("exit", (code: number | null, signal: string | null) => {
            Deferred.unsafeDone(ready, Exit.fail(`worker ${index} (pid ${pid}) exited before it was ready (${exitText(code, signal)})`))
            Deferred.unsafeDone(exited, Exit.succeed(exitText(code, signal)))
          })
          // The IPC channel's errors (a message sent to an exiting worker) end with its exit, observed above.
          worker.on("error", () => {})
          return { index, worker, ready, exited, failedToStart }
        })
        yield* Ref.update(running, (map) => new Map(map).set(index, handle))
        return handle
      })

    const stopAll = Effect.gen(function*() {
      yield* Ref.set(stopping, true)
      const handles = [...(yield* Ref.get(running)).values()]
      // A worker that reported a failed start is exiting by itself.
      const live = (yield* Effect.forEach(handles, (h) => Deferred.isDone(h.exited)))
        .filter((exited, i) => !exited && !handles[i]!.failedToStart.done).length
      if (live > 0) yield* Effect.logInfo(`stopping ${live} worker(s): each finishes its requests and writes its queued ledger rows`)
      yield* Effect.forEach(handles, (handle) =>
        Effect.gen(function*() {
          if (!(yield* Deferred.isDone(handle.exited))) handle.worker.process.kill("SIGTERM")
          const stopped = yield* Deferred.await(handle.exited).pipe(Effect.timeout(options.stopTimeout), Effect.option)
          if (stopped._tag === "None") {
            yield* Effect.logWarning(
              `worker ${handle.index} (pid ${handle.worker.process.pid}) did not stop within ${Duration.format(options.stopTimeout)}; killing it`
            )
            handle.worker.process.kill("SIGKILL")
            yield* Deferred.await(handle.exited)
          }
        }), { concurrency: "unbounded", discard: true })
      if (live > 0) yield* Effect.logInfo("all workers stopped")
    })
    yield* Effect.addFinalizer(() => stopAll)

    // Worker 1 alone first: a configuration or a port it cannot use fails once, with one reason,
    // and the ledger's migrations run once before the others connect.
    const started: Array<Handle> = [yield* spawn(1)]
    const firstReady = yield* Deferred.await(started[0]!.ready).pipe(
      Effect.mapError((message) => new ConfigError({ message }))
    )
    for (let index = 2; index <= count; index++) started.push(yield* spawn(index))
    const rest = yield* Effect.forEach(started.slice(1), (handle) => Deferred.await(handle.ready), { concurrency: "unbounded" }).pipe(
      Effect.mapError((message) => new ConfigError({ message }))
    )
    yield* options.onReady([firstReady, ...rest])

    /** Keeps slot `index` served: waits for its worker's exit, then starts another after the backoff. */
    const keep = (initial: Handle, startedAt: number) =>
      Effect.gen(function*() {
        let handle = initial
        let since = startedAt
        let attempt = 0
        while (true) {
          const how = yield* Deferred.await(handle.exited)
          if (yield* Ref.get(stopping)) return
          const now = yield* Clock.currentTimeMillis
          attempt = now - since >= healthyAfter ? 1 : attempt + 1
          const delay = restartDelay(attempt, first, max)
          // A replacement that could not start has said why already.
          const what = handle.failedToStart.done
            ? "could not start"
            : `(pid ${handle.worker.process.pid}) exited unexpectedly (${how})`
          yield* Effect.logWarning(
            `worker ${handle.index} of ${count} ${what}; starting another in ${Duration.format(delay)} (restart ${attempt})`
          )
          yield* Effect.sleep(delay)
          handle = yield* spawn(handle.index)
          since = yield* Clock.currentTimeMillis
          const outcome = yield* Effect.either(Deferred.await(handle.ready))
          if (outcome._tag === "Right") {
            const admin = outcome.right.admin === null ? "" : `, admin ${outcome.right.admin}`
            yield* Effect.logInfo(`worker ${handle.index} of ${count} is back (pid ${outcome.right.pid}${admin})`)
          } else {
            yield* Effect.logWarning(`worker ${handle.index} of ${count} could not start: ${outcome.left}`)
          }
        }
      })
    const now = yield* Clock.currentTimeMillis
    return yield* Effect.forEach(started, (handle) => keep(handle, now), { concurrency: "unbounded", discard: true }).pipe(
      Effect.zipRight(Effect.never)
    )
  })
