/**
 * The Responses translation corpus (`test/fixtures/responses/*.json`), loaded and typed, the chat
 * streams the stream tests translate, and a parser for Responses SSE that checks its framing.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Json, OpenAiEvent } from "./TranslateCorpus.js"

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "responses")
const load = <A>(file: string): A => JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8")) as A

export interface RequestCase {
  readonly name: string
  readonly responses: Json
  readonly chat: Json
  /** Fields the chained translation (Responses -> chat -> Anthropic) must have. */
  readonly anthropic?: Json
  readonly options?: Json
  readonly chatWithOptions?: Json
}
export interface RejectCase {
  readonly name: string
  readonly responses: Json
  readonly rejected: { readonly code: string; readonly param: string }
  /** A piece of the message. */
  readonly says: string
}
export interface AnswerCase {
  readonly name: string
  readonly request: Json
  readonly chat: Json
  /** Fields the translated response must have (all of `output` and `usage` when given). */
  readonly response: Json
  /** What the SDK's `output_text` must be. */
  readonly outputText: string
  readonly parsed?: unknown
}

export const requests = load<ReadonlyArray<RequestCase>>("requests.json")
export const rejects = load<ReadonlyArray<RejectCase>>("rejects.json")
export const answers = load<ReadonlyArray<AnswerCase>>("answers.json")
export const passthroughStream = fs.readFileSync(path.join(DIR, "passthrough-stream.sse"), "utf8")
export const passthroughResponse = load<Json>("passthrough-response.json")

const chunk = (delta: Json, finish: string | null = null): Json => ({
  id: "chatcmpl-s1",
  object: "chat.completion.chunk",
  created: 1700000100,
  model: "llama-3.3-70b",
  choices: [{ index: 0, delta, finish_reason: finish }]
})

export const usageChunk: Json = {
  id: "chatcmpl-s1",
  object: "chat.completion.chunk",
  created: 1700000100,
  model: "llama-3.3-70b",
  choices: [],
  usage: { prompt_tokens: 400, completion_tokens: 30, total_tokens: 430, prompt_tokens_details: { cached_tokens: 256 } }
}

/** Text (with a multi-byte character) then two tool calls, usage, [DONE]: what a chat provider streams. */
export const textThenTools: ReadonlyArray<OpenAiEvent> = [
  chunk({ role: "assistant", content: "" }),
  chunk({ content: "Checking the " }),
  chunk({ content: "weather… é" }),
  chunk({ tool_calls: [{ index: 0, id: "call_P", type: "function", function: { name: "get_weather", arguments: "" } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: "{\"city\":" } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: "\"Paris\"}" } }] }),
  chunk({ tool_calls: [{ index: 1, id: "call_R", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Rome\"}" } }] }),
  chunk({}, "tool_calls"),
  usageChunk,
  "[DONE]"
]

/** Reasoning, then text cut by the length limit. */
export const reasoningThenLength: ReadonlyArray<OpenAiEvent> = [
  chunk({ role: "assistant", reasoning_content: "Think " }),
  chunk({ reasoning_content: "hard." }),
  chunk({ content: "Once upon" }),
  chunk({ content: " a time" }, "length"),
  usageChunk,
  "[DONE]"
]

/** A refusal. */
export const refusal: ReadonlyArray<OpenAiEvent> = [
  chunk({ role: "assistant", content: null, refusal: "" }),
  chunk({ refusal: "I can't " }),
  chunk({ refusal: "help with that." }),
  chunk({}, "stop"),
  usageChunk,
  "[DONE]"
]

/** Parses Responses SSE: every event named as its payload's type, no `[DONE]`. */
export const parseResponsesSse = (text: string): Array<Json> =>
  text.split("\n\n").filter((b) => b.length > 0).map((block) => {
    const match = /^event: (\S+)\ndata: (.*)$/s.exec(block)
    if (match === null) throw new Error(`not a named event: ${block}`)
    const data = JSON.parse(match[2]!) as Json
    if (data.type !== match[1]) throw new Error(`event ${match[1]} carries type ${String(data.type)}`)
    return data
  })
