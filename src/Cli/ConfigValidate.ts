/** `tollgate config validate`: load the configuration as `start` would, and say whether it holds. */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import { configOption } from "./Shared.js"

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`

/** `FILE (N providers, M routes)`, or where the configuration came from when no file was found. */
export const describeConfig = (config: Config.TollgateSettings): string =>
  `${config.source ?? "no tollgate.yaml found: defaults and environment"} ` +
  `(${plural(config.providers.length, "provider")}, ${plural(config.routes.length, "route")})`

const validate = Command.make(
  "validate",
  { config: configOption },
  (flags) =>
    Effect.gen(function*() {
      // The same discovery, decoding and resolution as `start`: a file that passes here starts.
      // An invalid one fails with the ConfigError `start` would print (one line per problem), exit 1.
      const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
      yield* Console.log(`ok: ${describeConfig(config)}`)
      for (const notice of config.notices) yield* Console.log(`  note: ${notice}`)
      // The extra key variables (`modelKeys`), whether set or not: which models each one serves.
      for (const provider of config.providers) {
        for (const key of provider.modelKeys ?? []) {
          yield* Console.log(
            `  key: provider "${provider.name}" sends ${key.apiKeyEnv} (${key.missing ? "not set" : "set"}) ` +
              `as ${key.as === "bearer" ? "Authorization: Bearer" : "x-api-key"} for models ${key.models.join(", ")}`
          )
        }
      }
    })
).pipe(Command.withDescription(
  "Load and check the configuration exactly as start would (file, environment, provider keys, route references); " +
    "prints \"ok: FILE (N providers, M routes)\" and exits 0, or one line per problem and exits 1"
))

export const config = Command.make("config").pipe(
  Command.withDescription("Check the configuration without starting"),
  Command.withSubcommands([validate])
)
