/**
 * Reading OpenAI-style SSE bodies that the proxy passes through while it watches: `SseEvents`
 * splits bytes into events, `SseTap` reads usage and the served model on the way, `Completion`
 * keeps the generated text a token estimate needs, within a bound.
 *
 * The tap never holds back a complete event: bytes go out as soon as they come in (as-is, when
 * nothing has to be removed). When the proxy itself asked the upstream for
 * `stream_options.include_usage`, the usage-only chunk is removed from what the client sees, so the
 * client gets exactly what it would have got without the proxy.
 *
 * Memory and time stay linear in what the upstream sends: only an event not yet terminated is
 * held (its size is `SseEvents.pending`, which the proxy bounds), a boundary is looked for only in
 * new text, and payloads kept for an estimate are folded into bounded text as they pile up.
 */

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/g
const LINE = /\r\n|\n|\r/

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

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

/**
 * Splits an SSE byte stream into complete events, whatever the chunk boundaries (mid-line,
 * mid-character, mid-`\r\n`). Each event comes back with its terminating blank line.
 *
 * Text of an event not yet terminated is kept in pieces, joined once when the event completes,
 * and only new text is searched for a boundary (with the last 3 characters held before it, where a
 * boundary can begin): a stream without boundaries costs time linear in its bytes, not quadratic.
 */
export class SseEvents {
  private readonly decoder = new TextDecoder()
  /** The unterminated event so far, in pieces. */
  private held: Array<string> = []
  /** Its last 3 characters (a boundary is at most 4 long). */
  private tail = ""
  /** Characters held for the event not yet terminated. */
  pending = 0
  /** What `push` returns, reused: a stream's chunks make no array each. */
  private readonly out: Array<string> = []

  /** The events this chunk completes, in an array that the next `push` reuses: read it before then. */
  push(chunk: Uint8Array): ReadonlyArray<string> {
    return this.scan(this.decoder.decode(chunk, { stream: true }))
  }

  /** The stream ended: an unterminated last event, if any (whitespace only counts as none). */
  end(): Array<string> {
    const rest = this.take() + this.decoder.decode()
    return rest.trim().length === 0 ? [] : [rest]
  }

  /** The stream ended: whatever is held, as it is (possibly ""). */
  rest(): string {
    return this.take() + this.decoder.decode()
  }

  private take(): string {
    const text = this.held.length === 1 ? this.held[0]! : this.held.join("")
    this.held = []
    this.tail = ""
    this.pending = 0
    return text
  }

  private scan(text: string): ReadonlyArray<string> {
    const out = this.out
    out.length = 0
    if (text.length === 0) return out
    const tail = this.tail
    const joined = tail.length === 0 ? text : tail + text
    let start = 0
    BOUNDARY.lastIndex = 0
    for (let match = BOUNDARY.exec(joined); match !== null; match = BOUNDARY.exec(joined)) {
      const end = match.index + match[0].length
      // The first event completes what was held (whose last characters are `tail`).
      out.push(start === 0 && this.pending > 0 ? this.take() + joined.slice(tail.length, end) : joined.slice(start, end))
      start = end
    }
    if (start === 0) {
      // No boundary: all of it is held.
      this.held.push(text)
      this.pending += text.length
      this.tail = joined.length <= 3 ? joined : joined.slice(-3)
    } else if (start < joined.length) {
      const rest = joined.slice(start)
      this.held.push(rest)
      this.pending = rest.length
      this.tail = rest.length <= 3 ? rest : rest.slice(-3)
    }
    return out
  }
}

/**
 * Generated text for a token estimate, without keeping an unbounded amount of it: the first
 * `cap` characters are kept, the rest only counted, and the estimate is scaled by `chars / kept`.
 */
export class Completion {
  private parts: Array<string> = []
  /** Characters kept. */
  kept = 0
  /** Characters seen. */
  chars = 0

  constructor(readonly cap: number = COMPLETION_CAP) {}

  add(text: string): void {
    if (text.length === 0) return
    this.chars += text.length
    if (this.kept >= this.cap) return
    const piece = this.kept + text.length <= this.cap ? text : text.slice(0, this.cap - this.kept)
    this.parts.push(piece)
    this.kept += piece.length
  }

