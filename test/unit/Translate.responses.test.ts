/**
 * The OpenAI Responses wire shape: requests translated to chat (and on to Anthropic), refusals,
 * chat answers translated to Responses objects, the chat stream translated to the Responses event
 * sequence (exact order, `sequence_number` continuity, usage, a cut midway), the passthrough SSE
 * tap over a recorded Responses stream, and the request parser and facts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as ResponsesFacts from "../../src/Domain/ResponsesFacts.js"
import * as ResponsesRequest from "../../src/Domain/ResponsesRequest.js"
import { fromResponses, outputTextOf, readResponse, ResponsesSseTap } from "../../src/Sse/Responses.js"
import { AnthropicToOpenAiStream, fromAnthropicMessage, toAnthropicRequest } from "../../src/Translate.js"
import { fromChatCompletion } from "../../src/Translate/ChatToResponses.js"
import { toChatRequest, translateResponses } from "../../src/Translate/ResponsesToChat.js"
import { ChatToResponsesStream, errorEvent } from "../../src/Translate/StreamToResponses.js"
import {
  answers,
  parseResponsesSse,
  passthroughResponse,
  passthroughStream,
  reasoningThenLength,
  refusal,
  rejects,
  requests,
  textThenTools
} from "../support/ResponsesCorpus.js"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { anthropicSse, cut, type Json, ofKind, openAiSse, runStream } from "../support/TranslateCorpus.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Paths where `actual` differs from `expected`, looking only at the keys `expected` has (arrays compared whole). */
const subsetMismatches = (actual: unknown, expected: unknown, at = "$"): Array<string> => {
  if (typeof expected !== "object" || expected === null || Array.isArray(expected)) {
    return JSON.stringify(actual) === JSON.stringify(expected) ? [] : [`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`]
  }
  if (typeof actual !== "object" || actual === null) return [`${at}: expected an object, got ${JSON.stringify(actual)}`]
  return Object.keys(expected).flatMap((key) =>
    subsetMismatches((actual as Json)[key], (expected as Json)[key], `${at}.${key}`)
  )
}

const assertSubset = (actual: unknown, expected: unknown, label: string) => {
  const diff = subsetMismatches(actual, expected)
  assert.deepStrictEqual(diff, [], `${label}:\n${diff.join("\n")}`)
}

const right = <A, E>(result: Either.Either<A, E>, label: string): A => {
  if (Either.isLeft(result)) return assert.fail(`${label}: refused: ${JSON.stringify(result.left)}`)
  return result.right
}

const translateStream = (events: Parameters<typeof openAiSse>[0], size: number, request: Json = { model: "m", input: "hi" }) => {
  const translator = new ChatToResponsesStream({ request, created: 1 })
  const out = runStream(translator, cut(openAiSse(events), size))
  return { translator, events: parseResponsesSse(out) }
}

