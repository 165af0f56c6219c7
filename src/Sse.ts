/**
 * An incremental reader of an OpenAI-style SSE body that the proxy passes through while it watches.
 *
 * It never holds back a complete event: bytes go out as soon as they come in (as-is, when nothing
 * has to be removed), and the tap reads `usage` and the served model on the way. When the proxy
 * itself asked the upstream for `stream_options.include_usage`, the usage-only chunk is removed from
 * what the client sees, so the client gets exactly what it would have got without the proxy.
 */

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/g
const LINE = /\r\n|\n|\r/

const encoder = new TextEncoder()

/** The `data:` payload of one SSE event (lines joined with "\n"), or undefined if it has none. */
export const dataOf = (event: string): string | undefined => {
  let data: string | undefined
  for (const line of event.split(LINE)) {
    if (line.startsWith("data:")) {
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5)
      data = data === undefined ? value : `${data}\n${value}`
    }
  }
  return data
}

export class SseTap {
  /** The last `usage` object the upstream sent, if any. */
  usage: unknown = undefined
  /** The `model` the upstream reported in its first chunk. */
  model: string | undefined = undefined
  /** The terminal `data: [DONE]` was seen. */
  done = false
  /** Number of upstream bytes seen. */
  bytes = 0

  private readonly decoder = new TextDecoder()
  private buffer = ""
  /** Every event's `data:` payload so far ([DONE] excluded; a removed usage chunk excluded). */
  readonly payloads: Array<string> = []

  constructor(
    /** Remove the usage-only chunk (`choices: []` with `usage`) from the forwarded bytes. */
    readonly stripUsageChunk: boolean
  ) {}

  /** Feed upstream bytes; returns the bytes to forward to the client (possibly empty). */
  push(chunk: Uint8Array): Uint8Array {
    this.bytes += chunk.byteLength
    this.buffer += this.decoder.decode(chunk, { stream: true })
    let forward = this.stripUsageChunk ? "" : undefined
    let start = 0
    BOUNDARY.lastIndex = 0
    for (let match = BOUNDARY.exec(this.buffer); match !== null; match = BOUNDARY.exec(this.buffer)) {
      const end = match.index + match[0].length
      const event = this.buffer.slice(start, end)
      const keep = this.inspect(event)
      if (forward !== undefined && keep) forward += event
      start = end
    }
    this.buffer = this.buffer.slice(start)
    return forward === undefined ? chunk : forward.length === 0 ? EMPTY : encoder.encode(forward)
  }

  /** The upstream ended: whatever is left (an unterminated last event) goes out as it was. */
  end(): Uint8Array {
    const rest = this.buffer + this.decoder.decode()
    this.buffer = ""
    if (rest.length === 0) return EMPTY
    const keep = this.inspect(rest)
    return this.stripUsageChunk && keep ? encoder.encode(rest) : EMPTY
  }

  /** Reads one event; returns whether it should reach the client. */
  private inspect(event: string): boolean {
    const data = dataOf(event)
    if (data === undefined) return true
    if (data === "[DONE]") {
      this.done = true
      return true
    }
    const first = this.model === undefined
    if (!first && data.indexOf("\"usage\"") === -1) {
      this.payloads.push(data)
      return true
    }
    let parsed: { model?: unknown; usage?: unknown; choices?: unknown }
    try {
      parsed = JSON.parse(data)
    } catch {
      return true
    }
    if (first && typeof parsed.model === "string") this.model = parsed.model
    if (parsed.usage !== undefined && parsed.usage !== null) {
      this.usage = parsed.usage
      if (this.stripUsageChunk && Array.isArray(parsed.choices) && parsed.choices.length === 0) return false
    }
    this.payloads.push(data)
    return true
  }

  /**
   * The generated text seen so far (content, refusals and tool-call arguments), for a token
   * estimate when the upstream sent no usage. Only ever counted, never stored.
   */
  completionText(from = 0): string {
    const parts: Array<string> = []
    for (let i = from; i < this.payloads.length; i++) {
      const payload = this.payloads[i]!
      try {
        const chunk = JSON.parse(payload) as { choices?: Array<{ delta?: Record<string, unknown> }> }
        for (const choice of chunk.choices ?? []) {
          const delta = choice.delta ?? {}
          if (typeof delta.content === "string") parts.push(delta.content)
          if (typeof delta.refusal === "string") parts.push(delta.refusal)
          if (Array.isArray(delta.tool_calls)) {
            for (const call of delta.tool_calls as Array<{ function?: { name?: unknown; arguments?: unknown } }>) {
              if (typeof call.function?.name === "string") parts.push(call.function.name)
              if (typeof call.function?.arguments === "string") parts.push(call.function.arguments)
            }
          }
        }
      } catch {
        // not JSON: nothing to count
      }
    }
    return parts.join("")
  }
}

const EMPTY = new Uint8Array(0)

/** One SSE event carrying `data`, terminated. */
export const event = (data: string): string => `data: ${data}\n\n`
export const DONE = "data: [DONE]\n\n"
