/**
 * `tollgate providers check`: one cheap authenticated call per provider (its model list), so a
 * wrong key or base URL shows before a client's request does.
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../Config.js"
import { ChecksFailed } from "./Probe.js"
import { configOption, jsonOption } from "./Shared.js"
import { isSimulated, modelsRequestOf } from "../Upstream/Kinds.js"

const TIMEOUT_MS = 10_000

export interface ProviderResult {
  readonly provider: string
  readonly ok: boolean
  /** HTTP status when there was an answer. */
  readonly status: number | null
  readonly latencyMs: number | null
  readonly detail: string
  readonly url: string | null
}

/** Why an answer that is not 2xx failed, in a few words. */
const statusDetail = (status: number): string =>
  status === 401 || status === 403
    ? "the key was refused"
    : status === 404
    ? "no model list at this URL (is baseUrl right?)"
    : status === 429
    ? "rate limited (the key works)"
    : status >= 500
    ? "the provider failed"
    : "unexpected answer"

const causeOf = (error: unknown): string => {
  if (error instanceof Error && error.name === "TimeoutError") return `no answer within ${TIMEOUT_MS / 1000} s`
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause
  return String(cause?.code ?? cause?.message ?? (error as { message?: unknown }).message ?? error)
}

export const checkProvider = (provider: Config.ResolvedProvider): Effect.Effect<ProviderResult> => {
  const base = { provider: provider.name, status: null, latencyMs: null, url: null }
  const config = provider.config
  if (isSimulated(config)) return Effect.succeed({ ...base, ok: true, detail: "simulated" })
  if (provider.missingKeyEnv !== undefined) {
    return Effect.succeed({ ...base, ok: false, detail: `not called: ${provider.missingKeyEnv} is not set` })
  }
  if (config.passthroughAuth) {
    return Effect.succeed({ ...base, ok: true, detail: "not called: passthroughAuth (it uses each client's own key)" })
  }
  const request = modelsRequestOf(provider)
  if (request === undefined) return Effect.succeed({ ...base, ok: true, detail: "no model list to ask for" })
  return Effect.tryPromise({
    try: async (signal) => {
      const started = performance.now()
      const response = await fetch(request.url, {
        headers: request.headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)])
      })
      // Read to the end, so the latency is the whole answer's, then let the connection go.
      await response.arrayBuffer()
      return { status: response.status, latencyMs: performance.now() - started }
    },
    catch: causeOf
  }).pipe(
    Effect.match({
      onFailure: (why) => ({ ...base, url: request.url, ok: false, detail: `no answer: ${why}` }),
      onSuccess: ({ latencyMs, status }) => {
        const good = status >= 200 && status < 300
        return {
          ...base,
          url: request.url,
          status,
          latencyMs,
          ok: good || status === 429,
          detail: good ? "ok" : statusDetail(status)
        }
      }
    })
  )
}

/** `ok 200 in 84 ms`, `fail 401 in 90 ms: the key was refused`, `ok (simulated)`, `fail: no answer: ECONNREFUSED`. */
export const renderResult = (r: ProviderResult): string => {
  const verdict = r.ok ? "ok" : "fail"
  if (r.status === null) return r.ok ? `${verdict} (${r.detail})` : `${verdict}: ${r.detail}`
  return `${verdict} ${r.status} in ${r.latencyMs!.toFixed(0)} ms${r.detail === "ok" ? "" : `: ${r.detail}`}`
}

export const providersCheck = Command.make(
  "check",
  { config: configOption, json: jsonOption },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config) })
      const results = yield* Effect.forEach(config.providers, checkProvider, { concurrency: "unbounded" })
      const failed = results.filter((r) => !r.ok).length
      if (flags.json) {
        yield* Console.log(JSON.stringify({
          ok: failed === 0,
          providers: results.map((r) => ({ ...r, latencyMs: r.latencyMs === null ? null : Math.round(r.latencyMs) }))
        }, null, 2))
      } else {
        const width = Math.max(...results.map((r) => r.provider.length))
        for (const r of results) {
          yield* Console.log(`${r.provider.padEnd(width)}  ${renderResult(r)}`)
        }
      }
      if (failed > 0) return yield* new ChecksFailed({ failed })
    })
).pipe(Command.withDescription(
  "Call each provider's model list once (GET {baseUrl}/models for openai kind, GET {baseUrl}/v1/models for anthropic, " +
    "with the key tollgate sends; 10 s timeout) and print the status and latency; the simulated provider is ok without a " +
    "call. Exits 1 if a provider fails (a refused key, no answer, an error status)"
))

export const providers = Command.make("providers").pipe(
  Command.withDescription("Check the configured providers"),
  Command.withSubcommands([providersCheck])
)
