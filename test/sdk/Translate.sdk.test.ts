/**
 * The official SDKs are the judges: every translated response, stream and error of the corpus is
 * served from a local node:http server and parsed by `openai` (chat.completions.create, with and
 * without stream) or `@anthropic-ai/sdk` (messages.create, messages.stream); the tests assert on
 * what the SDK returns.
 */
import Anthropic from "@anthropic-ai/sdk"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import OpenAI from "openai"
import * as Translate from "../../src/Translate.js"
import * as ScriptedServer from "../support/ScriptedServer.js"
import { anthropicSse, cut, type Json, ofKind, openAiSse, runStream } from "../support/TranslateCorpus.js"

const openai = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 })
const anthropic = (url: string) => new Anthropic({ baseURL: url, apiKey: "k", maxRetries: 0 })
const ask = { model: "m", messages: [{ role: "user" as const, content: "hi" }] }
const askAnthropic = { model: "m", max_tokens: 100, messages: [{ role: "user" as const, content: "hi" }] }
const JSON_TYPE = "application/json"
const SSE_TYPE = "text/event-stream"

/** What a client should have assembled from a stream: text, tool calls, finish reason. */
interface Assembled {
  text: string
  tools: Array<{ id: string; name: string; args: string }>
  finish: string | null
}

const expectedFromChunks = (chunks: ReadonlyArray<Json | "[DONE]">): Assembled => {
  const out: Assembled = { text: "", tools: [], finish: null }
  for (const chunk of chunks) {
    if (chunk === "[DONE]" || "error" in chunk) continue
    const choice = (chunk.choices as Array<{ delta: Json; finish_reason: string | null }>)[0]
    if (choice === undefined) continue
    if (typeof choice.delta.content === "string") out.text += choice.delta.content
    for (const call of (choice.delta.tool_calls ?? []) as Array<{ index: number; id?: string; function: { name?: string; arguments?: string } }>) {
      const tool = out.tools[call.index] ?? (out.tools[call.index] = { id: "", name: "", args: "" })
      if (call.id !== undefined) tool.id = call.id
      if (call.function.name !== undefined) tool.name += call.function.name
      tool.args += call.function.arguments ?? ""
    }
    if (choice.finish_reason !== null) out.finish = choice.finish_reason
  }
  return out
}

