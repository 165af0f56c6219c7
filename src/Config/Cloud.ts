/**
 * Where cloud ingest sends the ledger, if anywhere: `telemetry.cloud` in the file, field by field
 * over `CLOUD_INGEST_URL`, `WORKSPACE_ID` and `WORKSPACE_INGEST_KEY`. The file wins a field it
 * gives (a variable it overrides is named in a notice), the environment fills the others, so the
 * key can live in the environment while the rest is in the file. Off unless something names a URL,
 * a workspace or a key; refused when only some of the three are given. `telemetry.cloud: false`
 * keeps it off whatever the environment says.
 */
import * as Effect from "effect/Effect"
import * as EnvConfig from "effect/Config"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { FileConfig } from "./Schema.js"

export interface CloudTarget {
  /** The ingest endpoint rows are POSTed to. */
  readonly url: string
  readonly workspaceId: string
  /** Sent as `Authorization: Bearer`; never logged, never in a payload. */
  readonly key: Redacted.Redacted<string>
  readonly batchSize: number
  readonly interval: number
  readonly baseDelay: number
  readonly maxDelay: number
  readonly timeout: number
}

export const ENV = { url: "CLOUD_INGEST_URL", workspaceId: "WORKSPACE_ID", key: "WORKSPACE_INGEST_KEY" } as const

const DEFAULTS = { batchSize: 500, interval: 5_000, baseDelay: 1_000, maxDelay: 300_000, timeout: 30_000 }

const isHttpUrl = (url: string): boolean => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)

const isLoopback = (url: string): boolean => {
  const host = new URL(url).hostname
  return host === "localhost" || host === "[::1]" || /^127\./.test(host)
}

/** The target, `undefined` when ingest is off, or a problem to refuse the configuration with. */
export const resolve = (file: FileConfig): Effect.Effect<
  { readonly target: CloudTarget | undefined; readonly notices: ReadonlyArray<string> } | { readonly problem: string },
  unknown
> =>
  Effect.gen(function*() {
    const declared = file.telemetry.cloud
    if (declared === false) return { target: undefined, notices: [] }
    const env = {
      url: Option.getOrUndefined(yield* EnvConfig.option(EnvConfig.string(ENV.url))),
      workspaceId: Option.getOrUndefined(yield* EnvConfig.option(EnvConfig.string(ENV.workspaceId))),
      key: Option.getOrUndefined(yield* EnvConfig.option(EnvConfig.string(ENV.key)))
    }
    const notices: Array<string> = []
    const pick = <A>(field: keyof typeof ENV, fromFile: A | undefined, fromEnv: A | undefined, same: (a: A, b: A) => boolean) => {
      if (fromFile !== undefined && fromEnv !== undefined && !same(fromFile, fromEnv)) {
        notices.push(`cloud ingest: ${ENV[field]} is set but telemetry.cloud.${field} in the file is used`)
      }
      return fromFile ?? fromEnv
    }
    const envKey = env.key === undefined || env.key === "" ? undefined : Redacted.make(env.key)
    const url = pick("url", declared?.url, env.url === "" ? undefined : env.url, (a, b) => a === b)
    const workspaceId = pick("workspaceId", declared?.workspaceId, env.workspaceId === "" ? undefined : env.workspaceId, (a, b) => a === b)
    const key = pick("key", declared?.key, envKey, (a, b) => Redacted.value(a) === Redacted.value(b))
    if (url === undefined && workspaceId === undefined && key === undefined) {
      return declared === undefined
        ? { target: undefined, notices: [] }
        : { problem: `telemetry.cloud: needs url, workspaceId and key (or ${ENV.url}, ${ENV.workspaceId}, ${ENV.key})` }
    }
    const missing = [
      url === undefined ? `url (${ENV.url})` : undefined,
      workspaceId === undefined ? `workspaceId (${ENV.workspaceId})` : undefined,
      key === undefined ? `key (${ENV.key})` : undefined
    ].filter((m) => m !== undefined)
    if (missing.length > 0) {
      return { problem: `cloud ingest: telemetry.cloud is missing ${missing.join(", ")}; give all three, or none to leave it off` }
    }
    if (!isHttpUrl(url!)) return { problem: `${ENV.url}: expected an http:// or https:// URL` }
    if (!url!.startsWith("https:") && !isLoopback(url!)) {
      notices.push(`cloud ingest: ${new URL(url!).origin} is plain http: the workspace key crosses the network unencrypted`)
    }
    const settings = declared ?? DEFAULTS
    return {
      target: {
        url: url!,
        workspaceId: workspaceId!,
        key: key!,
        batchSize: settings.batchSize,
        interval: settings.interval,
        baseDelay: settings.baseDelay,
        maxDelay: settings.maxDelay,
        timeout: settings.timeout
      },
      notices
    }
  })