describe("Responses corpus", () => {
  it("has at least 20 cases both ways", () => {
    assert.isAtLeast(requests.length + rejects.length + answers.length, 20)
    assert.isAtLeast(answers.length, 6)
    assert.isAtLeast(rejects.length, 6)
  })

  describe("requests: Responses -> chat", () => {
    for (const c of requests) {
      it(c.name, () => {
        const chat = right(toChatRequest(c.responses), c.name)
        assert.deepStrictEqual(chat, c.chat)
        if (c.options !== undefined) assert.deepStrictEqual(right(toChatRequest(c.responses, c.options), c.name), c.chatWithOptions)
        if (c.anthropic !== undefined) {
          // The Anthropic chain: what RequestToAnthropic reads from the translated request.
          assertSubset(right(toAnthropicRequest(chat), `${c.name} (Anthropic)`), c.anthropic, `${c.name} (Anthropic)`)
        }
      })
    }

    it("the served model replaces the requested one", () => {
      const chat = right(toChatRequest({ model: "alias", input: "hi" }, { model: "llama-3.3-70b" }), "model")
      assert.strictEqual(chat.model, "llama-3.3-70b")
    })
  })

  describe("refusals: a BadRequest naming the parameter", () => {
    for (const c of rejects) {
      it(c.name, () => {
        const result = toChatRequest(c.responses)
        if (Either.isRight(result)) return assert.fail(`${c.name}: was translated: ${JSON.stringify(result.right)}`)
        assert.strictEqual(result.left._tag, "BadRequest")
        assert.deepInclude(result.left, c.rejected)
        assert.include(result.left.message, c.says)
      })
    }
  })

  describe("dropped and named: what a chat provider cannot take, offered beside what it can", () => {
    it("a tool chat cannot run beside function tools, and parameters the translator does not know", () => {
      const result = translateResponses({
        model: "m",
        input: "Plot",
        tools: [{ type: "function", name: "f", parameters: {} }, { type: "code_interpreter", container: { type: "auto" } }, { type: "custom", name: "patch" }],
        some_new_field: { x: 1 }
      })
      if (Either.isLeft(result)) return assert.fail(result.left.message)
      assert.deepStrictEqual(result.right.dropped, ["some_new_field", "tools[1]:code_interpreter", "tools[2]:custom"])
      assert.deepStrictEqual(result.right.request.tools, [{ type: "function", function: { name: "f", parameters: {} } }])
      assert.notProperty(result.right.request, "some_new_field")
    })

    it("the real Codex CLI's first request (recorded from codex exec 0.169) translates, naming what it drops", () => {
      const here = path.dirname(fileURLToPath(import.meta.url))
      const recorded = JSON.parse(fs.readFileSync(path.join(here, "..", "fixtures", "responses", "codex-request.json"), "utf8"))
      const result = translateResponses(recorded.body)
      if (Either.isLeft(result)) return assert.fail(result.left.message)
      const { request, dropped } = result.right
      // Fields it knows and leaves out on purpose (store, include, prompt_cache_key) are not named.
      assert.include(dropped, "client_metadata")
      assert.notInclude(dropped, "store")
      assert.isTrue(dropped.some((d) => d.endsWith(":web_search")), dropped.join(","))
      assert.isTrue(dropped.some((d) => d.endsWith(":namespace")), dropped.join(","))
      const names = (request.tools as Array<{ function: { name: string } }>).map((t) => t.function.name)
      assert.include(names, "exec_command")
      assert.strictEqual(request.stream, true)
      assert.deepStrictEqual((request.messages as Array<{ role: string }>).map((m) => m.role), ["system", "system", "user", "user"])
    })
  })

  describe("answers: chat completion -> Responses object", () => {
    for (const c of answers) {
      it(c.name, () => {
        const response = fromChatCompletion(c.chat, { request: c.request, requestedModel: String(c.request.model) })
        assertSubset(response, c.response, c.name)
        assert.strictEqual(response.object, "response")
        assert.strictEqual(response.store, false)
        assert.strictEqual(readResponse(encoder.encode(JSON.stringify(response))).valid, true)
      })
    }

    it("no usage from the provider: usage is null, not zeros", () => {
      const response = fromChatCompletion({ id: "x", choices: [{ message: { content: "hi" }, finish_reason: "stop" }] }, { requestedModel: "m", created: 5 })
      assert.strictEqual(response.usage, null)
      assert.strictEqual(response.model, "m")
      assert.strictEqual(response.created_at, 5)
    })
  })
})

