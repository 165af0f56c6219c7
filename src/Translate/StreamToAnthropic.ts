/**
 * OpenAI `chat.completion.chunk` stream -> Anthropic event stream, incrementally.
 *
 *   first chunk                -> message_start (usage so far: zeros; the real counts come last)
 *   delta.content              -> a text block: content_block_start once, then text_delta
 *   delta.tool_calls[i] w/ id  -> the open block stops, a tool_use block starts
 *   arguments fragments        -> input_json_delta
 *   finish_reason              -> kept for message_delta
 *   usage chunk                -> kept for message_delta
 *   [DONE] (or the end)        -> content_block_stop, message_delta (stop_reason + usage), message_stop
 *   {"error": ...}             -> an Anthropic `error` event, and nothing after
 *
 * message_delta waits for `[DONE]` because OpenAI sends usage after `finish_reason`.
 * `delta.reasoning_content` (DeepSeek style) is dropped: a thinking block needs a signature.
 */
import { fromOpenAi, type Usage } from "../Domain/Usage.js"
import { dataOf, SseEvents } from "../Sse.js"
import { anthropicUsageOf, asArray, asRecord, isRecord, type Json, namedEvent, num, str, stopReasonOf } from "./Common.js"
import { messageIdOf } from "./CompletionToAnthropic.js"

export interface OpenAiToAnthropicOptions {
  /** Reported when the stream names none. */
  readonly requestedModel?: string
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

type Open = { readonly kind: "text"; readonly index: number } | { readonly kind: "tool"; readonly index: number; readonly call: number }

export class OpenAiToAnthropicStream {
  /** Served model, from the first chunk. */
  model: string | undefined = undefined
  /** The upstream's `[DONE]` was seen (a stream cut before it still gets an ending, but is not done). */
  done = false
  /** `message_stop` was written. */
  finished = false
  /** The stream carried an error. */
  failed = false
  /** The OpenAI usage object, once sent. */
  rawUsage: unknown = undefined

  private readonly events = new SseEvents()
  private started = false
  private blocks = 0
  private open: Open | undefined = undefined
  /** OpenAI tool call index -> Anthropic block index. */
  private readonly toolBlocks = new Map<number, number>()
  private finishReason: unknown = undefined

  constructor(readonly options: OpenAiToAnthropicOptions = {}) {}

  /** Usage in tollgate's meaning, once reported. */
  get usage(): Usage | undefined {
    return fromOpenAi(this.rawUsage)
  }

  /** Feed OpenAI bytes; returns the Anthropic bytes they complete (possibly none). */
  push(chunk: Uint8Array): Uint8Array {
    return this.translate(this.events.push(chunk), false)
  }

  /** The upstream ended: a stream cut before `[DONE]` still gets a well-formed ending. */
  end(): Uint8Array {
    return this.translate(this.events.end(), true)
  }

  private translate(events: ReadonlyArray<string>, ending: boolean): Uint8Array {
    let out = ""
    for (const event of events) {
      if (this.finished || this.failed) break
      const data = dataOf(event)
      if (data === undefined) continue
      if (data.trim() === "[DONE]") {
        out += this.finish()
        this.done = true
        continue
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(data)
      } catch {
        continue
      }
      if (isRecord(parsed)) out += this.onChunk(parsed)
    }
    if (ending && this.started && !this.finished && !this.failed) out += this.finish()
    return out.length === 0 ? EMPTY : encoder.encode(out)
  }

  private start(chunk: Json): string {
    if (this.started) return ""
    this.started = true
    this.model = str(chunk.model) ?? this.model
    return namedEvent("message_start", {
      type: "message_start",
      message: {
        id: messageIdOf(chunk.id),
        type: "message",
        role: "assistant",
        model: this.model ?? this.options.requestedModel ?? "unknown",
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 }
      }
    })
  }

  private close(): string {
    if (this.open === undefined) return ""
    const index = this.open.index
    this.open = undefined
    return namedEvent("content_block_stop", { type: "content_block_stop", index })
  }

  private onChunk(chunk: Json): string {
    if (chunk.error !== undefined && chunk.error !== null) {
      this.failed = true
      const error = asRecord(chunk.error)
      return namedEvent("error", {
        type: "error",
        error: { type: "api_error", message: str(error.message) ?? "Provider stream failed" }
      })
    }
    let out = this.start(chunk)
    if (chunk.usage !== undefined && chunk.usage !== null) this.rawUsage = chunk.usage
    const choice = asRecord(asArray(chunk.choices)[0])
    const delta = asRecord(choice.delta)
    if (typeof delta.content === "string" && delta.content.length > 0) {
      if (this.open?.kind !== "text") {
        out += this.close()
        this.open = { kind: "text", index: this.blocks++ }
        out += namedEvent("content_block_start", { type: "content_block_start", index: this.open.index, content_block: { type: "text", text: "" } })
      }
      out += namedEvent("content_block_delta", {
        type: "content_block_delta",
        index: this.open.index,
        delta: { type: "text_delta", text: delta.content }
      })
    }
    for (const raw of asArray(delta.tool_calls)) {
      const call = asRecord(raw)
      const callIndex = num(call.index) ?? 0
      const fn = asRecord(call.function)
      let block = this.toolBlocks.get(callIndex)
      if (block === undefined) {
        out += this.close()
        block = this.blocks++
        this.toolBlocks.set(callIndex, block)
        this.open = { kind: "tool", index: block, call: callIndex }
        out += namedEvent("content_block_start", {
          type: "content_block_start",
          index: block,
          content_block: { type: "tool_use", id: str(call.id) ?? `toolu_${callIndex}`, name: str(fn.name) ?? "", input: {} }
        })
      }
      const args = str(fn.arguments)
      if (args !== undefined && args.length > 0) {
        out += namedEvent("content_block_delta", {
          type: "content_block_delta",
          index: block,
          delta: { type: "input_json_delta", partial_json: args }
        })
      }
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== null) this.finishReason = choice.finish_reason
    return out
  }

  private finish(): string {
    if (this.finished) return ""
    let out = this.start({})
    out += this.close()
    this.finished = true
    out += namedEvent("message_delta", {
      type: "message_delta",
      delta: { stop_reason: stopReasonOf(this.finishReason), stop_sequence: null },
      usage: anthropicUsageOf(this.rawUsage)
    })
    out += namedEvent("message_stop", { type: "message_stop" })
    return out
  }
}
