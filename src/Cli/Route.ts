/**
 * `tollgate route explain`: the routing decision for a request file, with its trace (suffix,
 * alias, override, rule, tier, each target kept or skipped and why), without sending anything.
 * Breakers and latencies are those of a fresh start (all closed, none measured): explain shows
 * what the configuration decides, not what a running proxy's health state adds.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import type * as Headers from "@effect/platform/Headers"
import { BY_NAME, type EndpointName } from "../Dialect/Bridge.js"
import * as Router from "../Router.js"
import * as Explain from "../Router/Explain.js"
import { UsageError } from "./Shared.js"

const encoder = new TextEncoder()

/** Reads the request body and builds the facts the proxy would build for it. */
export const readFacts = (options: {
  readonly file: string
  readonly model: Option.Option<string>
  readonly endpoint: Option.Option<EndpointName>
  readonly headers: Readonly<Record<string, string>>
}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(options.file).pipe(
      Effect.mapError((e) => new UsageError({ message: `--file: cannot read ${options.file}: ${e.message}` }))
    )
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new UsageError({ message: `--file: ${options.file} is not JSON: ${e instanceof Error ? e.message : String(e)}` })
    })
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return yield* new UsageError({ message: `--file: ${options.file} must hold a JSON object (a request body)` })
    }
    let json = parsed as Record<string, unknown>
    if (Option.isSome(options.model)) json = { ...json, model: options.model.value }
    if (typeof json.model !== "string" || json.model.length === 0) {
      return yield* new UsageError({ message: `--file: the request has no "model"; give one with --model` })
    }
    // An Anthropic body carries its system prompt at the top level; OpenAI's is a message; a
    // Responses body has `input` and no messages.
    const endpoint = Option.getOrElse(
      options.endpoint,
      (): EndpointName => ("system" in json ? "messages" : "input" in json && !("messages" in json) ? "responses" : "chat")
    )
    const raw = encoder.encode(JSON.stringify(json))
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(options.headers)) headers[k.toLowerCase()] = v
    const read = BY_NAME[endpoint].parse(raw, headers as Headers.Headers)
    if (Either.isLeft(read)) return yield* new UsageError({ message: `--file: not a valid ${BY_NAME[endpoint].endpoint} body: ${read.left.message}` })
    return read.right.facts
  })

/** `tollgate route explain`. */
export const explain = (flags: {
  readonly file: string
  readonly config: Option.Option<string>
  readonly model: Option.Option<string>
  readonly endpoint: Option.Option<EndpointName>
  readonly header: Option.Option<HashMap.HashMap<string, string>>
  readonly seed: number
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
    const headers = Option.match(flags.header, { onNone: () => ({}), onSome: (map) => Object.fromEntries(HashMap.toEntries(map)) })
    const facts = yield* readFacts({ file: flags.file, model: flags.model, endpoint: flags.endpoint, headers })
    const result = Router.make(config).decide(facts, { seed: flags.seed })
    yield* Console.log(flags.json ? JSON.stringify(Explain.toJson(result), null, 2) : Explain.toText(facts, result))
    if (Either.isLeft(result)) return yield* new UsageError({ message: result.left.message })
  })
