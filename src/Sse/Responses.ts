/**
 * Watching OpenAI Responses answers passed through to an OpenAI provider: an SSE tap that forwards
 * every byte as it came while reading the served model and usage, and a reader for a whole
 * (non-streamed) `response` object.
 *
 * A Responses stream reports usage once, in its terminal event: `response.completed`,
 * `response.incomplete` or `response.failed` carry the whole response with `usage` (input tokens
 * including cached ones, `input_tokens_details.cached_tokens`, output tokens including
 * reasoning, `output_tokens_details.reasoning_tokens`). No request change is needed to get it,
 * unlike chat's `stream_options.include_usage`. Only those events (and `response.created`, for the
 * model, and `error`) are parsed; text deltas are kept unparsed for estimates, as `SseTap` keeps
 * chat payloads, and folded into bounded text past `foldPast` characters.
 */
import type { Usage } from "../Domain/Usage.js"
import { dataOf, Generated, SseEvents } from "../Sse.js"
import { eventNameOf, parseEvent } from "./Anthropic.js"

const num = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0)
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Read a Responses `usage` object; `undefined` when the value is not one. */
export const fromResponses = (usage: unknown): Usage | undefined => {
  if (!isRecord(usage)) return undefined
  if (typeof usage.input_tokens !== "number" && typeof usage.output_tokens !== "number") return undefined
  const input = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : {}
  const output = isRecord(usage.output_tokens_details) ? usage.output_tokens_details : {}
  return {
    inputTokens: num(usage.input_tokens),
    outputTokens: num(usage.output_tokens),
    cachedInputTokens: num(input.cached_tokens),
    cacheWriteTokens: 0,
    reasoningTokens: num(output.reasoning_tokens),
    source: "reported"
  }
}

/** Events that end a Responses stream. */
const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"])
/** Events whose payload the tap parses. */
const WATCHED = new Set(["response.created", "response.in_progress", "error", ...TERMINAL])
/** Events carrying generated text, kept unparsed for estimates. */
const TEXT = new Set([
  "response.output_text.delta",
  "response.refusal.delta",
  "response.function_call_arguments.delta",
  "response.reasoning_text.delta",
  "response.reasoning_summary_text.delta"
])

export class ResponsesSseTap {
  /** The model the stream reported (from `response.created`, then the terminal event). */
  model: string | undefined = undefined
  /** A terminal event was seen: `response.completed` or `response.incomplete` (`response.failed` sets `error` instead). */
  done = false
  /** The terminal status: completed, incomplete or failed. */
  status: string | undefined = undefined
  /** The failure a `response.failed` or `error` event reported. */
  error: { readonly code: string | null; readonly message: string } | undefined = undefined
  /** The raw `usage` object of the terminal event. */
  rawUsage: unknown = undefined
  /** The highest `sequence_number` seen, so an error event written after these bytes can continue it (-1: none). */
  lastSequence = -1
  /** Number of upstream bytes seen. */
  bytes = 0

  readonly events = new SseEvents()
  private readonly generated: Generated

  constructor(
    /** Fold delta payloads into text once they pass this many characters. */
    readonly foldPast: number = Infinity
  ) {
    this.generated = new Generated(deltaTextOf, foldPast)
  }

  /** Usage in tollgate's meaning, once reported. */
  get usage(): Usage | undefined {
    return fromResponses(this.rawUsage)
  }

  /** Feed upstream bytes; returns them unchanged (the client gets exactly what the provider sent). */
  push(chunk: Uint8Array): Uint8Array {
    this.bytes += chunk.byteLength
    const events = this.events.push(chunk)
    for (let i = 0; i < events.length; i++) this.inspect(events[i]!)
    return chunk
  }

  /** The upstream ended; an unterminated last event is still read. Nothing is left to forward. */
  end(): Uint8Array {
    for (const event of this.events.end()) this.inspect(event)
    return EMPTY
  }