describe("the official SDKs parse what the translators write", () => {
  for (const c of ofKind("response")) {
    it.scopedLive(`${c.file}: openai chat.completions.create`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const translated = Translate.fromAnthropicMessage(c.anthropic, c.requestedModel, { created: c.created })
        server.answer({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(translated) })
        const expected = c.anthropicToOpenAi
        const completion = yield* Effect.promise(() => openai(server.url).chat.completions.create(ask))
        const message = (expected.choices as Array<{ message: Json; finish_reason: string }>)[0]!
        assert.strictEqual(completion.choices[0]?.message.content, message.message.content)
        assert.strictEqual(completion.choices[0]?.finish_reason, message.finish_reason)
        assert.deepStrictEqual(completion.choices[0]?.message.tool_calls, message.message.tool_calls)
        assert.deepStrictEqual(completion.usage, expected.usage as OpenAI.CompletionUsage)
        assert.strictEqual(server.requests[0]?.url, "/v1/chat/completions")
      }))

    it.scopedLive(`${c.file}: anthropic messages.create`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const translated = Translate.fromOpenAiCompletion(c.openai, c.requestedModel)
        server.answer({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(translated) })
        const expected = c.openAiToAnthropic
        const message = yield* Effect.promise(() => anthropic(server.url).messages.create(askAnthropic))
        assert.deepStrictEqual(message.content, expected.content as Array<Anthropic.ContentBlock>)
        assert.strictEqual(message.stop_reason, expected.stop_reason)
        assert.deepStrictEqual(message.usage, expected.usage as Anthropic.Usage)
      }))
  }

  for (const c of ofKind("stream")) {
    it.scopedLive(`${c.file}: openai chat.completions.create({ stream: true })`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const translator = new Translate.AnthropicToOpenAiStream({ includeUsage: c.includeUsage, created: c.created })
        const bytes = runStream(translator, cut(anthropicSse(c.anthropic), 13))
        server.answer({ status: 200, contentType: SSE_TYPE, body: cut(bytes, 29) })
        const got: Assembled = { text: "", tools: [], finish: null }
        let usage: OpenAI.CompletionUsage | undefined
        const failure = yield* Effect.promise(async () => {
          try {
            const stream = await openai(server.url).chat.completions.create({ ...ask, stream: true })
            for await (const chunk of stream) {
              if (chunk.usage) usage = chunk.usage
              const choice = chunk.choices[0]
              if (choice === undefined) continue
              got.text += choice.delta.content ?? ""
              for (const call of choice.delta.tool_calls ?? []) {
                const tool = got.tools[call.index] ?? (got.tools[call.index] = { id: "", name: "", args: "" })
                if (call.id !== undefined) tool.id = call.id
                tool.name += call.function?.name ?? ""
                tool.args += call.function?.arguments ?? ""
              }
              if (choice.finish_reason !== null) got.finish = choice.finish_reason
            }
            return undefined
          } catch (error) {
            return error
          }
        })
        assert.deepStrictEqual(got, expectedFromChunks(c.anthropicToOpenAi))
        const errorEvent = c.anthropicToOpenAi.find((e) => e !== "[DONE]" && "error" in e)
        if (errorEvent === undefined) assert.isUndefined(failure)
        else assert.instanceOf(failure, OpenAI.APIError)
        const usageChunk = c.anthropicToOpenAi.find((e) => e !== "[DONE]" && "usage" in e) as Json | undefined
        assert.deepStrictEqual(usage, usageChunk?.usage as OpenAI.CompletionUsage | undefined)
      }))

    it.scopedLive(`${c.file}: anthropic messages.stream`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        const translator = new Translate.OpenAiToAnthropicStream()
        const bytes = runStream(translator, cut(openAiSse(c.openai), 11))
        server.answer({ status: 200, contentType: SSE_TYPE, body: cut(bytes, 31) })
        const result = yield* Effect.promise(() =>
          anthropic(server.url).messages.stream(askAnthropic).finalMessage().then((m) => ({ m }), (error: unknown) => ({ error }))
        )
        const failed = c.openAiToAnthropic.some((e) => e.event === "error")
        if (failed) return assert.instanceOf("error" in result ? result.error : undefined, Anthropic.APIError)
        if (!("m" in result)) return assert.fail(`stream failed: ${String(result.error)}`)
        const expected = expectedFromChunks(c.openai)
        const text = result.m.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("")
        assert.strictEqual(text, expected.text)
        const tools = result.m.content.flatMap((b) => (b.type === "tool_use" ? [{ id: b.id, name: b.name, input: b.input }] : []))
        assert.deepStrictEqual(tools, expected.tools.map((t) => ({ id: t.id, name: t.name, input: JSON.parse(t.args) })))
        const delta = c.openAiToAnthropic.find((e) => e.event === "message_delta")!.data
        assert.strictEqual(result.m.stop_reason, (delta.delta as Json).stop_reason)
        assert.deepInclude(result.m.usage, delta.usage as Json)
      }))
  }

  for (const c of ofKind("error")) {
    it.scopedLive(`${c.file}: openai raises the translated error with its status`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        server.answer({ status: c.status, contentType: JSON_TYPE, body: JSON.stringify(Translate.anthropicErrorToOpenAi(c.anthropic)) })
        const error = yield* Effect.promise(() => openai(server.url).chat.completions.create(ask).then(() => undefined, (e: unknown) => e))
        if (!(error instanceof OpenAI.APIError)) return assert.fail("expected an APIError")
        assert.strictEqual(error.status, c.status)
        assert.strictEqual(error.type, (c.anthropicToOpenAi.error as Json).type)
        assert.include(error.message, (c.anthropicToOpenAi.error as Json).message as string)
      }))

    it.scopedLive(`${c.file}: anthropic raises the translated error with its status`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedServer.make
        server.answer({ status: c.status, contentType: JSON_TYPE, body: JSON.stringify(Translate.openAiErrorToAnthropic(c.openai, c.status)) })
        const error = yield* Effect.promise(() => anthropic(server.url).messages.create(askAnthropic).then(() => undefined, (e: unknown) => e))
        if (!(error instanceof Anthropic.APIError)) return assert.fail("expected an APIError")
        assert.strictEqual(error.status, c.status)
        assert.deepStrictEqual(error.error, c.openAiToAnthropic)
      }))
  }
})
