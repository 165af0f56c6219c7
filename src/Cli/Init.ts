/**
 * `tollgate init`: writes a tollgate.yaml for a provider, a port, a daily budget and the cache,
 * asked for at a terminal (Effect CLI prompts) or taken from flags (`--yes`, or when not at a
 * terminal). The file is validated as `start` would read it, written whole (an existing one is kept
 * beside it as a backup), and the next command is printed.
 */
import * as Prompt from "@effect/cli/Prompt"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Yaml from "yaml"
import * as Config from "../Config.js"
import { PRESET_NAMES, presets } from "../Config/Presets.js"
import type { INIT_PROVIDERS } from "./Commands.js"
import { UsageError } from "./Shared.js"
import { KINDS, type KindName } from "../Upstream/Kinds.js"

/** What a provider choice means: a kind, maybe a preset or a base URL, and its key variable. */
export const PROVIDERS = ["openai", "anthropic", ...PRESET_NAMES, "local", "mock"] as const
export type ProviderChoice = typeof PROVIDERS[number]
// The command's list (spelled apart so that parsing loads nothing) must be this one: a type error otherwise.
const agreed: ReadonlyArray<typeof INIT_PROVIDERS[number]> = PROVIDERS
const agreedBack: ReadonlyArray<ProviderChoice> = [] as ReadonlyArray<typeof INIT_PROVIDERS[number]>
void agreed
void agreedBack

export interface InitFlags {
  readonly file: string
  readonly provider: Option.Option<string>
  readonly baseUrl: Option.Option<string>
  readonly keyEnv: Option.Option<string>
  readonly port: Option.Option<number>
  readonly dailyBudget: Option.Option<number>
  readonly cache: Option.Option<boolean>
  readonly yes: boolean
}

export interface Answers {
  readonly provider: ProviderChoice
  readonly baseUrl: string | undefined
  readonly keyEnv: string | undefined
  readonly port: number
  /** USD a day; 0: no budget. */
  readonly dailyBudget: number
  readonly cache: boolean
}

/** The key variable a provider reads unless told otherwise (its kind's or its preset's; none for a local server or the simulated one). */
export const defaultKeyEnv = (provider: ProviderChoice): string | undefined =>
  provider in KINDS
    ? KINDS[provider as KindName].defaultKeyEnv
    : provider in presets ? presets[provider as keyof typeof presets].apiKeyEnv : undefined

/** The configuration these answers make, as the object tollgate.yaml will hold. */
export const configOf = (answers: Answers): Record<string, unknown> => {
  const { provider } = answers
  const entry: Record<string, unknown> = provider === "mock"
    ? { kind: "mock" }
    : provider === "anthropic"
    ? { kind: "anthropic" }
    : provider === "openai"
    ? { kind: "openai", baseUrl: answers.baseUrl ?? "https://api.openai.com/v1" }
    : provider === "local"
    ? { kind: "openai", baseUrl: answers.baseUrl ?? "http://127.0.0.1:8000/v1" }
    : { kind: "openai", preset: provider }
  if (answers.baseUrl !== undefined && provider !== "openai" && provider !== "local" && provider !== "mock") entry.baseUrl = answers.baseUrl
  const keyEnv = answers.keyEnv ?? defaultKeyEnv(provider)
  if (keyEnv !== undefined && provider !== "mock") entry.apiKeyEnv = keyEnv
  return {
    server: { port: answers.port },
    providers: { [provider === "local" ? "local" : provider]: entry },
    cache: { enabled: answers.cache },
    ...(answers.dailyBudget > 0 ? { budget: { enabled: true, limits: [{ window: "daily", usd: answers.dailyBudget }] } } : {})
  }
}

const isProvider = (name: string): name is ProviderChoice => (PROVIDERS as ReadonlyArray<string>).includes(name)

