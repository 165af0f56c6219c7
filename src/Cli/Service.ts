/**
 * `tollgate service install|uninstall|status`: tollgate as a user service that starts at login and
 * restarts on failure: a systemd user unit on Linux, a launchd agent on macOS. `--dry-run` prints
 * what would be written or run and changes nothing. A service does not see the variables of the
 * shell it was installed from, so provider keys go in an environment file the unit reads (Linux) or
 * the agent's own environment (macOS), never in the unit itself.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { configOption, UsageError } from "./Shared.js"

export type Platform = "linux" | "darwin"

export interface ServicePlan {
  readonly platform: Platform
  /** Where the unit or agent file goes. */
  readonly file: string
  readonly content: string
  /** The commands that load and start it (install), or stop and unload it (uninstall). */
  readonly enable: ReadonlyArray<ReadonlyArray<string>>
  readonly disable: ReadonlyArray<ReadonlyArray<string>>
  readonly status: ReadonlyArray<string>
  /** Where the provider keys go, for a person. */
  readonly keys: string
}

const LABEL = "dev.tollgate"

/** `start`'s command line for the service: this node, this executable, and the config as an absolute path. */
const startCommand = (node: string, bin: string, config: string | undefined): Array<string> => [
  node,
  "--v8-pool-size=2",
  bin,
  "start",
  ...(config === undefined ? [] : ["--config", config])
]

/** A systemd `ExecStart` argument, quoted when it must be. */
const systemdArg = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, "\\$1")}"`)

const xml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** The unit (Linux) or agent (macOS) for this home, node, executable and config. */
export const plan = (input: {
  readonly platform: Platform
  readonly home: string
  readonly node: string
  readonly bin: string
  readonly config: string | undefined
}): ServicePlan => {
  const command = startCommand(input.node, input.bin, input.config)
  if (input.platform === "linux") {
    const envFile = path.join(input.home, ".config", "tollgate", "env")
    return {
      platform: "linux",
      file: path.join(input.home, ".config", "systemd", "user", "tollgate.service"),
      content: [
        "[Unit]",
        "Description=tollgate, the LLM API proxy",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        `ExecStart=${command.map(systemdArg).join(" ")}`,
        // Provider keys (OPENAI_API_KEY=...), one per line; the leading `-`: a missing file is fine.
        `EnvironmentFile=-${envFile}`,
        "Restart=on-failure",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=default.target",
        ""
      ].join("\n"),
      enable: [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "tollgate.service"]],
      disable: [["systemctl", "--user", "disable", "--now", "tollgate.service"], ["systemctl", "--user", "daemon-reload"]],
      status: ["systemctl", "--user", "status", "tollgate.service", "--no-pager"],
      keys: `put provider keys (OPENAI_API_KEY=...) in ${envFile}, readable only by you (chmod 600), then: systemctl --user restart tollgate`
    }
  }
  const file = path.join(input.home, "Library", "LaunchAgents", `${LABEL}.plist`)
  const log = path.join(input.home, ".tollgate", "tollgate.log")
  return {
    platform: "darwin",
    file,
    content: [
      `<?xml version="1.0" encoding="UTF-8"?>`,
      `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`,
      `<plist version="1.0">`,
      `<dict>`,
      `  <key>Label</key><string>${LABEL}</string>`,
      `  <key>ProgramArguments</key>`,
      `  <array>`,
      ...command.map((arg) => `    <string>${xml(arg)}</string>`),
      `  </array>`,
      `  <key>RunAtLoad</key><true/>`,
      // Restart when it exits with a failure, not after a clean stop.
      `  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>`,
      `  <key>StandardOutPath</key><string>${xml(log)}</string>`,
      `  <key>StandardErrorPath</key><string>${xml(log)}</string>`,
      `</dict>`,
      `</plist>`,
      ""
    ].join("\n"),
    enable: [["launchctl", "load", "-w", file]],
    disable: [["launchctl", "unload", "-w", file]],
    status: ["launchctl", "list", LABEL],
    keys: `set provider keys for the agent with launchctl setenv OPENAI_API_KEY ... (or a tollgate.yaml apiKeyEnv the agent can see), then: launchctl kickstart -k gui/$(id -u)/${LABEL}`
  }
}

