/**
 * Watching Anthropic Messages answers: an SSE tap that passes every byte through as it came while
 * reading the served model and usage, and a reader for a whole (non-streamed) message.
 *
 * Anthropic reports usage in two places: `message_start` carries the input side (`input_tokens`,
 * which excludes cache tokens, plus `cache_creation_input_tokens`, its 5m/1h split under
 * `cache_creation`, and `cache_read_input_tokens`) and a first `output_tokens`; every
 * `message_delta` carries the cumulative `output_tokens` (and, on newer API versions, may repeat
 * the input fields). Fields are merged, later values winning, then read once by `fromAnthropic`.
 */
import { fromAnthropic, type Usage } from "../Domain/Usage.js"
import { dataOf, Generated, SseEvents } from "../Sse.js"

export { SseEvents }

const LINE = /\r\n|\n|\r/

/** The `event:` name of one SSE event, if it has one. */
export const eventNameOf = (event: string): string | undefined => {
  for (const line of event.split(LINE)) {
    if (line.startsWith("event:")) return line.slice(line.charCodeAt(6) === 32 ? 7 : 6)
  }
  return undefined
}

/** One parsed SSE event: its name (from `event:` or the payload's `type`) and its JSON payload. */
export interface ParsedEvent {
  readonly type: string
  readonly data: Record<string, unknown>
}

/** Parses one event's JSON payload; undefined for comments, pings without data and non-JSON. */
export const parseEvent = (event: string): ParsedEvent | undefined => {
  const raw = dataOf(event)
  if (raw === undefined) return undefined
  let data: unknown
  try {
    data = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof data !== "object" || data === null) return undefined
  const record = data as Record<string, unknown>
  const type = typeof record.type === "string" ? record.type : eventNameOf(event) ?? ""
  return { type, data: record }
}

const mergeUsage = (into: Record<string, unknown>, usage: unknown) => {
  if (typeof usage !== "object" || usage === null) return
  for (const [key, value] of Object.entries(usage)) {
    if (value !== null && value !== undefined) into[key] = value
  }
}

/** Events whose payload the tap must read; the rest (content deltas, pings) pass unparsed. */
const WATCHED = new Set(["message_start", "message_delta", "message_stop", "error"])

export class AnthropicSseTap {
  /** The model from `message_start`. */
  model: string | undefined = undefined
  /** `message_stop` was seen. */
  done = false
  /** The `error` event's `error` object, if the stream carried one. */
  error: { readonly type: string; readonly message: string } | undefined = undefined
  /** Number of upstream bytes seen. */
  bytes = 0
  /** Usage fields as reported so far (Anthropic's names), merged across events. */
  readonly rawUsage: Record<string, unknown> = {}

  readonly events = new SseEvents()
  /** `content_block_delta` payloads, kept only for estimates. */
  private readonly generated: Generated

  constructor(
    /** Fold delta payloads into text once they pass this many characters. */
    readonly foldPast: number = Infinity
  ) {
    this.generated = new Generated(deltaTextOf, foldPast)
  }

  /** Feed upstream bytes; returns them unchanged (the client gets exactly what Anthropic sent). */
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

  /** Usage in tollgate's meaning (input includes cache reads and writes), if any was reported. */
  get usage(): Usage | undefined {
    return fromAnthropic(this.rawUsage)
  }

  private inspect(event: string): void {
    const name = eventNameOf(event)
    if (name !== undefined && !WATCHED.has(name)) {
      if (name === "content_block_delta") {
        const data = dataOf(event)
        if (data !== undefined) this.keep(data)
      }
      return
    }
    const parsed = parseEvent(event)
    if (parsed === undefined) return
    switch (parsed.type) {
      case "message_start": {
        const message = (parsed.data.message ?? {}) as { model?: unknown; usage?: unknown }
        if (typeof message.model === "string") this.model = message.model
        mergeUsage(this.rawUsage, message.usage)
        break
      }
      case "message_delta":
        mergeUsage(this.rawUsage, parsed.data.usage)
        break
      case "message_stop":
        this.done = true
        break
      case "error": {
        const error = (parsed.data.error ?? {}) as { type?: unknown; message?: unknown }
        this.error = {
          type: typeof error.type === "string" ? error.type : "api_error",
          message: typeof error.message === "string" ? error.message : ""
        }
        break
      }
      case "content_block_delta":
        this.keep(JSON.stringify(parsed.data))
        break
    }
  }

  private keep(data: string): void {
    this.generated.keep(data)
  }

  /** The generated text of the deltas not read before (for the budget guard). */
  newText(): string {
    return this.generated.newText()
  }

  /** Generated text seen so far (text, thinking, tool input JSON), for a token estimate only: its first `COMPLETION_CAP` characters. */
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
      const delta = (JSON.parse(deltas[i]!) as { delta?: Record<string, unknown> }).delta ?? {}
      for (const key of ["text", "thinking", "partial_json"]) {
        const value = delta[key]
        if (typeof value === "string") parts.push(value)
      }
    } catch {
      // not JSON: nothing to count
    }
  }
  return parts.join("")
}

const EMPTY = new Uint8Array(0)

/** `model` and usage of a non-streamed Anthropic message; both optional. */
export const readMessage = (bytes: Uint8Array): { model: string | undefined; usage: Usage | undefined } => {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    json = undefined
  }
  return messageFacts(json)
}

/** `model` and usage of an Anthropic message already parsed (anything else: neither). */
export const messageFacts = (json: unknown): { model: string | undefined; usage: Usage | undefined } => {
  if (typeof json !== "object" || json === null) return { model: undefined, usage: undefined }
  const message = json as { model?: unknown; usage?: unknown }
  return { model: typeof message.model === "string" ? message.model : undefined, usage: fromAnthropic(message.usage) }
}
