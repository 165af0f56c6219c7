/**
 * `tollgate dash` (and `start --dash`): the terminal dashboard. Reads a running tollgate's admin
 * listener every `--interval` (`Dash/Snapshot.ts`), draws the frame (`Dash/Frame.ts`) on the
 * alternate screen (`Node/Terminal.ts`), redraws on a resize, and ends on `q`, Ctrl-C, a hang-up
 * or a signal, the terminal put back each way. The first read happens before the screen is taken,
 * so a listener that is not there (or wants a key) is said in one line, not drawn.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Config from "../Config.js"
import * as Frame from "../Dash/Frame.js"
import * as Snapshot from "../Dash/Snapshot.js"
import * as Terminal from "../Node/Terminal.js"
import * as Help from "./Help.js"
import { UsageError } from "./Shared.js"

/** The environment variable `--key` falls back to. */
export const KEY_ENV = "TOLLGATE_ADMIN_KEY"

/** Recent requests read per refresh: more than a tall terminal shows. */
const RECENT = 100

/** The fastest refresh allowed: each one is three or five requests to the admin listener. */
const MIN_INTERVAL_MS = 200

/** `--interval`: `1s`, `500ms`, `2.5s`, `1m`; at least 200 ms. */
export const intervalOf = (text: string): Duration.Duration | undefined => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)$/.exec(text.trim())
  if (match === null) return undefined
  const ms = Number(match[1]) * (match[2] === "ms" ? 1 : match[2] === "s" ? 1000 : 60_000)
  return ms >= MIN_INTERVAL_MS ? Duration.millis(ms) : undefined
}

/** Where the admin listener of the configuration is, as a URL a client on this machine can reach. */
export const adminUrlOfConfig = (config: Config.TollgateSettings): string | UsageError => {
  const admin = config.server.admin
  const where = config.source === undefined ? "the configuration" : config.source
  if (admin === false) {
    return new UsageError({ message: `the admin listener is off in ${where} (server.admin: false), and the dashboard reads it: turn it on, or pass --admin URL` })
  }
  if (admin.port === 0) return new UsageError({ message: `server.admin.port is 0 in ${where} (a free port chosen at start): pass --admin URL` })
  return urlOn(admin.host, admin.port)
}

/** `http://host:port` a client on this machine reaches a listener bound there at: a wildcard host on loopback. */
export const urlOn = (bound: string, port: number): string => {
  const host = bound === "0.0.0.0" ? "127.0.0.1" : bound === "::" ? "::1" : bound
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`
}

export interface DashOptions {
  readonly admin: string
  readonly key: string | undefined
  readonly interval: Duration.Duration
  /** Print one frame to standard output and end (no full screen): for scripts and plain terminals. */
  readonly once: boolean
  /** Lines of a server running in this process (`start --dash`), shown under the budgets. */
  readonly log: () => ReadonlyArray<string>
}

const readNow = (options: DashOptions, previous?: Snapshot.Snapshot) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Snapshot.read({ admin: options.admin, key: options.key, recent: RECENT, now, previous }))

/** The dashboard until it is quit; fails (with what to do) if the first read does. */
export const dash = (options: DashOptions): Effect.Effect<void, UsageError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const first = yield* readNow(options).pipe(Effect.mapError((error) => new UsageError({ message: error.message })))
    if (options.once) {
      const terminal = Help.terminal()
      const lines = Frame.render({
        snapshot: first,
        rate: undefined,
        problem: undefined,
        log: options.log(),
        width: process.stdout.isTTY === true ? process.stdout.columns ?? 100 : 120,
        height: 1_000,
        color: terminal.color,
        now: first.at
      })
      return yield* Console.log(lines.join("\n"))
    }
    if (!Terminal.isInteractive()) {
      return yield* new UsageError({ message: "tollgate dash needs a terminal (standard input and output): use --once to print one frame" })
    }
    yield* Effect.scoped(Effect.gen(function*() {
      const term = yield* Terminal.session
      let previous: Snapshot.Snapshot | undefined
      let current = first
      let rate: number | undefined
      let problem: string | undefined
      const color = Help.terminal().color
      const draw = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const { columns, rows } = term.size()
        return term.draw(Frame.render({ snapshot: current, rate, problem, log: options.log(), width: columns, height: rows, color, now }))
      })
      const refresh = Effect.suspend(() => readNow(options, current)).pipe(
        Effect.match({
          onFailure: (error) => {
            problem = error.message
          },
          onSuccess: (next) => {
            previous = current
            current = next
            rate = Snapshot.rateOf(previous, current)
            problem = undefined
          }
        }),
        Effect.zipRight(draw)
      )
      yield* draw
      yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(options.interval)).pipe(Effect.delay(options.interval)))
      // Keys and resizes until a quit: q, Q, Ctrl-C, Ctrl-D, or the terminal hanging up.
      yield* Queue.take(term.events).pipe(
        Effect.flatMap((event) =>
          event._tag === "Resize"
            ? Effect.as(draw, false)
            : Effect.succeed(event._tag === "Hangup" || event.key === "q" || event.key === "Q" || event.key === "\u0003" || event.key === "\u0004")
        ),
        Effect.repeat({ until: (quit) => quit })
      )
    }))
  })

/** `tollgate dash`'s flags. */
export interface Flags {
  readonly admin: Option.Option<string>
  readonly key: Option.Option<string>
  readonly interval: string
  readonly once: boolean
  readonly config: Option.Option<string>
}

export const run = (flags: Flags) =>
  Effect.gen(function*() {
    const interval = intervalOf(flags.interval)
    if (interval === undefined) {
      return yield* new UsageError({ message: `--interval: expected a duration of at least ${MIN_INTERVAL_MS}ms such as 1s, 500ms or 2s; got "${flags.interval}"` })
    }
    let admin: string
    if (Option.isSome(flags.admin)) {
      admin = Snapshot.normalizeUrl(flags.admin.value)
    } else {
      const url = adminUrlOfConfig(yield* Config.load({ configPath: Option.getOrUndefined(flags.config) }))
      if (typeof url !== "string") return yield* url
      admin = url
    }
    const fromEnv = process.env[KEY_ENV]
    const key = Option.getOrUndefined(flags.key) ?? (fromEnv === undefined || fromEnv === "" ? undefined : fromEnv)
    return yield* dash({ admin, key, interval, once: flags.once, log: () => [] })
  }).pipe(Effect.provide(FetchHttpClient.layer))