const platformOption = Options.choice("platform", ["linux", "darwin"]).pipe(
  Options.withDescription("Write the service for this system (default: this machine's)"),
  Options.optional
)
const dryRunOption = Options.boolean("dry-run").pipe(Options.withDescription("Print what would be written and run; change nothing"))
const noEnableOption = Options.boolean("no-enable").pipe(
  Options.withDescription("Write or remove the file only; do not run systemctl or launchctl")
)

const platformOf = (chosen: Option.Option<"linux" | "darwin">) =>
  Effect.suspend(() => {
    if (Option.isSome(chosen)) return Effect.succeed(chosen.value)
    const here = process.platform
    return here === "linux" || here === "darwin"
      ? Effect.succeed(here as Platform)
      : Effect.fail(new UsageError({ message: `tollgate service supports Linux (systemd) and macOS (launchd), not ${here}` }))
  })

const planHere = (flags: { readonly platform: Option.Option<"linux" | "darwin">; readonly config?: Option.Option<string> }) =>
  Effect.map(platformOf(flags.platform), (platform) =>
    plan({
      platform,
      home: os.homedir(),
      node: process.execPath,
      bin: fs.realpathSync(process.argv[1] ?? "tollgate"),
      config: flags.config === undefined ? undefined : Option.getOrUndefined(Option.map(flags.config, (file) => path.resolve(file)))
    }))

/** Runs each command; the first that fails is the error, with what to run by hand. */
const runAll = (commands: ReadonlyArray<ReadonlyArray<string>>) =>
  Effect.forEach(commands, (command) =>
    Effect.try({
      try: () => void execFileSync(command[0]!, command.slice(1), { stdio: "inherit" }),
      catch: (error) =>
        new UsageError({
          message: `${command.join(" ")} failed (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); run it yourself once it can`
        })
    }), { discard: true })

const install = Command.make(
  "install",
  { config: configOption, platform: platformOption, dryRun: dryRunOption, noEnable: noEnableOption },
  (flags) =>
    Effect.gen(function*() {
      const service = yield* planHere(flags)
      if (flags.dryRun) {
        yield* Console.log(`would write ${service.file}:\n\n${service.content}`)
        if (!flags.noEnable) for (const command of service.enable) yield* Console.log(`would run: ${command.join(" ")}`)
        return
      }
      fs.mkdirSync(path.dirname(service.file), { recursive: true })
      // Written whole or not at all: an existing unit is replaced in one rename.
      const temporary = `${service.file}.${process.pid}.tmp`
      fs.writeFileSync(temporary, service.content)
      fs.renameSync(temporary, service.file)
      yield* Console.log(`wrote ${service.file}`)
      if (!flags.noEnable) yield* runAll(service.enable)
      yield* Console.log(service.keys)
    })
).pipe(Command.withDescription("Install tollgate start as a user service that starts at login and restarts on failure"))

const uninstall = Command.make(
  "uninstall",
  { platform: platformOption, dryRun: dryRunOption, noEnable: noEnableOption },
  (flags) =>
    Effect.gen(function*() {
      const service = yield* planHere(flags)
      if (!fs.existsSync(service.file)) return yield* Console.log(`no service installed (${service.file} does not exist)`)
      if (flags.dryRun) {
        if (!flags.noEnable) for (const command of service.disable) yield* Console.log(`would run: ${command.join(" ")}`)
        return yield* Console.log(`would remove ${service.file}`)
      }
      if (!flags.noEnable) yield* runAll(service.disable)
      fs.rmSync(service.file)
      yield* Console.log(`removed ${service.file}`)
    })
).pipe(Command.withDescription("Stop the user service and remove its file"))

const status = Command.make(
  "status",
  { platform: platformOption },
  (flags) =>
    Effect.gen(function*() {
      const service = yield* planHere(flags)
      if (!fs.existsSync(service.file)) return yield* Console.log(`not installed (${service.file} does not exist)`)
      yield* Console.log(`installed: ${service.file}`)
      yield* runAll([service.status]).pipe(Effect.catchAll((error) => Console.log(error.message)))
    })
).pipe(Command.withDescription("Whether the user service is installed, and what the service manager says of it"))

export const service = Command.make("service").pipe(
  Command.withDescription("tollgate as a user service: a systemd user unit on Linux, a launchd agent on macOS"),
  Command.withSubcommands([install, uninstall, status])
)
