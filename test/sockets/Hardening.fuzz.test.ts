/**
 * Fuzzing the public listener (issue #29): fast-check writes request bodies and headers (random
 * bytes, random JSON, and well-formed requests with fields swapped for random values) and sends
 * each over a real socket to a tollgate serving the simulated provider with the cache, coalescing
 * and a budget on. Whatever comes in: no 5xx made by tollgate, every error in the dialect of the
 * endpoint that was called, and the process's memory bounded. 10,000 cases, capped in time
 * (`FUZZ_RUNS` and `FUZZ_SECONDS` change either).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "effect/FastCheck"
import { request } from "undici"
import * as Tollgate from "../support/Tollgate.js"

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 90)

const ENDPOINTS = ["/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"] as const

/** A header value a client can put on the wire: latin-1, without CR, LF or other control characters. */
const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("", " ", "no-store", "bypass", "refresh", "Bearer x", "2023-06-01", "application/json", "text/plain", "0", "-1"),
  fc.string({ unit: "binary", maxLength: 200 })
).map((s) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, "").trim())

const headers = fc.dictionary(
  fc.constantFrom(
    "content-type", "x-tollgate-project", "x-tollgate-session", "x-tollgate-cache", "cache-control", "authorization",
    "x-api-key", "anthropic-version", "anthropic-beta", "accept", "openai-organization", "user-agent", "x-tollgate-route"
  ),
  headerValue,
  { maxKeys: 5 }
)

const anyJson = fc.jsonValue({ maxDepth: 6 })

/** A chat or messages body that is almost right: some fields replaced or dropped at random. */
const nearlyValid = fc.record({
  model: fc.oneof(
    fc.constantFrom("gpt-4o-mini", "claude-sonnet-4-5", "tollgate:cheap", "gpt-4o"),
    fc.string({ maxLength: 30 }),
    fc.string({ unit: "binary", maxLength: 12 }),
    anyJson
  ),
  messages: fc.oneof(
    fc.constant([{ role: "user", content: "hello" }]),
    fc.array(fc.record({ role: fc.oneof(fc.constantFrom("user", "assistant", "system", "tool"), anyJson), content: fc.oneof(fc.string({ maxLength: 200 }), anyJson) }), { maxLength: 4 }),
    anyJson
  ),
  max_tokens: fc.oneof(fc.integer({ min: -5, max: 100 }), anyJson),
  max_completion_tokens: fc.oneof(fc.integer({ min: -5, max: 100 }), anyJson),
  stream: fc.oneof(fc.boolean(), anyJson),
  stream_options: fc.oneof(fc.record({ include_usage: fc.oneof(fc.boolean(), anyJson) }), anyJson),
  temperature: fc.oneof(fc.constant(0), fc.double(), anyJson),
  tools: fc.oneof(fc.array(fc.record({ type: fc.constant("function"), function: fc.record({ name: fc.string({ maxLength: 10 }), parameters: anyJson }) }), { maxLength: 2 }), anyJson),
  system: fc.oneof(fc.string({ maxLength: 50 }), anyJson)
}, { requiredKeys: [] }).map((body) => JSON.stringify(body))

/** A well-formed request with content nested to any depth (a client drives every walk of the body). */
const deep = fc.record({ depth: fc.integer({ min: 1, max: 20_000 }), open: fc.constantFrom("[", "{\"a\":") }).map(({ depth, open }) =>
  `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":${open.repeat(depth)}1${(open === "[" ? "]" : "}").repeat(depth)}}]}`
)

const body = fc.oneof(
  { weight: 1, arbitrary: deep },
  { weight: 5, arbitrary: nearlyValid },
  { weight: 2, arbitrary: anyJson.map((json) => JSON.stringify(json)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString("latin1")) }
)

const exchange = fc.record({ endpoint: fc.constantFrom(...ENDPOINTS), headers, body })

/** The error shape each endpoint's client expects. */
const inDialect = (endpoint: string, json: unknown): boolean => {
  const error = (json as { error?: { message?: unknown; type?: unknown } } | null)?.error
  if (typeof error?.message !== "string" || typeof error.type !== "string") return false
  return endpoint.startsWith("/v1/messages") ? (json as { type?: unknown }).type === "error" : true
}

describe("fuzzing the listener", () => {
  layer(
    Tollgate.layer({
      providers: { sim: { kind: "mock", reply: "fuzzed", chunks: 3 } },
      cache: { enabled: true, coalesce: true, mode: "all" },
      budget: { enabled: true, unpriced: "allow", limits: [{ window: "daily", usd: 1_000_000 }] }
    }),
    { excludeTestServices: true }
  )((it) => {
    it.effect(`${RUNS} random requests: no 5xx, errors in the client's dialect, memory bounded`, () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const origin = baseUrl.replace(/\/v1$/, "")
        const before = process.memoryUsage().rss
        const failures: Array<string> = []
        let cases = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(exchange, async ({ endpoint, headers, body }) => {
              cases++
              const response = await request(`${origin}${endpoint}`, { method: "POST", headers, body })
              const text = await response.body.text()
              const where = `${endpoint} ${JSON.stringify(headers)} ${body.slice(0, 200)} -> ${response.statusCode} ${text.slice(0, 200)}`
              if (response.statusCode >= 500) failures.push(where)
              if (response.statusCode >= 400) {
                let json: unknown
                try {
                  json = JSON.parse(text)
                } catch {
                  json = undefined
                }
                if (!inDialect(endpoint, json)) failures.push(`not in the dialect: ${where}`)
              }
              return failures.length === 0
            }),
            { numRuns: RUNS, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: true }
          )
        ).pipe(Effect.catchAllDefect((defect) => Effect.sync(() => failures.push(String(defect).slice(0, 2000)))))
        assert.deepStrictEqual(failures, [])
        assert.isAtLeast(cases, Math.min(RUNS, 500), "enough cases ran in the time allowed")
        const grown = (process.memoryUsage().rss - before) / 1024 / 1024
        assert.isBelow(grown, 400, `RSS grew ${grown.toFixed(0)} MB over ${cases} requests`)
      }), { timeout: (SECONDS + 60) * 1000 })
  })
})
