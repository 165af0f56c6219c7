/**
 * The dialects and the bridge table, as values: every pair of a served dialect and a dialect some
 * provider kind speaks has a bridge; a passthrough sends the client's bytes untouched when the
 * model is unchanged (the same buffer, not a copy); each dialect refuses a bad body in its own
 * error shape; the served dialects own the error shape of every path under their endpoint.
 */
import type * as Headers from "@effect/platform/Headers"
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import type { Dialect, DialectId } from "../../src/Dialect.js"
import { AnthropicMessages } from "../../src/Dialect/AnthropicMessages.js"
import { bridgeFor, DIALECTS, ownerOf, passthrough, SERVED, type Wire } from "../../src/Dialect/Bridge.js"
import { OpenAiChat } from "../../src/Dialect/OpenAiChat.js"
import * as Errors from "../../src/Domain/Errors.js"
import { KINDS } from "../../src/Upstream/Kinds.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const NO_HEADERS = {} as Headers.Headers

/** A valid request in each served dialect. */
const bodies: Record<DialectId, Record<string, unknown>> = {
  "openai-chat": { model: "m", messages: [{ role: "user", content: "hi" }] },
  "anthropic-messages": { model: "m", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }
}

const parsed = (dialect: Dialect, body: Record<string, unknown>) => {
  const raw = encoder.encode(JSON.stringify(body))
  const result = dialect.parse(raw, NO_HEADERS)
  if (Either.isLeft(result)) throw new Error(`${dialect.id} refused a valid body: ${result.left.message}`)
  return result.right
}

const wire = (client: Dialect, provider: DialectId, body: Record<string, unknown>): Wire => {
  const bridge = bridgeFor(client.id, provider)
  if (bridge === undefined) throw new Error(`no bridge ${client.id} -> ${provider}`)
  const crossed = bridge(parsed(client, body))
  if (crossed instanceof Errors.BadRequest) throw new Error(crossed.message)
  return crossed
}

const providerDialects = [...new Set(Object.values(KINDS).map((kind) => kind.dialect))]

const bodyOf = (response: { readonly body: unknown }): unknown => {
  const body = response.body as { _tag: string; body: Uint8Array }
  return JSON.parse(decoder.decode(body.body))
}

describe("bridge table", () => {
  it("every served dialect reaches every dialect a provider kind speaks", () => {
    for (const client of SERVED) {
      for (const provider of providerDialects) {
        const crossed = wire(client, provider, bodies[client.id])
        assert.strictEqual(crossed.path, DIALECTS[provider].upstreamPath, `${client.id} -> ${provider}`)
        assert.strictEqual(crossed.passthrough, client.id === provider, `${client.id} -> ${provider}`)
      }
    }
  })

  it("a passthrough sends the client's own bytes when the model is unchanged, and rewrites only the model otherwise", () => {
    for (const client of SERVED) {
      const request = parsed(client, bodies[client.id])
      const crossed = bridgeFor(client.id, client.id)!(request) as Wire
      assert.strictEqual(crossed.body("m"), request.raw, client.id)
      assert.deepStrictEqual(JSON.parse(decoder.decode(crossed.body("other"))), { ...bodies[client.id], model: "other" }, client.id)
    }
  })

  it("OpenAI chat to OpenAI chat: a stream asks for usage (a body change), a whole answer goes as it is", () => {
    const stream = wire(OpenAiChat, "openai-chat", { ...bodies["openai-chat"], stream: true })
    assert.deepStrictEqual(JSON.parse(decoder.decode(stream.body("m"))).stream_options, { include_usage: true })
    const asked = parsed(OpenAiChat, { ...bodies["openai-chat"], stream: true, stream_options: { include_usage: true } })
    assert.strictEqual((bridgeFor("openai-chat", "openai-chat")!(asked) as Wire).body("m"), asked.raw)
  })

  it("the generic passthrough reads answers with its dialect's own reader", () => {
    const request = parsed(AnthropicMessages, bodies["anthropic-messages"])
    const crossed = passthrough(AnthropicMessages)(request)
    const answer = encoder.encode(JSON.stringify({
      type: "message",
      model: "claude-x",
      content: [{ type: "text", text: "hello" }],
      usage: { input_tokens: 3, output_tokens: 2 }
    }))
    const read = crossed.read(answer)
    assert.strictEqual(read.bytes, answer)
    assert.strictEqual(read.model, "claude-x")
    assert.strictEqual(read.usage?.outputTokens, 2)
  })

  it("a translation the request cannot make is a 400 before anything is sent", () => {
    const request = parsed(OpenAiChat, { ...bodies["openai-chat"], n: 3 })
    const crossed = bridgeFor("openai-chat", "anthropic-messages")!(request)
    assert.instanceOf(crossed, Errors.BadRequest)
  })
})

