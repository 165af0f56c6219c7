/**
 * The translation conformance corpus (`test/fixtures/translate/*.json`), loaded and typed, and the
 * SSE helpers the corpus tests share. Each case holds both sides; `openAiToAnthropic` /
 * `anthropicToOpenAi` give the expected translation where it is not simply the other side.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export type Json = Record<string, unknown>
export interface NamedEvent {
  readonly event: string
  readonly data: Json
}
export type OpenAiEvent = Json | "[DONE]"

interface Base {
  readonly file: string
  readonly name: string
}
export interface RequestCase extends Base {
  readonly kind: "request"
  readonly openai: Json
  readonly anthropic: Json
  readonly openAiToAnthropic?: Json
  readonly anthropicToOpenAi?: Json
  readonly variants?: ReadonlyArray<{ readonly openai: Json; readonly openAiToAnthropic: Json }>
}
export interface RejectCase extends Base {
  readonly kind: "reject"
  readonly openai: Json
  readonly openAiRejected: { readonly code: string; readonly param: string }
  readonly anthropic: Json
  readonly anthropicRejected: { readonly code: string; readonly param: string }
}
export interface ResponseCase extends Base {
  readonly kind: "response"
  readonly created: number
  readonly requestedModel?: string
  readonly openai: Json
  readonly anthropic: Json
  readonly openAiToAnthropic: Json
  readonly anthropicToOpenAi: Json
}
export interface ErrorCase extends Base {
  readonly kind: "error"
  readonly status: number
  readonly openai: Json
  readonly anthropic: Json
  readonly openAiToAnthropic: Json
  readonly anthropicToOpenAi: Json
}
export interface StreamCase extends Base {
  readonly kind: "stream"
  readonly created: number
  readonly includeUsage: boolean
  readonly anthropic: ReadonlyArray<NamedEvent>
  readonly anthropicToOpenAi: ReadonlyArray<OpenAiEvent>
  readonly openai: ReadonlyArray<OpenAiEvent>
  readonly openAiToAnthropic: ReadonlyArray<NamedEvent>
}
export type Case = RequestCase | RejectCase | ResponseCase | ErrorCase | StreamCase

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "translate")

export const corpus: ReadonlyArray<Case> = fs.readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8")) as Omit<Case, "file">) }) as Case)

export const ofKind = <K extends Case["kind"]>(kind: K) => corpus.filter((c): c is Extract<Case, { kind: K }> => c.kind === kind)

const encoder = new TextEncoder()

/** Anthropic wire form: `event:` + `data:` per event. */
export const anthropicSse = (events: ReadonlyArray<NamedEvent>): string =>
  events.map((e) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`).join("")

/** OpenAI wire form: `data:` per chunk, `data: [DONE]` at the end. */
export const openAiSse = (events: ReadonlyArray<OpenAiEvent>): string =>
  events.map((e) => `data: ${e === "[DONE]" ? e : JSON.stringify(e)}\n\n`).join("")

/** `bytes` cut every `size` bytes (so events, lines and UTF-8 characters are split anywhere). */
export const cut = (text: string, size: number): Array<Uint8Array> => {
  const bytes = encoder.encode(text)
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size))
  return out
}

/** Runs a stream translator over chunks, returning everything it wrote as one string. */
export const runStream = (
  translator: { push(chunk: Uint8Array): Uint8Array; end(): Uint8Array },
  chunks: ReadonlyArray<Uint8Array>
): string => {
  const decoder = new TextDecoder()
  let out = ""
  for (const chunk of chunks) out += decoder.decode(translator.push(chunk), { stream: true })
  out += decoder.decode(translator.end())
  return out
}

const blocksOf = (text: string) => text.split("\n\n").filter((b) => b.length > 0)

/** Parses OpenAI SSE output back into chunks (`[DONE]` kept as a string). */
export const parseOpenAiSse = (text: string): Array<OpenAiEvent> =>
  blocksOf(text).map((block) => {
    if (!block.startsWith("data: ")) throw new Error(`not a data event: ${block}`)
    const data = block.slice(6)
    return data === "[DONE]" ? "[DONE]" : JSON.parse(data) as Json
  })

/** Parses Anthropic SSE output back into named events; the name must match the payload's type. */
export const parseAnthropicSse = (text: string): Array<NamedEvent> =>
  blocksOf(text).map((block) => {
    const match = /^event: (\S+)\ndata: (.*)$/s.exec(block)
    if (match === null) throw new Error(`not a named event: ${block}`)
    const data = JSON.parse(match[2]!) as Json
    if (data.type !== match[1]) throw new Error(`event ${match[1]} carries type ${String(data.type)}`)
    return { event: match[1]!, data }
  })
