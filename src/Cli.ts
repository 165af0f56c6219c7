/**
 * The `tollgate` command line: `start`, `stats`, `export`, `cost explain`, `route explain`,
 * `budget`, `alerts`, `prices`, `reprice`, `simulate`, `dash`, and the operations commands.
 *
 * `@effect/cli` parses; tollgate renders `--help` itself (`Cli/Help.ts`: plain text unless on a
 * colour terminal, wrapped to its width, `$ tollgate <command>` in usage lines). A failure prints
 * one line, `tollgate: what happened` with what to do; `--verbose` (or `TOLLGATE_VERBOSE=1`) adds
 * its stack and cause. Commands load their implementation when they run, and `start` (the proxy,
 * undici, the whole graph) only when it is named, so `--version` and `stats` start quickly.
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import type * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createRequire } from "node:module"
import { alerts, budget, cost, dash, exportCommand, init, prices, reprice, request, route, simulate, stats } from "./Cli/Commands.js"
import * as Help from "./Cli/Help.js"
import { operations } from "./Cli/Operations.js"

/** tollgate's version, from the package.json above this module: in src/ or dist/, or in a chunk of dist/chunks/. */
export const version: string = (() => {
  const require = createRequire(import.meta.url)
  for (const candidate of ["../package.json", "../../package.json"]) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string }
      if (pkg.name === "tollgate" && typeof pkg.version === "string") return pkg.version
    } catch {
      // not this one
    }
  }
  return "unknown"
})()

const DESCRIPTION = "Local-first LLM API proxy for OpenAI- and Anthropic-compatible providers: a cost ledger, " +
  "routing, budgets that block, exact-match cache, coalescing, retries, failover and circuit breakers"

const config = CliConfig.make({ showBuiltIns: false })

/** The root command; `start` is loaded only for a command line that may need it. */
const root = (withStart: boolean) =>
  Effect.map(
    withStart ? Effect.promise(() => import("./Cli/Start.js")) : Effect.succeed(undefined),
    (startModule): Root => {
      const tollgate = Command.make("tollgate").pipe(Command.withDescription(DESCRIPTION))
      return startModule === undefined
        ? rootOf(tollgate.pipe(Command.withSubcommands([stats, exportCommand, cost, budget, alerts, route, prices, reprice, simulate, request, init, dash, ...operations])))
        : rootOf(
          tollgate.pipe(Command.withSubcommands([startModule.start, stats, exportCommand, cost, budget, alerts, route, prices, reprice, simulate, request, init, dash, ...operations]))
        )
    }
  )

interface Root {
  readonly descriptor: Descriptor.Command<unknown>
  readonly run: (args: ReadonlyArray<string>) => Effect.Effect<void, unknown, CliApp.CliApp.Environment>
}

const rootOf = <A, E>(command: Command.Command<"tollgate", CliApp.CliApp.Environment, E, A>): Root => ({
  descriptor: command.descriptor,
  run: Command.run(command, { name: "tollgate", version })
})

/** The commands that work without `start`'s module (`Cli/Commands.ts`). */
const LIGHT = new Set([
  "stats", "export", "cost", "budget", "alerts", "route", "prices", "reprice", "simulate",
  "config", "ledger", "doctor", "providers", "cache", "prune", "service", "request", "init", "dash"
])

/** Failures that carry a message for a person: printed as they are. */
const messageOf = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const tag = (error as { _tag?: unknown })._tag
  const message = (error as { message?: unknown }).message
  if (tag === "ConfigError" || tag === "StoreError" || tag === "UsageError" || tag === "PricesError") return String(message)
  if (tag === "ServeError") return `cannot listen: ${String((error as { cause?: { message?: unknown } }).cause?.message ?? message)}`
  return undefined
}