  private inspect(event: string): void {
    const name = eventNameOf(event)
    if (name !== undefined && !WATCHED.has(name)) {
      const data = dataOf(event)
      if (data === undefined) return
      this.sequenceOf(data)
      if (TEXT.has(name)) this.generated.keep(data)
      return
    }
    const parsed = parseEvent(event)
    if (parsed === undefined) return
    const { data, type } = parsed
    if (typeof data.sequence_number === "number" && data.sequence_number > this.lastSequence) this.lastSequence = data.sequence_number
    if (TEXT.has(type)) {
      // Unnamed events (only `data:`): the payload's type says what it is.
      this.generated.keep(JSON.stringify(data))
      return
    }
    if (type === "error") {
      this.error = { code: typeof data.code === "string" ? data.code : null, message: typeof data.message === "string" ? data.message : "" }
      return
    }
    if (!WATCHED.has(type)) return
    const response = isRecord(data.response) ? data.response : {}
    if (typeof response.model === "string") this.model = response.model
    if (!TERMINAL.has(type)) return
    this.status = typeof response.status === "string" ? response.status : type.slice("response.".length)
    if (response.usage !== undefined && response.usage !== null) this.rawUsage = response.usage
    if (type === "response.failed") {
      const error = isRecord(response.error) ? response.error : {}
      this.error = { code: typeof error.code === "string" ? error.code : null, message: typeof error.message === "string" ? error.message : "" }
    } else this.done = true
  }

  /** Reads `sequence_number` without parsing a delta: it is the payload's second field as OpenAI writes it. */
  private sequenceOf(data: string): void {
    const at = data.indexOf("\"sequence_number\":")
    if (at === -1) return
    const n = Number.parseInt(data.slice(at + 18, at + 34), 10)
    if (Number.isFinite(n) && n > this.lastSequence) this.lastSequence = n
  }

  /** The generated text of the deltas not read before (for the budget guard). */
  newText(): string {
    return this.generated.newText()
  }

  /** Generated text seen so far (text, refusals, arguments, reasoning), for a token estimate only: its first `COMPLETION_CAP` characters. */
  completionText(): string {
    return this.generated.text()
  }

  /** Characters of generated text seen so far. */
  completionChars(): number {
    return this.generated.chars()
  }
}

const deltaTextOf = (deltas: ReadonlyArray<string>): string => {
  if (deltas.length === 0) return ""
  const parts: Array<string> = []
  for (let i = 0; i < deltas.length; i++) {
    try {
      const delta = (JSON.parse(deltas[i]!) as { delta?: unknown }).delta
      if (typeof delta === "string") parts.push(delta)
    } catch {
      // not JSON: nothing to count
    }
  }
  return parts.join("")
}

const EMPTY = new Uint8Array(0)

/** What a whole Responses answer says: the served model, usage, and whether it was a JSON object. */
export interface ResponseFacts {
  readonly model: string | undefined
  readonly usage: Usage | undefined
  /** Generated text (output text, refusals, tool call arguments, reasoning), for a token estimate only. */
  readonly completionText: () => string
  readonly valid: boolean
}

/** Facts of a `response` object already parsed (anything else: none, and not valid). */
export const responseFacts = (json: unknown): ResponseFacts => {
  if (!isRecord(json)) return { model: undefined, usage: undefined, completionText: () => "", valid: false }
  return {
    model: typeof json.model === "string" ? json.model : undefined,
    usage: fromResponses(json.usage),
    completionText: () => outputTextOf(json.output),
    valid: true
  }
}

/** Facts of a non-streamed Responses answer's bytes. */
export const readResponse = (bytes: Uint8Array): ResponseFacts => {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    json = undefined
  }
  return responseFacts(json)
}

/** The generated text of a response's output items. */
export const outputTextOf = (output: unknown): string => {
  if (!Array.isArray(output)) return ""
  const parts: Array<string> = []
  for (const item of output) {
    if (!isRecord(item)) continue
    if (typeof item.arguments === "string") parts.push(item.arguments)
    const lists = [item.content, item.summary]
    for (const list of lists) {
      if (!Array.isArray(list)) continue
      for (const part of list) {
        if (!isRecord(part)) continue
        if (typeof part.text === "string") parts.push(part.text)
        if (typeof part.refusal === "string") parts.push(part.refusal)
      }
    }
  }
  return parts.join("")
}