describe("chat stream -> Responses events", () => {
  it("text then two tool calls: the exact event order, sequence numbers, indexes and final usage", () => {
    const { events, translator } = translateStream(textThenTools, 7)
    assert.deepStrictEqual(events.map((e) => e.type), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed"
    ])
    assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
    const text = events.filter((e) => e.type === "response.output_text.delta")
    assert.deepStrictEqual(text.map((e) => [e.item_id, e.output_index, e.content_index]), [["msg_chatcmpl-s1", 0, 0], ["msg_chatcmpl-s1", 0, 0]])
    const args = events.filter((e) => e.type === "response.function_call_arguments.done")
    assert.deepStrictEqual(args.map((e) => [e.item_id, e.output_index, e.name, e.arguments]), [
      ["fc_call_P", 1, "get_weather", "{\"city\":\"Paris\"}"],
      ["fc_call_R", 2, "get_weather", "{\"city\":\"Rome\"}"]
    ])
    const completed = events.at(-1)!.response as Json
    assert.strictEqual(completed.status, "completed")
    assert.strictEqual(completed.id, "resp_chatcmpl-s1")
    assert.strictEqual(completed.model, "llama-3.3-70b")
    assert.deepStrictEqual(completed.usage, {
      input_tokens: 400,
      input_tokens_details: { cached_tokens: 256 },
      output_tokens: 30,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 430
    })
    assert.deepStrictEqual((completed.output as Array<Json>).map((i) => [i.type, i.id, i.status]), [
      ["message", "msg_chatcmpl-s1", "completed"],
      ["function_call", "fc_call_P", "completed"],
      ["function_call", "fc_call_R", "completed"]
    ])
    assert.deepStrictEqual((completed.output as Array<Json>)[0]!.content, [{ type: "output_text", text: "Checking the weather… é", annotations: [] }])
    assert.strictEqual(events[0]!.response && (events[0]!.response as Json).status, "in_progress")
    assert.deepStrictEqual(translator.usage, { inputTokens: 400, outputTokens: 30, cachedInputTokens: 256, cacheWriteTokens: 0, reasoningTokens: 0, source: "reported" })
    assert.strictEqual(translator.model, "llama-3.3-70b")
    assert.isTrue(translator.done)
    assert.isFalse(translator.failed)
  })

  it("the same events whatever the chunking (1 byte splits every line and UTF-8 character)", () => {
    const whole = translateStream(textThenTools, 1 << 20).events
    for (const size of [1, 2, 5, 64]) assert.deepStrictEqual(translateStream(textThenTools, size).events, whole, `cut every ${size}`)
  })

  it("each complete chunk is translated on the push that completes it", () => {
    const translator = new ChatToResponsesStream({ created: 1 })
    const written = textThenTools.map((chunk) => parseResponsesSse(decoder.decode(translator.push(encoder.encode(openAiSse([chunk]))))).length)
    // created + in_progress on the first chunk (an empty delta); then one event per fragment.
    assert.deepStrictEqual(written, [2, 3, 1, 4, 1, 1, 4, 2, 0, 1])
    assert.strictEqual(translator.end().byteLength, 0)
  })

  it("reasoning then text cut by the length limit: reasoning_text events, response.incomplete", () => {
    const { events, translator } = translateStream(reasoningThenLength, 3)
    assert.deepStrictEqual(events.map((e) => e.type), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete"
    ])
    const final = events.at(-1)!.response as Json
    assert.strictEqual(final.status, "incomplete")
    assert.deepStrictEqual(final.incomplete_details, { reason: "max_output_tokens" })
    assert.deepStrictEqual((final.output as Array<Json>).map((i) => [i.type, i.status]), [["reasoning", "completed"], ["message", "incomplete"]])
    assert.deepStrictEqual((final.output as Array<Json>)[0]!.content, [{ type: "reasoning_text", text: "Think hard." }])
    assert.isTrue(translator.done)
  })

  it("a refusal streams as a refusal part", () => {
    const { events } = translateStream(refusal, 4)
    assert.deepStrictEqual(events.map((e) => e.type).slice(2, -1), [
      "response.output_item.added",
      "response.content_part.added",
      "response.refusal.delta",
      "response.refusal.delta",
      "response.refusal.done",
      "response.content_part.done",
      "response.output_item.done"
    ])
    assert.strictEqual(events.find((e) => e.type === "response.refusal.done")!.refusal, "I can't help with that.")
  })

  it("a stream cut midway ends in response.failed with the output so far, and is neither done nor completed", () => {
    const { events, translator } = translateStream(textThenTools.slice(0, 5), 9)
    const last = events.at(-1)!
    assert.strictEqual(last.type, "response.failed")
    assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
    const response = last.response as Json
    assert.strictEqual(response.status, "failed")
    assert.deepStrictEqual(response.error, { code: "server_error", message: "The provider's stream ended before the answer was complete" })
    assert.deepStrictEqual((response.output as Array<Json>).map((i) => [i.type, i.status]), [["message", "completed"], ["function_call", "incomplete"]])
    assert.strictEqual((response.output as Array<Json>)[1]!.arguments, "{\"city\":")
    assert.isFalse(translator.done)
    assert.isTrue(translator.failed)
    assert.isUndefined(translator.usage)
  })

  it("a provider error chunk ends in response.failed with its message, and nothing after", () => {
    const { events, translator } = translateStream([textThenTools[0]!, { error: { message: "overloaded", type: "server_error" } }, textThenTools[1]!], 5)
    assert.deepStrictEqual(events.map((e) => e.type), ["response.created", "response.in_progress", "response.failed"])
    assert.strictEqual(((events[2]!.response as Json).error as Json).message, "overloaded")
    assert.isTrue(translator.failed)
  })

  it("an upstream that sent nothing still gives the SDKs response.created before the failure", () => {
    const translator = new ChatToResponsesStream({ requestedModel: "m", created: 1 })
    const events = parseResponsesSse(decoder.decode(translator.end()))
    assert.deepStrictEqual(events.map((e) => e.type), ["response.created", "response.in_progress", "response.failed"])
    assert.strictEqual((events[0]!.response as Json).model, "m")
  })

  it("finish without [DONE]: completed for the client, but not done for the ledger", () => {
    const { events, translator } = translateStream(textThenTools.slice(0, -1), 11)
    assert.strictEqual(events.at(-1)!.type, "response.completed")
    assert.isFalse(translator.done)
    assert.isDefined(translator.usage)
  })

  it("fail() and errorEvent continue the numbering", () => {
    const translator = new ChatToResponsesStream({ created: 1 })
    const first = parseResponsesSse(decoder.decode(translator.push(encoder.encode(openAiSse(textThenTools.slice(0, 2))))))
    assert.strictEqual(translator.nextSequence, first.length)
    const error = parseResponsesSse(errorEvent("budget reached", translator.nextSequence))[0]!
    assert.deepStrictEqual(error, { type: "error", code: "upstream_stream_error", message: "budget reached", param: null, sequence_number: first.length })
    const failed = parseResponsesSse(decoder.decode(translator.fail("cut by tollgate")))
    assert.deepStrictEqual(failed.map((e) => [e.type, e.sequence_number]), [["response.failed", first.length]])
    assert.strictEqual(translator.fail("again").byteLength, 0)
    assert.strictEqual(translator.end().byteLength, 0)
  })

  it("the request's settings are echoed in every snapshot", () => {
    const request = { model: "m", input: "hi", instructions: "Be terse.", tools: [{ type: "function", name: "f", parameters: {} }], tool_choice: "required" }
    const { events } = translateStream(textThenTools, 50, request)
    for (const e of events.filter((x) => x.response !== undefined)) {
      assertSubset(e.response, { instructions: "Be terse.", tools: request.tools, tool_choice: "required", store: false, object: "response" }, String(e.type))
    }
  })
})