describe("dialects", () => {
  it("each refuses a bad body in its own error shape", () => {
    const missingModel = encoder.encode(JSON.stringify({ messages: [] }))
    const chat = OpenAiChat.parse(missingModel, NO_HEADERS)
    const messages = AnthropicMessages.parse(missingModel, NO_HEADERS)
    assert.isTrue(Either.isLeft(chat) && Either.isLeft(messages))
    if (Either.isRight(chat) || Either.isRight(messages)) return

    const openAi = OpenAiChat.errorResponse(chat.left, {})
    assert.strictEqual(openAi.status, 400)
    const openAiBody = bodyOf(openAi) as { error: { type: string; param?: string } }
    assert.strictEqual(openAiBody.error.type, "invalid_request_error")
    assert.strictEqual(openAiBody.error.param, "model")

    const anthropic = AnthropicMessages.errorResponse(messages.left, {})
    assert.strictEqual(anthropic.status, 400)
    const anthropicBody = bodyOf(anthropic) as { type: string; error: { type: string; message: string } }
    assert.strictEqual(anthropicBody.type, "error")
    assert.strictEqual(anthropicBody.error.type, "invalid_request_error")
    assert.include(anthropicBody.error.message, "model")
  })

  it("each ends a failed stream with its own error event", () => {
    assert.match(OpenAiChat.streamError("boom"), /^data: \{"error":\{"message":"boom"/)
    assert.match(AnthropicMessages.streamError("boom"), /^event: error\ndata: \{"type":"error"/)
  })

  it("a parse keeps the client's bytes and reads the facts routing needs", () => {
    const request = parsed(OpenAiChat, { ...bodies["openai-chat"], stream: true, max_tokens: 50, tools: [{ type: "function", function: { name: "f" } }] })
    assert.strictEqual(request.model, "m")
    assert.isTrue(request.stream)
    assert.strictEqual(request.facts.maxTokens, 50)
    assert.strictEqual(request.facts.toolCount, 1)
    assert.strictEqual(request.facts.endpoint, "chat")
  })

  it("only a dialect with a cache codec is cached (today: OpenAI chat)", () => {
    assert.isDefined(OpenAiChat.cache)
    assert.isUndefined(AnthropicMessages.cache)
  })

  it("the cascade reads truncation and refusals in each dialect", () => {
    const chat = OpenAiChat.cascadeReading(encoder.encode(JSON.stringify({ choices: [{ message: { content: "x", refusal: "no" }, finish_reason: "length" }] })))
    assert.deepStrictEqual(chat, { text: "x", truncated: true, refused: true })
    const message = AnthropicMessages.cascadeReading(encoder.encode(JSON.stringify({ content: [{ type: "text", text: "y" }], stop_reason: "refusal" })))
    assert.deepStrictEqual(message, { text: "y", truncated: false, refused: true })
    assert.isUndefined(OpenAiChat.cascadeReading(encoder.encode("{cut")))
  })

  it("a path's errors are in the shape of the served dialect it is under; elsewhere OpenAI's", () => {
    assert.strictEqual(ownerOf("/v1/chat/completions"), OpenAiChat)
    assert.strictEqual(ownerOf("/v1/messages"), AnthropicMessages)
    assert.strictEqual(ownerOf("/v1/messages/count_tokens"), AnthropicMessages)
    assert.isUndefined(ownerOf("/v1/nothing"))
  })

  it("every dialect is listed under its own id", () => {
    for (const [id, dialect] of Object.entries(DIALECTS)) assert.strictEqual(dialect.id, id)
  })
})
