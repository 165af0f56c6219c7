/**
 * Cache keys and the policy for what may be cached.
 *
 * The key is SHA-256 over a canonical form (object keys sorted, at every depth) of: the endpoint,
 * every body field that can change the answer, the tenant and the routed target. Fields that
 * cannot change the answer are left out: `stream` (a stream and a JSON answer are the same
 * answer), `stream_options`, `user`, `metadata`, `store`, `service_tier`. Two tenants never
 * share an entry.
 */
import { createHash } from "node:crypto"

const IGNORED = new Set(["stream", "stream_options", "user", "metadata", "store", "service_tier"])

/** JSON with object keys sorted at every depth: equal values, equal text. */
export const canonical = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  const entries = Object.keys(value as Record<string, unknown>)
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
  return `{${entries.join(",")}}`
}

export interface KeyInput {
  readonly endpoint: string
  readonly body: Readonly<Record<string, unknown>>
  /** Client key hash or project: whose cache this is. */
  readonly tenant: string
  /** The routed target, `provider/model`. */
  readonly target: string
}

export const cacheKey = (input: KeyInput): string => {
  const body: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(input.body)) if (!IGNORED.has(field)) body[field] = value
  return createHash("sha256")
    .update(canonical({ endpoint: input.endpoint, tenant: input.tenant, target: input.target, body }))
    .digest("hex")
}

export type Mode = "deterministic" | "all"

/**
 * May the answer to this request be reused? In `deterministic` mode only when the request pins
 * its randomness: `temperature: 0`, or a `seed`.
 */
export const isCacheableRequest = (body: Readonly<Record<string, unknown>>, mode: Mode): boolean =>
  mode === "all" || body.temperature === 0 || (typeof body.seed === "number" && Number.isFinite(body.seed))