  text(): string {
    if (this.parts.length > 1) this.parts = [this.parts.join("")]
    return this.parts[0] ?? ""
  }
}

/** Characters of generated text kept for an estimate (past it, counted and extrapolated). */
export const COMPLETION_CAP = 256 * 1024

/**
 * Payload characters kept unparsed before they are folded into a `Completion`: a normal stream
 * never gets there, and its payloads are parsed once, at its end, only if no usage came.
 */
export const FOLD_PAST = 256 * 1024

/**
 * The generated text of a stream as it passes: payloads kept as they came until read (the budget
 * guard asks for what is new) or past `foldPast` characters, then folded by `textOf` into a
 * bounded `Completion`. One per tap; the taps differ only in how a payload's text is read.
 */
export class Generated {
  /** Payloads not yet folded. */
  pending: Array<string> = []
  private pendingChars = 0
  private readonly completion = new Completion()

  constructor(
    private readonly textOf: (payloads: ReadonlyArray<string>) => string,
    private readonly foldPast: number
  ) {}

  keep(data: string): void {
    this.pending.push(data)
    this.pendingChars += data.length
    if (this.pendingChars > this.foldPast) this.newText()
  }

  /** The text of the payloads not read before, now folded into the completion. */
  newText(): string {
    const text = this.textOf(this.pending)
    this.pending = []
    this.pendingChars = 0
    this.completion.add(text)
    return text
  }

  /** The first `COMPLETION_CAP` characters of the text seen so far (`chars` says how many there were). */
  text(): string {
    this.newText()
    return this.completion.text()
  }

  /** Characters of text seen so far. */
  chars(): number {
    this.newText()
    return this.completion.chars
  }
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

  readonly events = new SseEvents()
  private readonly generated: Generated

  constructor(
    /** Remove the usage-only chunk (`choices: []` with `usage`) from the forwarded bytes. */
    readonly stripUsageChunk: boolean,
    /** Fold payloads into text once they pass this many characters (a cache keeps them all). */
    readonly foldPast: number = Infinity
  ) {
    this.generated = new Generated(completionTextOf, foldPast)
  }

  /**
   * Event `data:` payloads not yet folded into text ([DONE] excluded; a removed usage chunk
   * excluded): all of them, unless the tap was made to fold past a bound.
   */
  get payloads(): ReadonlyArray<string> {
    return this.generated.pending
  }

  /** Feed upstream bytes; returns the bytes to forward to the client (possibly empty). */
  push(chunk: Uint8Array): Uint8Array {
    this.bytes += chunk.byteLength
    const events = this.events.push(chunk)
    if (!this.stripUsageChunk) {
      for (let i = 0; i < events.length; i++) this.inspect(events[i]!)
      return chunk
    }
    let forward = ""
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      if (this.inspect(event)) forward += event
    }
    return forward.length === 0 ? EMPTY : encoder.encode(forward)
  }

  /** The upstream ended: whatever is left (an unterminated last event) goes out as it was. */
  end(): Uint8Array {
    const rest = this.events.rest()
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
      this.keep(data)
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
    this.keep(data)
    return true
  }

  private keep(data: string): void {
    this.generated.keep(data)
  }

  /** The generated text of the payloads not read before (content, refusals, tool-call arguments): for the mid-stream budget guard. */
  newText(): string {
    return this.generated.newText()
  }

  /** The generated text seen so far, for a token estimate when no usage came: its first `COMPLETION_CAP` characters. Only ever counted. */
  completionText(): string {
    return this.generated.text()
  }

  /** Characters of generated text seen so far. */
  completionChars(): number {
    return this.generated.chars()
  }
}

/** The generated text of OpenAI chunk payloads (content, refusals, tool names and arguments). */
const completionTextOf = (payloads: ReadonlyArray<string>): string => {
  if (payloads.length === 0) return ""
  const parts: Array<string> = []
  for (let i = 0; i < payloads.length; i++) {
    try {
      const chunk = JSON.parse(payloads[i]!) as { choices?: Array<{ delta?: Record<string, unknown> }> }
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

/** One SSE event carrying `data`, terminated. */
export const event = (data: string): string => `data: ${data}\n\n`
export const DONE = "data: [DONE]\n\n"
