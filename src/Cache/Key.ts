/**
 * Cache keys and the policy for what may be cached.
 *
 * The key is SHA-256 over a canonical form (object keys sorted, at every depth) of: the endpoint,
 * every body field that can change the answer, the tenant and the routed target. Fields that
 * cannot change the answer are left out: `stream` (a stream and a JSON answer are the same
 * answer), `stream_options`, `user`, `metadata`, `store`, `service_tier`. Two tenants never
 * share an entry.
 */
import { hash } from "node:crypto"

const IGNORED = new Set(["stream", "stream_options", "user", "metadata", "store", "service_tier"])

/**
 * Object keys in canonical order (UTF-16 code units, as `Array.prototype.sort` orders them). An
 * insertion sort in place for the handful of keys most objects have (the built-in sort allocates
 * a work array per call); the built-in sort past that.
 */
const sortedKeys = (value: object): Array<string> => {
  const keys = Object.keys(value)
  if (keys.length > 32) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!
    let j = i - 1
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/** The canonical text of an object's entries, leaving out undefined values and the `skip` fields. */
const entries = (value: Record<string, unknown>, skip?: ReadonlySet<string>): string => {
  let text = "{"
  for (const key of sortedKeys(value)) {
    const field = value[key]
    if (field === undefined || skip?.has(key)) continue
    if (text.length > 1) text += ","
    text += JSON.stringify(key) + ":" + canonical(field)
  }
  return text + "}"
}

/** JSON with object keys sorted at every depth: equal values, equal text. */
export const canonical = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (!Array.isArray(value)) return entries(value as Record<string, unknown>)
  let text = "["
  for (let i = 0; i < value.length; i++) {
    if (i > 0) text += ","
    text += canonical(value[i])
  }
  return text + "]"
}

export interface KeyInput {
  readonly endpoint: string
  readonly body: Readonly<Record<string, unknown>>
  /** Client key hash or project: whose cache this is. */
  readonly tenant: string
  /** The routed target, `provider/model`. */
  readonly target: string
}

export const cacheKey = (input: KeyInput): string =>
  // The canonical text of { endpoint, tenant, target, body } (keys sorted), body without IGNORED.
  hash(
    "sha256",
    `{"body":${entries(input.body, IGNORED)},"endpoint":${JSON.stringify(input.endpoint)},` +
      `"target":${JSON.stringify(input.target)},"tenant":${JSON.stringify(input.tenant)}}`,
    "hex"
  )

export type Mode = "deterministic" | "all"

/**
 * May the answer to this request be reused? In `deterministic` mode only when the request pins
 * its randomness: `temperature: 0`, or a `seed`.
 */
export const isCacheableRequest = (body: Readonly<Record<string, unknown>>, mode: Mode): boolean =>
  mode === "all" || body.temperature === 0 || (typeof body.seed === "number" && Number.isFinite(body.seed))
