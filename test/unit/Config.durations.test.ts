/**
 * Every duration in the config is read by one schema (`Config/Duration.ts`): the same units
 * everywhere (`1d` for a cache TTL as for a session TTL), and a bare number refused with the
 * forms that are accepted, instead of silently meaning milliseconds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as SchemaAST from "effect/SchemaAST"
import * as Config from "../../src/Config.js"
import { Millis } from "../../src/Config/Duration.js"
import { TollgateConfigSchema } from "../../src/Config/Schema.js"

/** Every duration field, as a path into the file and the object that sets it. */
const FIELDS: ReadonlyArray<readonly [string, (value: unknown) => Record<string, unknown>]> = [
  ["server.bodyTimeout", (v) => ({ server: { bodyTimeout: v } })],
  ["server.drainTimeout", (v) => ({ server: { drainTimeout: v } })],
  ...["connect", "firstByte", "idle", "total"].flatMap((key) => [
    [`providers.o.timeouts.${key}`, (v: unknown) => ({ providers: { o: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", timeouts: { [key]: v } } } })] as const,
    [`providers.a.timeouts.${key}`, (v: unknown) => ({ providers: { a: { kind: "anthropic", timeouts: { [key]: v } } } })] as const
  ]),
  ["retry.baseDelay", (v) => ({ retry: { baseDelay: v } })],
  ["retry.maxDelay", (v) => ({ retry: { maxDelay: v } })],
  ["circuit.cooldown", (v) => ({ circuit: { cooldown: v } })],
  ["circuit.failureRate.window", (v) => ({ circuit: { failureRate: { threshold: 0.5, window: v } } })],
  ["cache.ttl", (v) => ({ cache: { ttl: v } })],
  ["budget.refreshInterval", (v) => ({ budget: { refreshInterval: v } })],
  ["budget.sessionTtl", (v) => ({ budget: { sessionTtl: v } })],
  ["budget.anomalies.velocity.window", (v) => ({ budget: { anomalies: { velocity: { maxRequests: 5, window: v } } } })],
  ["budget.anomalies.velocity.blockFor", (v) => ({ budget: { anomalies: { velocity: { maxRequests: 5, blockFor: v } } } })],
  ["budget.anomalies.costAcceleration.window", (v) => ({ budget: { anomalies: { costAcceleration: { window: v } } } })],
  ["budget.anomalies.repetition.window", (v) => ({ budget: { anomalies: { repetition: { window: v } } } })],
  ["budget.anomalies.tokenExplosion.blockFor", (v) => ({ budget: { anomalies: { tokenExplosion: { maxUsd: 1, blockFor: v } } } })],
  ["alerts.retry.baseDelay", (v) => ({ alerts: { retry: { baseDelay: v } } })],
  ["alerts.retry.maxDelay", (v) => ({ alerts: { retry: { maxDelay: v } } })],
  ["alerts.timeout", (v) => ({ alerts: { timeout: v } })]
]

const read = (input: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], input)

/** The decoded file, with providers back as a record (`Config.decode` keeps the file's shape). */
const decoded = (input: unknown) => Effect.exit(Config.decode(input, "test"))

const failure = <A>(exit: Exit.Exit<A, Config.ConfigError>): string => {
  if (Exit.isSuccess(exit)) return assert.fail("expected the config to be refused")
  return Option.getOrThrow(Exit.causeOption(exit).pipe(Option.flatMap((c) => Option.fromNullable(c._tag === "Fail" ? c.error : undefined)))).message
}

const EXPECTED = "expected a duration such as 250ms, 20s, 5m, 1h or 1d"

describe("config durations", () => {
  it.effect("every duration field reads ms, s, m, h and d", () =>
    Effect.gen(function*() {
      for (const [path, set] of FIELDS) {
        for (const [text, millis] of [["250ms", 250], ["20s", 20_000], ["1.5m", 90_000], ["1h", 3_600_000], ["1d", 86_400_000]] as const) {
          const exit = yield* decoded(set(text))
          if (Exit.isFailure(exit)) assert.fail(`${path}: ${text} refused: ${failure(exit)}`)
          assert.strictEqual(read(exit.value, path), millis, `${path}: ${text}`)
        }
      }
    }))

  it.effect("a bare number is refused on every duration field, naming the accepted forms", () =>
    Effect.gen(function*() {
      for (const [path, set] of FIELDS) {
        for (const value of [3600, "3600", "soon", "5 minutes", "-1s"]) {
          const message = failure(yield* decoded(set(value)))
          assert.strictEqual(message, `invalid configuration in test:\n  ${path}: ${EXPECTED}`, `${path}: ${JSON.stringify(value)}`)
        }
      }
    }))

  it.effect("the refusal in a file names the line's path, once per field", () =>
    Effect.gen(function*() {
      const message = failure(yield* decoded({ cache: { ttl: 3600 }, budget: { sessionTtl: 86_400_000 } }))
      assert.strictEqual(
        message,
        "invalid configuration in test:\n" +
          "  cache.ttl: expected a duration such as 250ms, 20s, 5m, 1h or 1d\n" +
          "  budget.sessionTtl: expected a duration such as 250ms, 20s, 5m, 1h or 1d"
      )
    }))

  it("no duration in the config schema is read by another schema than Config/Duration's", () => {
    // Walks the whole config schema: any transformation that decodes to a number and calls itself
    // a duration must be the one schema, so a third copy cannot come back unnoticed.
    const others: Array<string> = []
    let found = 0
    const seen = new Set<SchemaAST.AST>()
    const walk = (ast: SchemaAST.AST): void => {
      if (seen.has(ast)) return
      seen.add(ast)
      const identifier = SchemaAST.getIdentifierAnnotation(ast).pipe(Option.getOrUndefined)
      if (identifier === "Duration") {
        if (ast === Millis.ast) found++
        else others.push(String(ast))
        return
      }
      switch (ast._tag) {
        case "Transformation": return (walk(ast.from), walk(ast.to))
        case "Refinement": return walk(ast.from)
        case "Union": return ast.types.forEach(walk)
        case "TypeLiteral":
          ast.propertySignatures.forEach((p) => walk(p.type))
          return ast.indexSignatures.forEach((i) => walk(i.type))
        case "TupleType": return (ast.elements.forEach((e) => walk(e.type)), ast.rest.forEach((r) => walk(r.type)))
        case "Suspend": return walk(ast.f())
        default: return
      }
    }
    walk(TollgateConfigSchema.ast)
    assert.deepStrictEqual(others, [])
    assert.isAbove(found, 0)
  })
})
