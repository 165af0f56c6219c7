/** `tollgate start`: load the configuration, say what is served, and serve until stopped. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Admin from "../Admin.js"
import * as Logging from "../Logging.js"
import * as Option from "effect/Option"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Config from "../Config.js"
import { describeLedger } from "../Store/Url.js"
import * as Http from "../Http.js"
import * as Workers from "../Node/Workers.js"
import { configOption, UsageError } from "./Shared.js"
import { baseUrlOf } from "../Upstream/Kinds.js"

/** `start --dash`: the dashboard on this process's own admin listener, until it is quit. */
const dashOn = (config: Config.TollgateSettings, admin: Admin.AdminServer["Type"], log: () => ReadonlyArray<string>) =>
  Option.match(admin.address, {
    onNone: () => Effect.fail(new UsageError({ message: "--dash reads the admin listener, which is off (server.admin: false)" })),
    onSome: (address) =>
      Effect.flatMap(Effect.promise(() => import("./Dash.js")), (Dash) =>
        Dash.dash({ admin: Dash.urlOn(address.hostname, address.port), key: config.server.adminKeys[0], interval: Duration.seconds(1), once: false, log }).pipe(
          Effect.provide(FetchHttpClient.layer)
        ))
  })

/** The first line `start` prints: which provider(s) will answer. */
export const describeProviders = (config: Config.TollgateSettings): string => {
  if (Config.isMockOnly(config)) {
    return "serving the built-in simulated provider (mock): no request leaves this machine"
  }
  const names = config.providers.map((p) =>
    `${p.name} (${baseUrlOf(p.config) ?? "simulated"})`
  )
  return `proxying to ${names.join(", ")}`
}

const LOG_LEVELS: Record<Config.LogLevelName, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error
}

/** Where a port or host came from, as the bind error says it. */
const origin = (from: string, config: Config.TollgateSettings, key: "port" | "host"): string =>
  from.startsWith("--")
    ? ` (${from})`
    : from === "file"
    ? config.source === undefined ? "" : ` from server.${key} in ${config.source}`
    : ` from the environment variable ${from}`

/**
 * A listener that cannot bind, said with where its port or host came from: a `PORT` left over
 * from another tool is the usual surprise.
 */
export const bindError = (error: ServeError, config: Config.TollgateSettings): Config.ConfigError | ServeError => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  const { port, host } = config.server
  if (code === "EADDRINUSE") {
    return new Config.ConfigError({
      message: `port ${port}${origin(config.bindFrom.port, config, "port")} is in use (set TOLLGATE_PORT or --port)`
    })
  }
  if (code === "EACCES") {
    return new Config.ConfigError({
      message: `port ${port}${origin(config.bindFrom.port, config, "port")} needs privileges to bind (set TOLLGATE_PORT or --port)`
    })
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new Config.ConfigError({
      message: `host ${host}${origin(config.bindFrom.host, config, "host")} is not an address of this machine (set TOLLGATE_HOST or --host)`
    })
  }
  return error
}

const ENVIRONMENT = "Environment (over tollgate.yaml, under these flags): TOLLGATE_PORT, TOLLGATE_HOST, TOLLGATE_DB, " +
  "TOLLGATE_CONFIG, TOLLGATE_BUDGET_DAILY_LIMIT_USD and TOLLGATE_BUDGET_MONTHLY_LIMIT_USD (a global limit in USD; " +
  "turns budgets on), TOLLGATE_CACHE_ENABLED (true|false), TOLLGATE_LOG_LEVEL (debug|info|warning|error), " +
  "TOLLGATE_ADMIN_PORT (server.admin.port). Providers when tollgate.yaml has none: OPENAI_API_KEY, ANTHROPIC_API_KEY, " +
  "UPSTREAM_BASE_URL (+ UPSTREAM_API_KEY if that server wants a key). PORT and HOST are read after TOLLGATE_PORT and TOLLGATE_HOST. " +
  "Cloud ingest: CLOUD_INGEST_URL, WORKSPACE_ID, WORKSPACE_INGEST_KEY (each under telemetry.cloud in tollgate.yaml)."

/** The lines after the first: where it listens, the admin listener, the ledger and the config file. */
const bannerOf = (config: Config.TollgateSettings, publicLine: string, adminLine: string, stopLine: string): string =>
  `  ${publicLine}
  ${adminLine}
  ledger ${describeLedger(config)}${config.source === undefined ? "" : `
  config ${config.source}`}
  ${stopLine}`

