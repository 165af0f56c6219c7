/**
 * tollgate's log lines: one structured line per notable event (a retry, a failover, a breaker
 * changing state, a budget block or downgrade, an alert, a cache store refused, a reload), never
 * one per request at info. Each line's annotations carry the event's fields (`event` names it),
 * so `--log-format json` gives a machine one object per event and `pretty` gives a person the
 * same fields after the message.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

export const LOG_FORMATS = ["pretty", "json"] as const
export type LogFormat = typeof LOG_FORMATS[number]

export type EventLevel = "debug" | "info" | "warning" | "error"

const LEVELS: Record<EventLevel, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error
}

/** One event's line: `message` for a person, `fields` (with `event`) as the line's annotations. */
export const event = (
  level: EventLevel,
  name: string,
  message: string,
  fields: Readonly<Record<string, string | number | boolean | null>>
): Effect.Effect<void> => Effect.annotateLogs(Effect.logWithLevel(LEVELS[level], message), { event: name, ...fields })

/**
 * A state said on its transitions only: `lost` logs the first time in a row it is called,
 * `back` once after that (an outage is two lines, however many requests meet it).
 */
export const transitions = <A>(onLost: (cause: A) => Effect.Effect<void>, onBack: Effect.Effect<void>) => {
  let down = false
  return {
    lost: (cause: A): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (down) return Effect.void
        down = true
        return onLost(cause)
      }),
    back: Effect.suspend(() => {
      if (!down) return Effect.void
      down = false
      return onBack
    })
  }
}

/** The least severe level printed. */
export const minimumLevel = (level: EventLevel): Layer.Layer<never> => Logger.minimumLogLevel(LEVELS[level])

/**
 * Runs `effect` with the logger of `--log-format`: `json`, one JSON object per line (Effect's
 * `Logger.jsonLogger`: message, logLevel, timestamp, annotations, spans, fiberId) in place of
 * whatever loggers are installed; `pretty`, the ones installed (the executable's pretty logger,
 * which escapes control characters in messages).
 */
export const withFormat = <A, E, R>(effect: Effect.Effect<A, E, R>, name: LogFormat): Effect.Effect<A, E, R> =>
  name === "json" ? Effect.locally(effect, FiberRef.currentLoggers, HashSet.make(JSON_LINES)) : effect

/** Effect's JSON logger, written to the console (stdout) one object per line. */
const JSON_LINES = Logger.withConsoleLog(Logger.jsonLogger)

/**
 * A logger that keeps the last `capacity` lines in memory instead of printing them, for a screen
 * someone else owns (`start --dash` shows them, then prints them when it ends): the time, the
 * level, the message and its annotations, control characters escaped.
 */
export const holding = (capacity: number): { readonly logger: Logger.Logger<unknown, void>; readonly lines: () => ReadonlyArray<string> } => {
  const lines: Array<string> = []
  const text = (value: unknown): string =>
    // eslint-disable-next-line no-control-regex
    (typeof value === "string" ? value : JSON.stringify(value) ?? String(value)).replace(/[\u0000-\u001f\u007f]/g, (c) =>
      `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  const logger = Logger.make<unknown, void>(({ annotations, date, logLevel, message }) => {
    const parts = (Array.isArray(message) ? message : [message]).map(text)
    for (const [key, value] of annotations) parts.push(`${key}=${text(value)}`)
    lines.push(`${date.toTimeString().slice(0, 8)} ${logLevel.label} ${parts.join(" ")}`)
    if (lines.length > capacity) lines.shift()
  })
  return { logger, lines: () => lines }
}
