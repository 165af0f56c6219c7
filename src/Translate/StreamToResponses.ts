/**
 * OpenAI `chat.completion.chunk` stream -> OpenAI Responses event stream, incrementally: every
 * complete chunk turns into its events at once, whatever the byte boundaries it arrived in.
 *
 *   first chunk               -> response.created, response.in_progress
 *   delta.reasoning_content   -> a reasoning item: output_item.added, content_part.added
 *                                (reasoning_text), reasoning_text.delta*
 *   delta.content             -> a message item: output_item.added, content_part.added
 *                                (output_text), output_text.delta*
 *   delta.refusal             -> a refusal part of the message item: content_part.added,
 *                                refusal.delta*
 *   delta.tool_calls[i] w/ id -> a function_call item: output_item.added, then
 *                                function_call_arguments.delta* for its fragments
 *   finish_reason             -> every open part and item is closed (output_text.done /
 *                                refusal.done / reasoning_text.done, content_part.done,
 *                                function_call_arguments.done, output_item.done)
 *   [DONE]                    -> response.completed (response.incomplete on "length" or
 *                                "content_filter") with the whole response and its usage
 *   {"error": ...}, or a cut  -> response.failed, with the output so far and the error
 *
 * Events are `event: <type>\ndata: <json>\n\n`, numbered by `sequence_number` from 0; the stream
 * has no `[DONE]`. Text and arguments of the answer are kept: the protocol repeats them in the
 * `*.done` events and in the final response (so memory is the size of the answer, as in any
 * Responses client). One item is open at a time, as OpenAI writes them; chat providers stream
 * parallel calls one after another, and a fragment that still came for a call already closed is
 * added to that call in the final response (its `*.done` events have gone out).
 */
import { fromOpenAi, type Usage } from "../Domain/Usage.js"
import { dataOf, SseEvents } from "../Sse.js"
import {
  callItem,
  callItemIdOf,
  echoOf,
  envelope,
  messageItemIdOf,
  outputText,
  reasoningItem,
  reasoningItemIdOf,
  responseIdOf,
  type ResponseStatus,
  responsesUsageOf,
  statusOf
} from "./ChatToResponses.js"
import { asArray, asRecord, isRecord, type Json, namedEvent, num, str } from "./Common.js"
import { nowSeconds } from "./MessageToOpenAi.js"

export interface ChatToResponsesStreamOptions {
  /** The Responses request, whose settings the response echoes. */
  readonly request?: unknown
  /** Reported when the stream names no model. */
  readonly requestedModel?: string
  /** Unix seconds for `created_at` when the first chunk has none. Default: now. */
  readonly created?: number
  /** Called with the final response object when the stream completes (or ends incomplete). */
  readonly onCompleted?: ((response: Json) => void) | undefined
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

/**
 * The Responses `error` event (what a stream that fails midway ends with). `sequenceNumber`
 * continues the stream's numbering when the caller knows it (`ChatToResponsesStream.nextSequence`).
 */
export const errorEvent = (message: string, sequenceNumber = 0, code: string | null = "upstream_stream_error"): string =>
  namedEvent("error", { type: "error", code, message, param: null, sequence_number: sequenceNumber })

interface OpenPart {
  readonly type: "output_text" | "refusal" | "reasoning_text"
  readonly index: number
  text: string
}
interface OpenContent {
  readonly kind: "message" | "reasoning"
  readonly outputIndex: number
  readonly id: string
  readonly parts: Array<Json>
  part: OpenPart | undefined
}
interface Call {
  readonly outputIndex: number
  readonly callId: string
  readonly name: string
  args: string
}

export class ChatToResponsesStream {
  /** Served model, from the first chunk. */
  model: string | undefined = undefined
  /** The upstream's `[DONE]` was seen (a stream cut before it still ends well-formed, but is not done). */
  done = false
  /** The terminal event (completed, incomplete or failed) was written. */
  finished = false
  /** The stream ended in `response.failed` (a provider error, or cut before it finished). */
  failed = false
  /** The OpenAI usage object, once sent. */
  rawUsage: unknown = undefined

  private readonly events = new SseEvents()
  private readonly echo: Json
  private sequence = 0
  private started = false
  private chatId: unknown = undefined
  private createdAt: number
  private readonly output: Array<Json> = []
  private content: OpenContent | undefined = undefined
  /** Function calls by the chat tool call index (the open one is `call`). */
  private readonly calls = new Map<number, Call>()
  private call: Call | undefined = undefined
  private finishReason: unknown = undefined

  constructor(readonly options: ChatToResponsesStreamOptions = {}) {
    this.echo = echoOf(options.request)
    this.createdAt = options.created ?? nowSeconds()
  }

  /** Usage in tollgate's meaning, once reported. */
  get usage(): Usage | undefined {
    return fromOpenAi(this.rawUsage)
  }

  /** The `sequence_number` the next event gets (for an `errorEvent` written after this stream's bytes). */
  get nextSequence(): number {
    return this.sequence
  }

  /** Feed chat SSE bytes; returns the Responses bytes they complete (possibly none). */
  push(chunk: Uint8Array): Uint8Array {
    return this.translate(this.events.push(chunk), false)
  }