/** The public listener, then the admin listener, on one graph built once for `config`. */
const graph = (config: Config.TollgateSettings, announce: Layer.Layer<never, never, HttpServer.HttpServer | Admin.AdminServer>) => {
  const served = Admin.layerWithoutDependencies.pipe(Layer.provideMerge(Http.layer))
  return announce.pipe(Layer.provideMerge(served), Layer.provide(Layer.succeed(Config.TollgateConfig, config)))
}

/** Serves until stopped. */
const launch = (config: Config.TollgateSettings, announce: Layer.Layer<never, never, HttpServer.HttpServer | Admin.AdminServer>) =>
  Layer.launch(graph(config, announce)).pipe(
    Effect.catchTag("ServeError", (error) => Effect.fail(bindError(error, config)))
  )

/** Serves while the terminal dashboard has the screen: the log is held and shown there, then printed once it ends. */
const launchWithDash = (config: Config.TollgateSettings, announce: Layer.Layer<never, never, HttpServer.HttpServer | Admin.AdminServer>) => {
  const held = Logging.holding(100)
  const serving = Effect.flatMap(Layer.build(graph(config, announce)), (context) => dashOn(config, Context.get(context, Admin.AdminServer), held.lines))
  return Effect.scoped(serving).pipe(
    Effect.catchTag("ServeError", (error) => Effect.fail(bindError(error, config))),
    Effect.ensuring(Effect.suspend(() => Effect.forEach(held.lines(), (l) => Console.error(l), { discard: true }))),
    Effect.locally(FiberRef.currentLoggers, HashSet.make(held.logger))
  )
}

/** `http://host:port` of the public listener and of the admin listener (none when off). */
const addresses = Effect.zipWith(HttpServer.HttpServer, Admin.AdminServer, (server, admin) => {
  const address = server.address
  return {
    url: address._tag === "TcpAddress" ? Admin.urlOf(address) : address.path,
    admin: Option.map(admin.address, Admin.urlOf)
  }
})

const ADMIN_PATHS = "(the dashboard at /, /metrics, /admin/stats, /admin/budget, /admin/recent, /admin/reload, /debug/status)"

/** One process: the banner, then serve until stopped (with `dash`, until the dashboard is quit). */
const serve = (config: Config.TollgateSettings, dash: boolean) =>
  Effect.gen(function*() {
    yield* Console.log(`tollgate: ${describeProviders(config)}`)
    for (const notice of config.notices) yield* Console.log(`  note: ${notice}`)
    const announce = Layer.effectDiscard(Effect.flatMap(addresses, ({ url, admin }) =>
      Console.log(bannerOf(
        config,
        `listening on ${url}/v1 (point OPENAI_BASE_URL here)`,
        Option.match(admin, {
          onNone: () => "admin listener off (server.admin: false)",
          onSome: (a) => `admin on ${a} ${ADMIN_PATHS}`
        }),
        "stop with Ctrl-C; queued ledger rows are written before exit"
      ))))
    return yield* (dash ? launchWithDash(config, announce) : launch(config, announce))
  })

/** How many workers: `--workers`, else `server.workers`, else one. */
const workerCount = (flag: Option.Option<string>, config: Config.TollgateSettings) => {
  const given = Option.isSome(flag)
    ? Workers.parseCount(flag.value, "--workers")
    : config.server.workers === undefined
    ? 1
    : Workers.parseCount(config.server.workers, `server.workers${config.source === undefined ? "" : ` in ${config.source}`}`)
  return typeof given === "number" ? Effect.succeed(given) : Effect.fail(new Config.ConfigError({ message: given.problem }))
}

/** The primary of `--workers N`: refuses a configuration the workers cannot share, prints one banner, supervises. */
const superviseWorkers = (config: Config.TollgateSettings, count: number) =>
  Effect.gen(function*() {
    const refused = Workers.forkRefusal(count) ?? Workers.refusal(config, count)
    if (refused !== undefined) return yield* new Config.ConfigError({ message: refused })
    yield* Console.log(`tollgate: ${describeProviders(config)}`)
    for (const notice of [...config.notices, ...Workers.notes(config, count)]) yield* Console.log(`  note: ${notice}`)
    const onReady = (workers: ReadonlyArray<Workers.Ready>) => {
      const admins = workers.flatMap((w, i) => (w.admin === null ? [] : [`${w.admin} (worker ${i + 1})`]))
      return Console.log(bannerOf(
        config,
        `listening on ${workers[0]!.url}/v1 (point OPENAI_BASE_URL here): ${count} workers, pids ${workers.map((w) => w.pid).join(", ")}`,
        admins.length === 0
          ? "admin listener off (server.admin: false)"
          : `admin of each worker on ${admins.join(", ")} ${ADMIN_PATHS}`,
        "stop with Ctrl-C; each worker finishes its requests and writes its queued ledger rows before exit"
      ))
    }
    return yield* Effect.scoped(Workers.supervise({
      count,
      onReady,
      // Draining may take server.drainTimeout; the ledger's last batch and the exit need a little more.
      stopTimeout: Duration.sum(Duration.millis(config.server.drainTimeout), Duration.seconds(15))
    }))
  })