describe("Responses SSE tap (passthrough to an OpenAI provider)", () => {
  const run = (text: string, size: number) => {
    const tap = new ResponsesSseTap(64)
    const forwarded: Array<Uint8Array> = []
    for (const chunk of cut(text, size)) forwarded.push(tap.push(chunk))
    tap.end()
    return { tap, forwarded: decoder.decode(Buffer.concat(forwarded)) }
  }

  it("reads usage, model and the end from response.completed, forwarding every byte as it came", () => {
    for (const size of [1, 3, 17, 4096]) {
      const { forwarded, tap } = run(passthroughStream, size)
      assert.strictEqual(forwarded, passthroughStream)
      assert.deepStrictEqual(tap.usage, { inputTokens: 1320, outputTokens: 210, cachedInputTokens: 1024, cacheWriteTokens: 0, reasoningTokens: 128, source: "reported" })
      assert.strictEqual(tap.model, "gpt-5-mini-2025-08-07")
      assert.isTrue(tap.done)
      assert.strictEqual(tap.status, "completed")
      assert.isUndefined(tap.error)
      assert.strictEqual(tap.lastSequence, parseResponsesSse(passthroughStream).length - 1)
      assert.strictEqual(tap.completionText(), "Let me check the weather. é{\"city\":\"Paris\"}")
      assert.strictEqual(tap.completionChars(), "Let me check the weather. é{\"city\":\"Paris\"}".length)
    }
  })

  it("newText gives only what is new, for the budget guard", () => {
    const tap = new ResponsesSseTap()
    const [head, tail] = [passthroughStream.slice(0, 3000), passthroughStream.slice(3000)]
    tap.push(encoder.encode(head))
    const first = tap.newText()
    tap.push(encoder.encode(tail))
    assert.strictEqual(first + tap.newText(), "Let me check the weather. é{\"city\":\"Paris\"}")
  })

  it("a stream cut before its terminal event: no usage, not done", () => {
    const cutAt = passthroughStream.indexOf("event: response.completed")
    const { tap } = run(passthroughStream.slice(0, cutAt), 100)
    assert.isFalse(tap.done)
    assert.isUndefined(tap.usage)
    assert.strictEqual(tap.model, "gpt-5-mini-2025-08-07")
  })

  it("response.failed and error events are read as failures, with usage when reported", () => {
    const translated = runStream(new ChatToResponsesStream({ created: 1 }), cut(openAiSse(textThenTools.slice(0, 3)), 50))
    const { tap } = run(translated, 13)
    assert.isFalse(tap.done)
    assert.strictEqual(tap.status, "failed")
    assert.strictEqual(tap.error?.code, "server_error")
    const errored = run(errorEvent("boom", 4), 5).tap
    assert.deepStrictEqual(errored.error, { code: "upstream_stream_error", message: "boom" })
    assert.strictEqual(errored.lastSequence, 4)
  })

  it("the translated stream reads back through the tap with the translator's usage", () => {
    const translated = runStream(new ChatToResponsesStream({ created: 1 }), cut(openAiSse(textThenTools), 50))
    const { tap } = run(translated, 7)
    assert.isTrue(tap.done)
    assert.deepStrictEqual(tap.usage, fromResponses({ input_tokens: 400, input_tokens_details: { cached_tokens: 256 }, output_tokens: 30, total_tokens: 430 }))
    assert.strictEqual(tap.completionText(), "Checking the weather… é{\"city\":\"Paris\"}{\"city\":\"Rome\"}")
  })

  it("a whole response: model, usage, text; broken bytes are not valid", () => {
    const facts = readResponse(encoder.encode(JSON.stringify(passthroughResponse)))
    assert.isTrue(facts.valid)
    assert.strictEqual(facts.model, "gpt-5-mini-2025-08-07")
    assert.deepStrictEqual(facts.usage, { inputTokens: 1320, outputTokens: 210, cachedInputTokens: 1024, cacheWriteTokens: 0, reasoningTokens: 128, source: "reported" })
    assert.strictEqual(facts.completionText(), "Let me check the weather. é{\"city\":\"Paris\"}")
    assert.strictEqual(outputTextOf(passthroughResponse.output), facts.completionText())
    assert.isFalse(readResponse(encoder.encode("{\"id\":\"resp_1\",\"outp")).valid)
    assert.isUndefined(fromResponses({ prompt_tokens: 3 }))
  })
})

