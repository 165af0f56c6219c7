/**
 * Anthropic event stream -> OpenAI `chat.completion.chunk` stream, incrementally: every complete
 * Anthropic event turns into its chunks at once, whatever the byte boundaries it arrived in.
 *
 *   message_start              -> a role chunk (`delta: {role: "assistant", content: ""}`)
 *   text_delta                 -> `delta.content`
 *   thinking_delta             -> `delta.reasoning_content` (see MessageToOpenAi.ts)
 *   tool_use block start       -> `delta.tool_calls[{index, id, type, function: {name, arguments: ""}}]`
 *   input_json_delta           -> `delta.tool_calls[{index, function: {arguments}}]`
 *   message_delta              -> the last chunk, with `finish_reason`
 *   message_stop               -> the usage chunk (`choices: []`) if asked, then `data: [DONE]`
 *   error                      -> an OpenAI error event (the SDKs raise it), and nothing after
 *
 * `index` counts tool calls only, as OpenAI does (a text block before them does not shift it).
 */
import { fromAnthropic, type Usage } from "../Domain/Usage.js"
import { SseEvents } from "../Sse.js"
import { type ParsedEvent, parseEvent } from "../Sse/Anthropic.js"
import { asRecord, dataEvent, DONE, finishReasonOf, type Json, num, openAiUsageOf, str } from "./Common.js"
import { anthropicErrorToOpenAi, nowSeconds } from "./MessageToOpenAi.js"

export interface AnthropicToOpenAiOptions {
  /** The client asked `stream_options.include_usage`: end with a usage-only chunk. */
  readonly includeUsage: boolean
  /** Reported when the stream names none. */
  readonly requestedModel?: string
  /** Unix seconds for `created`. Default: now. */
  readonly created?: number
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

export class AnthropicToOpenAiStream {
  /** Served model, from `message_start`. */
  model: string | undefined = undefined
  /** `message_stop` was seen (and `[DONE]` written). */
  done = false
  /** The stream carried an Anthropic `error` event. */
  failed = false
  /** Anthropic usage fields merged across `message_start` and `message_delta`. */
  readonly rawUsage: Record<string, unknown> = {}

  private readonly events = new SseEvents()
  private readonly created: number
  private id = "chatcmpl-tollgate"
  /** Anthropic block index -> OpenAI tool call index, for tool_use blocks. */
  private readonly toolIndex = new Map<number, number>()
  private tools = 0

  constructor(readonly options: AnthropicToOpenAiOptions) {
    this.created = options.created ?? nowSeconds()
  }

  /** Usage in tollgate's meaning, once reported. */
  get usage(): Usage | undefined {
    return fromAnthropic(this.rawUsage)
  }

  /** Feed Anthropic bytes; returns the OpenAI bytes they complete (possibly none). */
  push(chunk: Uint8Array): Uint8Array {
    return this.translate(this.events.push(chunk))
  }

  /** The upstream ended: an unterminated last event is still translated. */
  end(): Uint8Array {
    return this.translate(this.events.end())
  }

  private translate(events: ReadonlyArray<string>): Uint8Array {
    if (events.length === 0) return EMPTY
    let out = ""
    for (const event of events) {
      const parsed = parseEvent(event)
      if (parsed !== undefined && !this.done && !this.failed) out += this.onEvent(parsed)
    }
    return out.length === 0 ? EMPTY : encoder.encode(out)
  }

  private chunk(delta: Json, finishReason: string | null = null): string {
    return dataEvent({
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model ?? this.options.requestedModel ?? "unknown",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }]
    })
  }

  private merge(usage: unknown) {
    for (const [key, value] of Object.entries(asRecord(usage))) {
      if (value !== null && value !== undefined) this.rawUsage[key] = value
    }
  }

  private onEvent({ data, type }: ParsedEvent): string {
    switch (type) {
      case "message_start": {
        const message = asRecord(data.message)
        this.id = str(message.id) ?? this.id
        this.model = str(message.model) ?? this.model
        this.merge(message.usage)
        return this.chunk({ role: "assistant", content: "" })
      }
      case "content_block_start": {
        const index = num(data.index) ?? 0
        const block = asRecord(data.content_block)
        if (block.type === "tool_use") {
          const call = this.tools++
          this.toolIndex.set(index, call)
          return this.chunk({
            tool_calls: [{ index: call, id: str(block.id) ?? `call_${call}`, type: "function", function: { name: str(block.name) ?? "", arguments: "" } }]
          })
        }
        if (block.type === "text" && typeof block.text === "string" && block.text.length > 0) return this.chunk({ content: block.text })
        return ""
      }
      case "content_block_delta": {
        const index = num(data.index) ?? 0
        const delta = asRecord(data.delta)
        switch (delta.type) {
          case "text_delta":
            return this.chunk({ content: str(delta.text) ?? "" })
          case "thinking_delta":
            return this.chunk({ reasoning_content: str(delta.thinking) ?? "" })
          case "input_json_delta": {
            const call = this.toolIndex.get(index)
            const fragment = str(delta.partial_json) ?? ""
            if (call === undefined || fragment.length === 0) return ""
            return this.chunk({ tool_calls: [{ index: call, function: { arguments: fragment } }] })
          }
          default:
            // signature_delta, citations: nothing an OpenAI client can use.
            return ""
        }
      }
      case "message_delta": {
        this.merge(data.usage)
        return this.chunk({}, finishReasonOf(asRecord(data.delta).stop_reason))
      }
      case "message_stop": {
        this.done = true
        const usage = this.options.includeUsage
          ? dataEvent({
            id: this.id,
            object: "chat.completion.chunk",
            created: this.created,
            model: this.model ?? this.options.requestedModel ?? "unknown",
            choices: [],
            usage: openAiUsageOf(this.rawUsage)
          })
          : ""
        return usage + DONE
      }
      case "error":
        this.failed = true
        return dataEvent(anthropicErrorToOpenAi(data))
      default:
        // ping, content_block_stop
        return ""
    }
  }
}