/** One worker of `--workers N`: the normal server, on its own admin port, that tells the primary where it serves. */
const serveAsWorker = (config: Config.TollgateSettings, worker: Workers.Identity) =>
  Effect.gen(function*() {
    yield* Workers.ignoreRepeatedSignals
    yield* Workers.drainWhenOrphaned
    const own = { ...config, server: { ...config.server, admin: Workers.adminFor(config.server.admin, worker.index) } }
    const announce = Layer.effectDiscard(
      Effect.flatMap(addresses, ({ url, admin }) => Workers.announceReady(url, Option.getOrNull(admin)))
    )
    return yield* launch(own, announce).pipe(
      Effect.tapError((error) => Workers.failStart(error._tag === "ServeError" ? `cannot listen: ${String(error.cause)}` : error.message))
    )
  }).pipe(Effect.annotateLogs("worker", String(worker.index)))

export const start = Command.make(
  "start",
  {
    config: configOption,
    port: Options.integer("port").pipe(
      Options.withDescription("Port to listen on (default: $TOLLGATE_PORT, $PORT, server.port, 4100)"),
      Options.optional
    ),
    host: Options.text("host").pipe(
      Options.withDescription("Address to listen on (default: $TOLLGATE_HOST, $HOST, server.host, 127.0.0.1)"),
      Options.optional
    ),
    demo: Options.boolean("demo").pipe(
      Options.withDescription("Serve only the built-in simulated provider, whatever is configured")
    ),
    watch: Options.boolean("watch").pipe(
      Options.withDescription("Reload routing (routes, models) when the config file changes; an invalid file is refused and the running config stays")
    ),
    adminPort: Options.integer("admin-port").pipe(
      Options.withDescription("Port of the admin listener (/metrics, /admin/*, /debug/*); 0 picks a free one (default: $TOLLGATE_ADMIN_PORT, server.admin.port, 4101)"),
      Options.optional
    ),
    logFormat: Options.choice("log-format", Logging.LOG_FORMATS).pipe(
      Options.withDescription("Log lines for people (pretty) or one JSON object per line (json)"),
      Options.withDefault("pretty" as const)
    ),
    workers: Options.text("workers").pipe(
      Options.withPseudoName("N|auto"),
      Options.withDescription(
        "Processes serving the port: 1 to 64, or auto (one per core). More than one needs the ledger on PostgreSQL (database.url) " +
          "and, with budgets, redis:; each worker has its own admin port from server.admin.port up (default: server.workers, 1)"
      ),
      Options.optional
    ),
    logLevel: Options.choice("log-level", Config.LOG_LEVELS).pipe(
      Options.withDescription("Least severe log line printed (default: $TOLLGATE_LOG_LEVEL, info)"),
      Options.optional
    ),
    dash: Options.boolean("dash").pipe(
      Options.withDescription(
        "Show the terminal dashboard (as `tollgate dash`) while serving; its log lines go under the budgets and are printed when it ends. q or Ctrl-C stops the server"
      )
    )
  },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* Config.load({
        configPath: Option.getOrUndefined(flags.config),
        port: Option.getOrUndefined(flags.port),
        host: Option.getOrUndefined(flags.host),
        demo: flags.demo,
        watch: flags.watch,
        adminPort: Option.getOrUndefined(flags.adminPort)
      })
      const worker = Workers.identity
      const run = worker !== undefined
        ? serveAsWorker(config, worker)
        : Effect.flatMap(workerCount(flags.workers, config), (count) =>
          count <= 1
            ? serve(config, flags.dash)
            : flags.dash
            ? Effect.fail(new UsageError({
              message: "--dash shows one process; with several workers run `tollgate dash --admin URL` on a worker's admin listener (the banner lists them)"
            }))
            : superviseWorkers(config, count))
      const level = Option.getOrUndefined(flags.logLevel) ?? config.logLevel
      const leveled = level === undefined ? run : run.pipe(Logger.withMinimumLogLevel(LOG_LEVELS[level]))
      return yield* Logging.withFormat(leveled, flags.logFormat)
    })
).pipe(Command.withDescription(`Start the proxy on 127.0.0.1:4100 (OpenAI-compatible API under /v1). ${ENVIRONMENT}`))