describe("Responses request parsing and facts", () => {
  const parse = (body: unknown) => ResponsesRequest.parse(encoder.encode(JSON.stringify(body)))

  it("accepts string and item inputs; refuses a missing model and a wrong input in OpenAI's words", () => {
    assert.isTrue(Either.isRight(parse({ model: "gpt-4.1", input: "hi", stream: true, max_output_tokens: 10 })))
    assert.isTrue(Either.isRight(parse({ model: "gpt-4.1", input: [{ role: "user", content: "hi" }] })))
    const missing = parse({ input: "hi" })
    assert.isTrue(Either.isLeft(missing) && missing.left.code === "invalid_model" && missing.left.message === "`model` is required")
    const wrong = parse({ model: "m", input: 3 })
    assert.isTrue(Either.isLeft(wrong) && wrong.left.code === "invalid_input" && wrong.left.param === "input")
    const tokens = parse({ model: "m", input: "x", max_output_tokens: "many" })
    assert.isTrue(Either.isLeft(tokens) && tokens.left.param === "max_output_tokens")
    assert.isTrue(Either.isLeft(ResponsesRequest.parse(encoder.encode("{not json"))))
  })

  it("facts: model, stream, max_output_tokens, tools, images, format, text and a token estimate", () => {
    const body = {
      model: "gpt-4.1",
      stream: true,
      instructions: "Be terse.",
      max_output_tokens: 300,
      text: { format: { type: "json_object" } },
      tools: [{ type: "function", name: "f", parameters: {} }],
      input: [
        { role: "user", content: [{ type: "input_text", text: "What is this?" }, { type: "input_image", image_url: "https://x/a.png" }] },
        { type: "function_call", call_id: "c", name: "lookup", arguments: "{\"q\":1}" },
        { type: "function_call_output", call_id: "c", output: "found" }
      ]
    }
    const raw = encoder.encode(JSON.stringify(body))
    const facts = ResponsesFacts.fromResponses(body, raw, { authorization: "Bearer sk-1" })
    assert.strictEqual(facts.endpoint, "responses")
    assert.strictEqual(facts.model, "gpt-4.1")
    assert.isTrue(facts.stream)
    assert.strictEqual(facts.maxTokens, 300)
    assert.strictEqual(facts.toolCount, 1)
    assert.isTrue(facts.hasImages)
    assert.isTrue(facts.hasResponseFormat)
    assert.strictEqual(facts.messageCount, 3)
    assert.strictEqual(facts.clientKey, "sk-1")
    assert.strictEqual(facts.text(), "Be terse.\nWhat is this?\nlookup\n{\"q\":1}\nfound\n")
    assert.isAbove(facts.estimatedInputTokens(), 10)
    assert.isAtMost(facts.estimatedInputTokens(), facts.inputTokensAtMost())
    assert.isAtMost(facts.inputTokensAtMost(), raw.byteLength)
    const plain = ResponsesFacts.fromResponses({ model: "m", input: "hello" }, encoder.encode("{}"), {})
    assert.deepStrictEqual([plain.messageCount, plain.hasImages, plain.hasResponseFormat, plain.maxTokens, plain.stream], [1, false, false, undefined, false])
  })
})

