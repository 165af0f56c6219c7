/** `tollgate start`: load the configuration, say what is served, and serve until stopped. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import * as Http from "../Http.js"
import { configOption } from "./Shared.js"

/** The first line `start` prints: which provider(s) will answer. */
export const describeProviders = (config: Config.TollgateConfig): string => {
  if (Config.isMockOnly(config)) {
    return "serving the built-in simulated provider (mock): no request leaves this machine"
  }
  const names = config.providers.map((p) =>
    p.config.kind === "mock" ? `${p.name} (simulated)` : `${p.name} (${p.config.baseUrl})`
  )
  return `proxying to ${names.join(", ")}`
}

export const start = Command.make(
  "start",
  {
    config: configOption,
    port: Options.integer("port").pipe(Options.withDescription("Port to listen on (default 4100)"), Options.optional),
    host: Options.text("host").pipe(Options.withDescription("Address to listen on (default 127.0.0.1)"), Options.optional),
    demo: Options.boolean("demo").pipe(
      Options.withDescription("Serve only the built-in simulated provider, whatever is configured")
    ),
    watch: Options.boolean("watch").pipe(
      Options.withDescription("Reload routing (routes, models) when the config file changes; an invalid file is refused and the running config stays")
    )
  },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* Config.load({
        configPath: Option.getOrUndefined(flags.config),
        port: Option.getOrUndefined(flags.port),
        host: Option.getOrUndefined(flags.host),
        demo: flags.demo,
        watch: flags.watch
      })
      yield* Console.log(`tollgate: ${describeProviders(config)}`)
      for (const notice of config.notices) yield* Console.log(`  note: ${notice}`)
      const announce = Layer.effectDiscard(
        Effect.flatMap(HttpServer.HttpServer, (server) => {
          const address = server.address
          const base = address._tag === "TcpAddress"
            ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
            : address.path
          return Console.log(
            `  listening on ${base}/v1 (point OPENAI_BASE_URL here)\n  ledger ${config.dbPath}${config.source === undefined ? "" : `\n  config ${config.source}`}\n  stop with Ctrl-C; queued ledger rows are written before exit`
          )
        })
      )
      return yield* Layer.launch(announce.pipe(Layer.provide(Http.layer), Layer.provide(Layer.succeed(Config.Config, config))))
    })
).pipe(Command.withDescription("Start the proxy on 127.0.0.1:4100 (OpenAI-compatible API under /v1)"))