/** Asks at the terminal for whatever the flags left open. */
const ask = (flags: InitFlags, chosen: ProviderChoice | undefined): Effect.Effect<Answers, unknown, Prompt.Prompt.Environment> =>
  Effect.gen(function*() {
    const provider = chosen !== undefined ? chosen : yield* Prompt.select({
      message: "Which provider should tollgate send requests to?",
      choices: PROVIDERS.map((value) =>
        value === "local"
          ? { title: value, value, description: "an OpenAI-compatible server (vLLM, LM Studio...)" }
          : value === "mock"
          ? { title: value, value, description: "the built-in simulated model" }
          : { title: value, value }
      )
    })
    const baseUrl = Option.isSome(flags.baseUrl)
      ? flags.baseUrl.value
      : provider === "local"
      ? yield* Prompt.text({ message: "Its base URL", default: "http://127.0.0.1:8000/v1" })
      : undefined
    const suggested = defaultKeyEnv(provider)
    const keyEnv = Option.isSome(flags.keyEnv)
      ? flags.keyEnv.value
      : provider === "mock" || provider === "local" || provider === "ollama"
      ? undefined
      : yield* Prompt.text({ message: "The environment variable that holds its key", default: suggested ?? "" })
    const port = Option.isSome(flags.port) ? flags.port.value : yield* Prompt.integer({ message: "Port (4100 is tollgate's)", min: 1, max: 65_535 })
    const dailyBudget = Option.isSome(flags.dailyBudget)
      ? flags.dailyBudget.value
      : yield* Prompt.float({ message: "A daily budget in USD (0 for none)", min: 0 })
    const cache = Option.isSome(flags.cache) ? flags.cache.value : yield* Prompt.confirm({ message: "Cache exact repeats?", initial: true })
    return { provider, baseUrl, keyEnv: keyEnv === "" ? undefined : keyEnv, port, dailyBudget, cache }
  })

/** The flags, with defaults for what they leave open (no terminal to ask at). */
const fromFlags = (flags: InitFlags, chosen: ProviderChoice | undefined): Answers => ({
  provider: chosen ?? "mock",
  baseUrl: Option.getOrUndefined(flags.baseUrl),
  keyEnv: Option.getOrUndefined(flags.keyEnv),
  port: Option.getOrElse(flags.port, () => 4100),
  dailyBudget: Option.getOrElse(flags.dailyBudget, () => 0),
  cache: Option.getOrElse(flags.cache, () => true)
})

export const run = (flags: InitFlags) =>
  Effect.gen(function*() {
    const named = Option.getOrUndefined(flags.provider)
    if (named !== undefined && !isProvider(named)) {
      return yield* new UsageError({ message: `--provider: expected one of ${PROVIDERS.join(", ")}; got "${named}"` })
    }
    const chosen = named as ProviderChoice | undefined
    const interactive = !flags.yes && process.stdin.isTTY === true && process.stdout.isTTY === true
    const answers = interactive ? yield* ask(flags, chosen) : fromFlags(flags, chosen)
    const file = path.resolve(flags.file)
    const text = `# Written by tollgate init; every key is described in the README's Configuration section.\n${Yaml.stringify(configOf(answers))}`
    // Validated before anything is written: a file init writes always starts.
    const temporary = `${file}.${process.pid}.tmp`
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(temporary, text)
    const checked = yield* Effect.either(Config.load({ configPath: temporary }))
    if (checked._tag === "Left") {
      fs.rmSync(temporary, { force: true })
      return yield* new UsageError({ message: `the configuration these answers make is not valid: ${checked.left.message}` })
    }
    if (fs.existsSync(file)) {
      const backup = `${file}.bak-${new Date().toISOString().replace(/[:.]/g, "-")}`
      fs.copyFileSync(file, backup)
      yield* Console.log(`kept the previous file as ${backup}`)
    }
    fs.renameSync(temporary, file)
    yield* Console.log(`wrote ${file}`)
    const keyEnv = answers.keyEnv ?? (answers.provider === "mock" ? undefined : defaultKeyEnv(answers.provider))
    if (keyEnv !== undefined && (process.env[keyEnv] ?? "") === "") yield* Console.log(`set ${keyEnv} before you start (it is not set here)`)
    const here = path.dirname(file) === process.cwd() && path.basename(file) === "tollgate.yaml"
    yield* Console.log(`next: tollgate start${here ? "" : ` --config ${flags.file}`}`)
  })
