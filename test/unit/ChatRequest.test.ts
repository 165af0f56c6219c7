/**
 * The chat body's fast path (`plainBody`) against the schema it stands in for: it may only take a
 * body `ChatBody` accepts, and must read the same values from it; the usual bodies must take it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { ChatBody, parse, plainBody } from "../../src/Domain/ChatRequest.js"

const decode = Schema.decodeUnknownEither(ChatBody)

/** What decisions read of a decoded body (its messages only by role: the copy Schema makes is not used). */
const decisionFields = (body: ChatBody) => ({
  model: body.model,
  roles: body.messages.map((m) => m.role),
  stream: body.stream,
  stream_options: body.stream_options,
  max_tokens: body.max_tokens,
  max_completion_tokens: body.max_completion_tokens
})

/** A JSON value as a client would send it (what JSON.parse gives back). */
const asJson = (u: unknown) => JSON.parse(JSON.stringify(u)) as Record<string, unknown>

const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.string({ maxLength: 4 }),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.record({ role: fc.oneof(fc.string({ maxLength: 4 }), fc.integer()) }), { maxLength: 3 }),
  fc.record({ include_usage: fc.oneof(fc.boolean(), fc.integer(), fc.constant(null)) })
)
const FIELDS = ["model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens"] as const
/** A valid body with one or two decision fields replaced by anything at all (or left out). */
const anyBody = fc.tuple(
  fc.record({
    model: fc.constantFrom("gpt-4o", "m"),
    messages: fc.array(fc.record({ role: fc.constantFrom("user", "system") }), { minLength: 1, maxLength: 3 }),
    stream: fc.boolean(),
    stream_options: fc.constantFrom(null, {}, { include_usage: true }),
    max_tokens: fc.oneof(fc.integer(), fc.constant(null)),
    max_completion_tokens: fc.oneof(fc.integer(), fc.constant(null))
  }, { requiredKeys: ["model", "messages"] }),
  fc.array(fc.tuple(fc.constantFrom(...FIELDS), anyValue), { maxLength: 2 })
).map(([valid, changes]) => {
  const body: Record<string, unknown> = { ...valid }
  for (const [field, value] of changes) body[field] = value
  return body
})

describe("ChatRequest", () => {
  it.prop("the fast path takes only what ChatBody accepts, and reads the same fields", [anyBody], ([body]) => {
    const json = asJson(body)
    const plain = plainBody(json)
    const decoded = decode(json)
    if (plain === undefined) return
    assert.isTrue(Either.isRight(decoded), `fast path took a body the schema refuses: ${JSON.stringify(json)}`)
    if (Either.isRight(decoded)) assert.deepStrictEqual(decisionFields(plain), decisionFields(decoded.right))
  }, { fastCheck: { numRuns: 2000 } })

  it.prop("every body ChatBody accepts takes the fast path", [Arbitrary.make(ChatBody)], ([body]) => {
    const json = asJson(body)
    const decoded = decode(json)
    if (Either.isLeft(decoded)) return // the generator's numbers do not all survive JSON (NaN -> null)
    const plain = plainBody(json)
    assert.isDefined(plain, JSON.stringify(json))
    assert.deepStrictEqual(decisionFields(plain!), decisionFields(decoded.right))
  }, { fastCheck: { numRuns: 500 } })

  it("a body the fast path declines still gets the schema's exact error", () => {
    const bad = parse(new TextEncoder().encode(JSON.stringify({ model: "gpt-4o", messages: [{ role: 1 }] })))
    assert.isTrue(Either.isLeft(bad))
    if (Either.isLeft(bad)) {
      assert.strictEqual(bad.left.code, "invalid_messages")
      assert.strictEqual(bad.left.message, "`messages.0.role` expected a string role")
    }
  })
})
