/**
 * Stream translators emit as soon as an event is complete (never at the end only), give the same
 * output for any chunking (property), and the request translators' edge refusals.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import * as Translate from "../../src/Translate.js"
import { anthropicSse, ofKind, openAiSse, parseAnthropicSse, parseOpenAiSse, runStream } from "../support/TranslateCorpus.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Cuts `bytes` at the given offsets. */
const cutAt = (bytes: Uint8Array, offsets: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let start = 0
  for (const p of points) {
    out.push(bytes.slice(start, p))
    start = p
  }
  out.push(bytes.slice(start))
  return out
}

const toolStream = ofKind("stream").find((c) => c.file.startsWith("stream-29"))!

describe("stream translators", () => {
  it("Anthropic -> OpenAI: each complete event is translated on the push that completes it", () => {
    const translator = new Translate.AnthropicToOpenAiStream({ includeUsage: false, created: 1 })
    const written: Array<number> = []
    for (const event of toolStream.anthropic) {
      const out = parseOpenAiSse(decoder.decode(translator.push(encoder.encode(anthropicSse([event])))))
      written.push(out.length)
    }
    // message_start, text block start (empty), text delta, block stop, tool start, "" fragment,
    // two fragments, stop, tool start, fragment, stop, message_delta, message_stop ([DONE]).
    assert.deepStrictEqual(written, [1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    assert.strictEqual(translator.end().byteLength, 0)
  })

  it("OpenAI -> Anthropic: deltas go out at once; message_delta waits for [DONE] (usage comes last)", () => {
    const translator = new Translate.OpenAiToAnthropicStream()
    const written = toolStream.openai.map((chunk) => parseAnthropicSse(decoder.decode(translator.push(encoder.encode(openAiSse([chunk]))))).map((e) => e.event))
    assert.deepStrictEqual(written, [
      ["message_start", "content_block_start"],
      ["content_block_delta"],
      ["content_block_delta"],
      ["content_block_stop", "content_block_start"],
      ["content_block_delta"],
      [],
      [],
      ["content_block_stop", "message_delta", "message_stop"]
    ])
    assert.isTrue(translator.done)
  })

  it("a stream cut before [DONE] still ends well-formed, and is not done", () => {
    const translator = new Translate.OpenAiToAnthropicStream()
    const out = runStream(translator, [encoder.encode(openAiSse(toolStream.openai.slice(0, 3)))])
    assert.deepStrictEqual(parseAnthropicSse(out).slice(-3).map((e) => e.event), ["content_block_stop", "message_delta", "message_stop"])
    assert.isTrue(translator.finished)
    assert.isFalse(translator.done)
  })

  it.prop("any chunking gives the same output, both ways", [FastCheck.array(FastCheck.nat(), { maxLength: 40 })], ([offsets]) => {
    for (const c of ofKind("stream")) {
      const anthropic = encoder.encode(anthropicSse(c.anthropic))
      const whole = runStream(new Translate.AnthropicToOpenAiStream({ includeUsage: true, created: 1 }), [anthropic])
      const pieces = runStream(new Translate.AnthropicToOpenAiStream({ includeUsage: true, created: 1 }), cutAt(anthropic, offsets))
      assert.strictEqual(pieces, whole)
      const openai = encoder.encode(openAiSse(c.openai))
      assert.strictEqual(
        runStream(new Translate.OpenAiToAnthropicStream(), cutAt(openai, offsets)),
        runStream(new Translate.OpenAiToAnthropicStream(), [openai])
      )
    }
  })

  it("usage and model are available on the translators for the ledger", () => {
    const c = ofKind("stream").find((s) => s.file.startsWith("stream-30"))!
    const a = new Translate.AnthropicToOpenAiStream({ includeUsage: false, created: 1 })
    runStream(a, [encoder.encode(anthropicSse(c.anthropic))])
    assert.strictEqual(a.model, "claude-opus-4-1")
    assert.deepInclude(a.usage!, { inputTokens: 8010, cachedInputTokens: 5000, cacheWriteTokens: 3000, cacheWrite1hTokens: 3000, outputTokens: 42 })
    const o = new Translate.OpenAiToAnthropicStream()
    runStream(o, [encoder.encode(openAiSse(c.openai))])
    assert.strictEqual(o.model, "deepseek-reasoner")
    assert.deepInclude(o.usage!, { inputTokens: 8010, cachedInputTokens: 5000, outputTokens: 42 })
  })
})

describe("request translator refusals", () => {
  const base = { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hi" }] }
  const refused = (json: object) => {
    const result = Translate.toAnthropicRequest(json)
    return Either.isLeft(result) ? result.left : assert.fail("was translated")
  }

  it("temperature above Anthropic's range, a too small max_tokens for the thinking budget, unknown parameters", () => {
    assert.strictEqual(refused({ ...base, temperature: 1.5 }).param, "temperature")
    assert.strictEqual(refused({ ...base, reasoning_effort: "high", max_tokens: 1000 }).param, "max_tokens")
    assert.strictEqual(refused({ ...base, prediction: { type: "content", content: "x" } }).param, "prediction")
    assert.strictEqual(refused({ ...base, frequency_penalty: 0.5 }).param, "frequency_penalty")
  })

  it("tool call arguments that are not JSON are a client error, not a guess", () => {
    const error = refused({
      ...base,
      messages: [{ role: "assistant", content: null, tool_calls: [{ id: "a", type: "function", function: { name: "f", arguments: "{oops" } }] }]
    })
    assert.strictEqual(error.code, "invalid_request")
  })

  it("neutral values of unsupported parameters are accepted", () => {
    const result = Translate.toAnthropicRequest({ ...base, n: 1, presence_penalty: 0, frequency_penalty: 0, logprobs: false, logit_bias: {} })
    assert.isTrue(Either.isRight(result))
  })

  it("the model can be rewritten and the default max_tokens chosen by the caller", () => {
    const result = Translate.toAnthropicRequest(base, { model: "claude-opus-4-1", defaultMaxTokens: 1234 })
    if (Either.isLeft(result)) return assert.fail("refused")
    assert.strictEqual(result.right.model, "claude-opus-4-1")
    assert.strictEqual(result.right.max_tokens, 1234)
    const reverse = Translate.toOpenAiRequest({ model: "x", max_tokens: 9, messages: [] }, { model: "gpt-5", maxTokensField: "max_completion_tokens" })
    if (Either.isLeft(reverse)) return assert.fail("refused")
    assert.deepStrictEqual(reverse.right, { model: "gpt-5", messages: [], max_completion_tokens: 9 })
  })
})