describe("the Anthropic chain: Anthropic answers -> chat -> Responses", () => {
  it("a whole message with thinking and tool use becomes reasoning, message and function_call items", () => {
    const c = ofKind("response").find((r) => r.file.startsWith("resp-21"))!
    const response = fromChatCompletion(fromAnthropicMessage(c.anthropic, "claude", { created: 1 }), { requestedModel: "claude" })
    const types = (response.output as Array<Json>).map((i) => i.type)
    assert.strictEqual(types[0], "reasoning")
    assert.include(types, "message")
    assert.isNotNull(response.usage)
  })

  /** How each Anthropic corpus stream ends: an error event, max_tokens, or a normal end. */
  const terminal: Record<string, string> = {
    "stream-30-thinking-caching.json": "response.incomplete",
    "stream-31-error.json": "response.failed"
  }
  for (const c of ofKind("stream")) {
    const last = terminal[c.file] ?? "response.completed"
    it(`${c.file}: the Anthropic stream, translated twice, ends in ${last}, usage carried`, () => {
      const toChat = new AnthropicToOpenAiStream({ includeUsage: true, requestedModel: "claude", created: 1 })
      const toResponses = new ChatToResponsesStream({ requestedModel: "claude", created: 1 })
      let out = ""
      for (const chunk of cut(anthropicSse(c.anthropic), 11)) out += decoder.decode(toResponses.push(toChat.push(chunk)), { stream: true })
      out += decoder.decode(toResponses.push(toChat.end())) + decoder.decode(toResponses.end())
      const events = parseResponsesSse(out)
      assert.strictEqual(events.at(-1)!.type, last)
      assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
      // Chat usage has no cache-write count: the chain's ledger usage must come from the
      // Anthropic translator (`toChat.usage`); the client's counts agree on the rest.
      if (last !== "response.failed") {
        const { cachedInputTokens, inputTokens, outputTokens } = toChat.usage!
        assert.deepInclude(toResponses.usage, { cachedInputTokens, inputTokens, outputTokens })
      }
      assert.strictEqual(toResponses.done, last !== "response.failed")
      assert.strictEqual(toResponses.failed, last === "response.failed")
    })
  }
})