  /** The upstream ended: a stream cut before it finished ends in `response.failed`. */
  end(): Uint8Array {
    return this.translate(this.events.end(), true)
  }

  /** Ends the stream here with `response.failed` carrying `message` (nothing if it already ended). */
  fail(message: string): Uint8Array {
    const out = this.failWith(message)
    return out.length === 0 ? EMPTY : encoder.encode(out)
  }

  private translate(events: ReadonlyArray<string>, ending: boolean): Uint8Array {
    let out = ""
    for (const event of events) {
      if (this.finished) break
      const data = dataOf(event)
      if (data === undefined) continue
      if (data.trim() === "[DONE]") {
        this.done = true
        out += this.finish()
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
    if (ending && !this.finished) {
      out += this.finishReason === undefined
        ? this.failWith("The provider's stream ended before the answer was complete")
        : this.finish()
    }
    return out.length === 0 ? EMPTY : encoder.encode(out)
  }

  private event(type: string, fields: Json): string {
    return namedEvent(type, { type, sequence_number: this.sequence++, ...fields })
  }

  private snapshot(status: ResponseStatus, output: ReadonlyArray<Json>, extra: { usage?: Json; incomplete?: Json | null; error?: Json } = {}): Json {
    return envelope(
      {
        id: responseIdOf(this.chatId),
        createdAt: this.createdAt,
        model: this.model ?? this.options.requestedModel ?? "unknown",
        status,
        output,
        usage: extra.usage,
        incomplete: extra.incomplete ?? null,
        error: extra.error ?? null
      },
      this.echo
    )
  }

  private start(chunk: Json): string {
    if (this.started) return ""
    this.started = true
    this.chatId = chunk.id
    this.model = str(chunk.model) ?? this.model
    this.createdAt = num(chunk.created) ?? this.createdAt
    const response = this.snapshot("in_progress", [])
    return this.event("response.created", { response }) + this.event("response.in_progress", { response })
  }

  private onChunk(chunk: Json): string {
    if (chunk.error !== undefined && chunk.error !== null) {
      const error = asRecord(chunk.error)
      return this.failWith(str(error.message) ?? (typeof chunk.error === "string" ? chunk.error : "The provider's stream failed"))
    }
    let out = this.start(chunk)
    if (chunk.usage !== undefined && chunk.usage !== null) this.rawUsage = chunk.usage
    const choice = asRecord(asArray(chunk.choices)[0])
    const delta = asRecord(choice.delta)
    const reasoning = str(delta.reasoning_content) ?? str(delta.reasoning)
    if (reasoning !== undefined && reasoning.length > 0) out += this.text("reasoning", "reasoning_text", reasoning)
    if (typeof delta.content === "string" && delta.content.length > 0) out += this.text("message", "output_text", delta.content)
    if (typeof delta.refusal === "string" && delta.refusal.length > 0) out += this.text("message", "refusal", delta.refusal)
    for (const raw of asArray(delta.tool_calls)) out += this.toolCall(asRecord(raw))
    if (choice.finish_reason !== undefined && choice.finish_reason !== null && this.finishReason === undefined) {
      this.finishReason = choice.finish_reason
      out += this.closeAll(statusOf(choice.finish_reason).status === "incomplete" ? "incomplete" : "completed")
    }
    return out
  }

  /** A text fragment of a reasoning or message item, opening the item and its part as needed. */
  private text(kind: OpenContent["kind"], type: OpenPart["type"], delta: string): string {
    let out = ""
    if (this.content?.kind !== kind) {
      out += this.closeAll("completed")
      const outputIndex = this.output.length
      const base = kind === "message" ? messageItemIdOf(this.chatId) : reasoningItemIdOf(this.chatId)
      // A second item of a kind (text after a tool call, say) gets its own id.
      const id = this.output.some((item) => item.id === base) ? `${base}_${outputIndex}` : base
      this.content = { kind, outputIndex, id, parts: [], part: undefined }
      this.output.push({}) // its place; the finished item replaces it
      const item = kind === "message"
        ? { id, type: "message", status: "in_progress", role: "assistant", content: [] }
        : { id, type: "reasoning", summary: [], content: [], status: "in_progress" }
      out += this.event("response.output_item.added", { output_index: outputIndex, item })
    }
    const content = this.content!
    if (content.part?.type !== type) {
      out += this.closePart(content)
      content.part = { type, index: content.parts.length, text: "" }
      out += this.event("response.content_part.added", { ...this.at(content), part: emptyPart(type) })
    }
    const part = content.part!
    part.text += delta
    switch (type) {
      case "output_text":
        return out + this.event("response.output_text.delta", { ...this.at(content), delta, logprobs: [] })
      case "refusal":
        return out + this.event("response.refusal.delta", { ...this.at(content), delta })
      case "reasoning_text":
        return out + this.event("response.reasoning_text.delta", { ...this.at(content), delta })
    }
  }

  private at(content: OpenContent): Json {
    return { item_id: content.id, output_index: content.outputIndex, content_index: content.part?.index ?? 0 }
  }

  private toolCall(delta: Json): string {
    const index = num(delta.index) ?? 0
    const fn = asRecord(delta.function)
    let out = ""
    let call = this.calls.get(index)
    if (call === undefined) {
      out += this.closeAll("completed")
      const callId = str(delta.id) ?? `call_${this.output.length}`
      call = { outputIndex: this.output.length, callId, name: str(fn.name) ?? "", args: "" }
      this.calls.set(index, call)
      this.call = call
      this.output.push({})
      out += this.event("response.output_item.added", { output_index: call.outputIndex, item: callItem(callId, call.name, "", "in_progress") })
    }
    const args = str(fn.arguments)
    if (args === undefined || args.length === 0) return out
    call.args += args
    if (call !== this.call) {
      // Late fragment of a closed call: only the final response can still have it.
      this.output[call.outputIndex] = callItem(call.callId, call.name, call.args, "completed")
      return out
    }
    return out + this.event("response.function_call_arguments.delta", { item_id: callItemIdOf(call.callId), output_index: call.outputIndex, delta: args })
  }

  private closePart(content: OpenContent): string {
    const part = content.part
    if (part === undefined) return ""
    const at = this.at(content)
    let out: string
    let full: Json
    switch (part.type) {
      case "output_text":
        full = outputText(part.text)
        out = this.event("response.output_text.done", { ...at, text: part.text, logprobs: [] })
        break
      case "refusal":
        full = { type: "refusal", refusal: part.text }
        out = this.event("response.refusal.done", { ...at, refusal: part.text })
        break
      case "reasoning_text":
        full = { type: "reasoning_text", text: part.text }
        out = this.event("response.reasoning_text.done", { ...at, text: part.text })
        break
    }
    content.parts.push(full)
    content.part = undefined
    return out + this.event("response.content_part.done", { ...at, part: full })
  }

  private closeContent(status: string): string {
    const content = this.content
    if (content === undefined) return ""
    let out = this.closePart(content)
    this.content = undefined
    const item = content.kind === "message"
      ? { id: content.id, type: "message", status, role: "assistant", content: content.parts }
      : { ...reasoningItem(content.id, "", status), content: content.parts }
    this.output[content.outputIndex] = item
    out += this.event("response.output_item.done", { output_index: content.outputIndex, item })
    return out
  }

  private closeCall(status: string): string {
    const call = this.call
    if (call === undefined) return ""
    this.call = undefined
    const item = callItem(call.callId, call.name, call.args, status)
    this.output[call.outputIndex] = item
    return this.event("response.function_call_arguments.done", { item_id: item.id, output_index: call.outputIndex, name: call.name, arguments: call.args }) +
      this.event("response.output_item.done", { output_index: call.outputIndex, item })
  }

  /** Closes the open item, whichever kind it is (one is open at most). */
  private closeAll(status: string): string {
    return this.closeContent(status) + this.closeCall(status)
  }

  private finish(): string {
    if (this.finished) return ""
    let out = this.start({})
    const { incomplete, status } = statusOf(this.finishReason)
    out += this.closeAll(status === "incomplete" ? "incomplete" : "completed")
    this.finished = true
    const response = this.snapshot(status, this.output, {
      ...(this.rawUsage === undefined ? {} : { usage: responsesUsageOf(this.rawUsage) }),
      incomplete
    })
    this.options.onCompleted?.(response)
    return out + this.event(status === "incomplete" ? "response.incomplete" : "response.completed", { response })
  }

  private failWith(message: string): string {
    if (this.finished) return ""
    let out = this.start({})
    this.finished = true
    this.failed = true
    // The output so far, the unfinished items as they stand.
    const output = this.output.map((item, i) => (Object.keys(item).length > 0 ? item : this.partial(i)))
    const response = this.snapshot("failed", output, {
      ...(this.rawUsage === undefined ? {} : { usage: responsesUsageOf(this.rawUsage) }),
      error: { code: "server_error", message }
    })
    out += this.event("response.failed", { response })
    return out
  }

  /** An item still open, as it stands (status incomplete). */
  private partial(outputIndex: number): Json {
    const content = this.content
    if (content !== undefined && content.outputIndex === outputIndex) {
      const parts = content.part === undefined ? content.parts : [...content.parts, fullPart(content.part)]
      return content.kind === "message"
        ? { id: content.id, type: "message", status: "incomplete", role: "assistant", content: parts }
        : { ...reasoningItem(content.id, "", "incomplete"), content: parts }
    }
    const call = this.call
    if (call !== undefined && call.outputIndex === outputIndex) return callItem(call.callId, call.name, call.args, "incomplete")
    return {}
  }
}

const emptyPart = (type: OpenPart["type"]): Json =>
  type === "output_text" ? outputText("") : type === "refusal" ? { type: "refusal", refusal: "" } : { type: "reasoning_text", text: "" }

const fullPart = (part: OpenPart): Json =>
  part.type === "output_text"
    ? outputText(part.text)
    : part.type === "refusal"
    ? { type: "refusal", refusal: part.text }
    : { type: "reasoning_text", text: part.text }
