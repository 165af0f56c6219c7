/**
 * The official `openai` SDK judges the Responses translation: translated answers and streams are
 * served from a local node:http server and read with `responses.create` (JSON and stream),
 * `responses.parse` (structured output) and `responses.stream` (the helper that rebuilds the
 * response from the events and throws on any event out of place); the tests assert on what the
 * SDK returns.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import OpenAI from "openai"
import { ResponsesSseTap } from "../../src/Sse/Responses.js"
import { fromChatCompletion } from "../../src/Translate/ChatToResponses.js"
import { ChatToResponsesStream, errorEvent } from "../../src/Translate/StreamToResponses.js"
import {
  answers,
  parseResponsesSse,
  passthroughStream,
  reasoningThenLength,
  refusal,
  textThenTools
} from "../support/ResponsesCorpus.js"
import * as ScriptedServer from "../support/ScriptedServer.js"
import { cut, type Json, type OpenAiEvent, openAiSse, runStream } from "../support/TranslateCorpus.js"

const openai = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 })
const JSON_TYPE = "application/json"
const SSE_TYPE = "text/event-stream"

const translated = (events: ReadonlyArray<OpenAiEvent>): string =>
  runStream(new ChatToResponsesStream({ request: { model: "m", input: "hi" }, created: 1 }), cut(openAiSse(events), 17))

describe("the openai SDK reads translated Responses answers", () => {
  for (const c of answers) {
    it.scopedLive(`${c.name}: responses.create`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const response = fromChatCompletion(c.chat, { request: c.request, requestedModel: String(c.request.model) })
        server.answer({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(response) })
        const got = yield* Effect.promise(() => openai(server.url).responses.create({ model: String(c.request.model), input: "hi" }))
        assert.strictEqual(got.output_text, c.outputText)
        assert.deepStrictEqual(got.output, response.output as Array<OpenAI.Responses.ResponseOutputItem>)
        assert.strictEqual(got.status, response.status)
        assert.deepStrictEqual(got.usage, (response.usage ?? undefined) as OpenAI.Responses.ResponseUsage | undefined)
        assert.strictEqual(server.requests[0]?.url, "/v1/responses")
      }))
  }

  const structured = answers.find((c) => c.parsed !== undefined)!
  it.scopedLive("structured output: responses.parse gives output_parsed", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make
      const response = fromChatCompletion(structured.chat, { request: structured.request })
      server.answer({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(response) })
      const got = yield* Effect.promise(() =>
        openai(server.url).responses.parse({
          model: "m",
          input: "Extract",
          text: structured.request.text as OpenAI.Responses.ResponseTextConfig
        })
      )
      assert.deepStrictEqual(got.output_parsed, structured.parsed)
    }))
})

describe("the openai SDK reads translated Responses streams", () => {
  const cases: ReadonlyArray<{ name: string; events: ReadonlyArray<OpenAiEvent>; text: string; status: string }> = [
    { name: "text then two tool calls", events: textThenTools, text: "Checking the weather… é", status: "completed" },
    { name: "reasoning then length", events: reasoningThenLength, text: "Once upon a time", status: "incomplete" },
    { name: "refusal", events: refusal, text: "", status: "completed" }
  ]
  for (const c of cases) {
    it.scopedLive(`${c.name}: responses.create({ stream: true }) yields every event in order`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const bytes = translated(c.events)
        server.answer({ status: 200, contentType: SSE_TYPE, body: cut(bytes, 29) })
        const events = yield* Effect.promise(async () => {
          const out: Array<OpenAI.Responses.ResponseStreamEvent> = []
          for await (const event of await openai(server.url).responses.create({ model: "m", input: "hi", stream: true })) out.push(event)
          return out
        })
        assert.deepStrictEqual(events as unknown as Array<Json>, parseResponsesSse(bytes))
        const last = events.at(-1)!
        assert.strictEqual(last.type, c.status === "completed" ? "response.completed" : "response.incomplete")
        if (last.type === "response.completed" || last.type === "response.incomplete") {
          assert.strictEqual(last.response.status, c.status)
          assert.strictEqual(last.response.usage?.input_tokens, 400)
          assert.strictEqual(last.response.usage?.input_tokens_details.cached_tokens, 256)
        }
      }))

    it.scopedLive(`${c.name}: responses.stream rebuilds the response from the events`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        server.answer({ status: 200, contentType: SSE_TYPE, body: cut(translated(c.events), 13) })
        const { deltas, final } = yield* Effect.promise(async () => {
          const stream = openai(server.url).responses.stream({ model: "m", input: "hi" })
          let deltas = ""
          stream.on("response.output_text.delta", (event) => (deltas += event.delta))
          const final = await stream.finalResponse()
          return { deltas, final }
        })
        // The helper adds no `output_text` unless it parses: the text is read from the items.
        const text = final.output.flatMap((i) => (i.type === "message" ? i.content : []))
          .map((part) => (part.type === "output_text" ? part.text : "")).join("")
        assert.strictEqual(text, c.text)
        assert.strictEqual(deltas, c.text)
        // The helper takes the final snapshot from response.completed only (response.incomplete
        // leaves the one it built, as with OpenAI itself).
        if (c.status === "completed") assert.strictEqual(final.status, "completed")
        if (c.events === textThenTools) {
          const calls = final.output.flatMap((i) => (i.type === "function_call" ? [[i.call_id, i.name, i.arguments]] : []))
          assert.deepStrictEqual(calls, [
            ["call_P", "get_weather", "{\"city\":\"Paris\"}"],
            ["call_R", "get_weather", "{\"city\":\"Rome\"}"]
          ])
          assert.strictEqual(final.usage?.total_tokens, 430)
        }
      }))
  }

  it.scopedLive("a stream cut midway: the SDK sees response.failed with the error, after the partial text", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make
      server.answer({ status: 200, contentType: SSE_TYPE, body: cut(translated(textThenTools.slice(0, 4)), 31) })
      const events = yield* Effect.promise(async () => {
        const out: Array<OpenAI.Responses.ResponseStreamEvent> = []
        for await (const event of await openai(server.url).responses.create({ model: "m", input: "hi", stream: true })) out.push(event)
        return out
      })
      const last = events.at(-1)!
      assert.strictEqual(last.type, "response.failed")
      if (last.type === "response.failed") {
        assert.strictEqual(last.response.error?.message, "The provider's stream ended before the answer was complete")
        assert.strictEqual(last.response.status, "failed")
      }
      assert.isTrue(events.some((e) => e.type === "response.output_text.delta"))
    }))

  it.scopedLive("errorEvent: the SDK yields a typed error event", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make
      const head = translated(textThenTools.slice(0, 2)).replace(/event: response\.failed\n[^\n]*\n\n$/, "")
      const sequence = parseResponsesSse(head).length
      server.answer({ status: 200, contentType: SSE_TYPE, body: head + errorEvent("budget reached", sequence) })
      const events = yield* Effect.promise(async () => {
        const out: Array<OpenAI.Responses.ResponseStreamEvent> = []
        for await (const event of await openai(server.url).responses.create({ model: "m", input: "hi", stream: true })) out.push(event)
        return out
      })
      const last = events.at(-1)!
      assert.deepStrictEqual(last, { type: "error", code: "upstream_stream_error", message: "budget reached", param: null, sequence_number: sequence })
      assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
    }))

  it.scopedLive("passthrough: the recorded OpenAI stream, through the tap, is what the SDK reads, with the tap's usage", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make
      const tap = new ResponsesSseTap()
      server.answer({ status: 200, contentType: SSE_TYPE, body: cut(passthroughStream, 23).map((chunk) => tap.push(chunk)) })
      tap.end()
      const final = yield* Effect.promise(() => openai(server.url).responses.stream({ model: "gpt-5-mini", input: "hi" }).finalResponse())
      assert.strictEqual(final.status, "completed")
      assert.strictEqual(final.usage?.input_tokens, tap.usage?.inputTokens)
      assert.strictEqual(final.usage?.output_tokens_details.reasoning_tokens, tap.usage?.reasoningTokens)
      assert.strictEqual(final.model, tap.model)
    }))
})