const helpText = (doc: HelpDoc.HelpDoc): string => {
  const texts: Array<string> = []
  const visit = (d: HelpDoc.HelpDoc): void => {
    if (d._tag === "Sequence") {
      visit(d.left)
      visit(d.right)
    } else if (d._tag === "Paragraph" || d._tag === "Header") {
      texts.push(Help.stripAnsi(Help.spanText(d.value)))
    }
  }
  visit(doc)
  return texts.join(" ").replace(/\s+/g, " ").trim()
}

/** The one line a failure prints (the stack and the cause too with `verbose`). */
const report = (cause: Cause.Cause<unknown>, verbose: boolean, helpHint: string): string | undefined => {
  if (Cause.isInterruptedOnly(cause)) return undefined
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (ValidationError.isValidationError(error)) {
      const text = "error" in error ? helpText(error.error) : ""
      return `tollgate: ${text === "" ? "invalid command line" : text.replace(/\.$/, "")} (${helpHint})`
    }
    const message = messageOf(error)
    if (message !== undefined) return verbose ? `tollgate: ${message}\n${Cause.pretty(cause)}` : `tollgate: ${message}`
  }
  const squashed = Cause.squash(cause)
  const what = squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
  return verbose
    ? `tollgate: unexpected failure: ${what}\n${Cause.pretty(cause)}`
    : `tollgate: unexpected failure: ${what} (run again with --verbose for the stack)`
}

/**
 * `console` with ANSI escapes taken out of what it prints when colour is off, and with what
 * `@effect/cli` reports on standard error kept back: its usage errors are reported here, in one line.
 */
const plainConsole = (console: Console.Console, terminal: Help.Terminal, held: Array<string>): Console.Console => ({
  ...console,
  log: (...args) => console.log(...(terminal.color ? args : args.map((a) => (typeof a === "string" ? Help.stripAnsi(a) : a)))),
  error: (...args) => Effect.sync(() => void held.push(args.map(String).join(" ")))
})

/** Runs the CLI on `argv` (`[node, script, ...args]`); reports failures once, readably. */
export const main = (argv: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const [runtime = "node", script = "tollgate", ...given] = argv
    const end = given.indexOf("--")
    const own = end === -1 ? given : given.slice(0, end)
    const verbose = own.includes("--verbose") || process.env.TOLLGATE_VERBOSE === "1"
    const args = [...own.filter((a) => a !== "--verbose"), ...(end === -1 ? [] : given.slice(end))]
    const terminal = Help.terminal()
    const first = args.find((a) => !a.startsWith("-"))
    const onlyVersion = args.length === 1 && args[0] === "--version"
    // Answered here: the library's answer ends with an empty line.
    if (onlyVersion) return Console.log(version)
    return Effect.gen(function*() {
      const command = yield* root(first === undefined || !LIGHT.has(first))
      const target = Help.resolve(command.descriptor, args)
      const wantsHelp = own.includes("--help") || own.includes("-h")
      const group = Help.hasSubcommands(target.command)
      if (wantsHelp || (group && target.rest.length === 0)) {
        return yield* Console.log(Help.render({ program: "tollgate", version, command: target.command, path: target.path, config, terminal }))
      }
      const held: Array<string> = []
      const helpHint = `see tollgate${target.path.map((p) => ` ${p}`).join("")} --help`
      return yield* command.run([runtime, script, ...args]).pipe(
        Effect.provide(CliConfig.layer(config)),
        (run) => Effect.consoleWith((console) => Effect.withConsole(run, plainConsole(console, terminal, held))),
        Effect.onExit((exit) => {
          const cause = exit._tag === "Failure" ? exit.cause : undefined
          const usage = cause !== undefined && Option.exists(Cause.failureOption(cause), ValidationError.isValidationError)
          // What the library wrote to stderr for anything but a usage error (none is known) is not lost.
          const kept = usage ? [] : held.map(Help.stripAnsi)
          const line = cause === undefined ? undefined : report(cause, verbose, helpHint)
          return Effect.forEach([...kept, ...(line === undefined ? [] : [line])], (text) => Console.error(text), { discard: true })
        })
      )
    })
  })
