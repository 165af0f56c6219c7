/**
 * Ledger rows as OTLP spans: one export request's body, encoded straight from the rows in OTLP's
 * protobuf (`http/protobuf`, the specification's default) or JSON (`http/json`) form. Each row is
 * one span following the GenAI semantic conventions (`{operation} {model}`, `gen_ai.*`, tollgate's
 * own as `tollgate.*`) with the request's own start and end. A span holds what the row holds: never
 * a prompt, a completion or a key.
 *
 * Why not `@effect/opentelemetry`'s tracer: it builds a span object, an attribute map, an OTLP
 * object tree and then serialises the tree, for every request; that was most of what OTLP cost a
 * saturated tollgate (docs/performance.md, "OTLP spans from ledger rows"). Here the rows, which
 * exist anyway, are written once into the body, in a batch, off the request's fiber.
 */
import type { LedgerEvent } from "../Domain/LedgerEvent.js"

export type Protocol = "http/protobuf" | "http/json"

/** An OTLP attribute in its JSON form (`@effect/opentelemetry`'s `OtlpResource` makes the resource's). */
export interface KeyValue {
  readonly key: string
  readonly value: {
    readonly stringValue?: string | null | undefined
    readonly boolValue?: boolean | null | undefined
    readonly intValue?: number | null | undefined
    readonly doubleValue?: number | null | undefined
  }
}

/** Random bytes per span: a 16-byte trace id then an 8-byte span id. */
export const ID_BYTES = 24

/** The GenAI operation of an endpoint (`gen_ai.operation.name`). */
const operationOf = (endpoint: string): string =>
  endpoint.endsWith("/embeddings") ? "embeddings" : endpoint.endsWith("/completions") && !endpoint.endsWith("/chat/completions") ? "text_completion" : "chat"

/** An attribute's key, encoded once for each encoding. */
interface AttributeKey {
  /** `KeyValue.key` as protobuf's field 1. */
  readonly proto: Uint8Array
  /** The JSON object up to the value's own field. */
  readonly json: string
}

/**
 * Where a span's attributes go, one method per OTLP value type: a key always has the same type
 * (a cost of 0 is a double as a cost of 0.5 is, as backends index a key by its type). A null is
 * left out.
 */
interface Attributes {
  stringAttribute(key: AttributeKey, value: string | null): void
  intAttribute(key: AttributeKey, value: number | null): void
  doubleAttribute(key: AttributeKey, value: number | null): void
  boolAttribute(key: AttributeKey, value: boolean): void
}

/**
 * Each span's attributes, for both encodings: straight calls rather than a table of getters, so
 * that each property read and each call is the same every time (V8 inlines them; the table's one
 * call site saw two dozen functions).
 */
const writeAttributes = (row: LedgerEvent, out: Attributes): void => {
  out.stringAttribute(KEYS.operation, operationOf(row.endpoint))
  out.stringAttribute(KEYS.provider, row.provider)
  out.stringAttribute(KEYS.requestModel, row.requestedModel)
  out.stringAttribute(KEYS.responseModel, row.servedModel)
  out.intAttribute(KEYS.inputTokens, row.inputTokens)
  out.intAttribute(KEYS.outputTokens, row.outputTokens)
  out.intAttribute(KEYS.cacheReadTokens, row.cachedInputTokens)
  out.intAttribute(KEYS.cacheCreationTokens, row.cacheWriteTokens)
  out.intAttribute(KEYS.reasoningTokens, row.reasoningTokens)
  out.doubleAttribute(KEYS.timeToFirstChunk, row.ttfbMs === null ? null : row.ttfbMs / 1000)
  out.intAttribute(KEYS.status, row.status)
  out.stringAttribute(KEYS.errorType, row.errorType)
  out.stringAttribute(KEYS.requestId, row.requestId)
  out.stringAttribute(KEYS.endpoint, row.endpoint)
  out.stringAttribute(KEYS.route, row.route)
  out.intAttribute(KEYS.attempts, row.attempts)
  out.boolAttribute(KEYS.failover, row.failover)
  out.doubleAttribute(KEYS.costUsd, row.costUsd)
  out.stringAttribute(KEYS.cache, row.cacheStatus)
  out.boolAttribute(KEYS.stream, row.stream)
  out.boolAttribute(KEYS.aborted, row.aborted)
  out.stringAttribute(KEYS.usageSource, row.usageSource)
}

/** A whole number an int attribute can hold (counts and statuses: never below 0), or none. */
const wholeOf = (value: number | null): number | null => (value === null || !Number.isFinite(value) ? null : Math.max(0, Math.round(value)))

const nameOf = (row: LedgerEvent): string => `${operationOf(row.endpoint)} ${row.requestedModel ?? row.servedModel ?? "unknown"}`

/** Start and end in whole microseconds since the epoch (exact as doubles until the year 2255). */
const startMicros = (row: LedgerEvent): number => Math.round(row.ts) * 1000
const endMicros = (row: LedgerEvent): number => startMicros(row) + Math.max(0, Math.round(row.latencyMs * 1000))

const failed = (row: LedgerEvent): boolean => row.status >= 400

/** A span's status: Error with the error type for a status of 400 or more, else Unset (as instrumentation leaves it). */
const STATUS_ERROR = 2

/**
 * One export request (`ExportTraceServiceRequest`), built from one or more `add`s: `add` writes
 * rows as spans at once, `ids` giving each row `ID_BYTES` random bytes (trace id, span id) in
 * order; `finish` closes the request and gives its bytes, valid until the next `add`, as the
 * batch's one buffer is kept for the next (a fresh one per export counted towards V8's next full
 * collection).
 */
export interface SpanBatch {
  readonly add: (rows: ReadonlyArray<LedgerEvent>, ids: Uint8Array) => void
  /** Spans added since the last `finish`. */
  readonly size: () => number
  readonly finish: () => Uint8Array
}

export const batch = (protocol: Protocol, resource: ReadonlyArray<KeyValue>, scope: string): SpanBatch => {
  const w = new Writer(64 * 1024)
  const format = protocol === "http/json" ? json : protobuf
  let size = 0
  let open: ReadonlyArray<number> = []
  return {
    add: (rows, ids) => {
      if (rows.length === 0) return
      if (size === 0) {
        w.pos = 0
        open = format.begin(w, resource, scope)
      }
      format.spans(w, rows, ids, size)
      size += rows.length
    },
    size: () => size,
    finish: () => {
      if (size === 0) {
        w.pos = 0
        open = format.begin(w, resource, scope)
      }
      format.end(w, open)
      size = 0
      return w.done()
    }
  }
}

/** One export request holding `rows`, in a buffer of its own. */
export const encode = (
  protocol: Protocol,
  resource: ReadonlyArray<KeyValue>,
  scope: string,
  rows: ReadonlyArray<LedgerEvent>,
  ids: Uint8Array
): Uint8Array => {
  const one = batch(protocol, resource, scope)
  one.add(rows, ids)
  return one.finish()
}

/** How a body is begun (giving what `end` needs to close), filled and ended, in one encoding. */
interface Format {
  readonly begin: (w: Writer, resource: ReadonlyArray<KeyValue>, scope: string) => ReadonlyArray<number>
  /** `before`: spans already in the body. */
  readonly spans: (w: Writer, rows: ReadonlyArray<LedgerEvent>, ids: Uint8Array, before: number) => void
  readonly end: (w: Writer, open: ReadonlyArray<number>) => void
}

// JSON (OTLP/HTTP JSON: ids in hex, 64-bit times as decimal strings)

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

const hex = (bytes: Uint8Array, from: number, length: number): string => {
  let out = ""
  for (let i = from; i < from + length; i++) out += HEX[bytes[i]!]
  return out
}

/** A span's attributes as JSON `KeyValue`s, comma-separated. */
class JsonAttributes implements Attributes {
  text = ""

  private add(key: AttributeKey, value: string): void {
    this.text += (this.text === "" ? "" : ",") + key.json + value + "}}"
  }

  stringAttribute(key: AttributeKey, value: string | null): void {
    if (value !== null) this.add(key, `"stringValue":${JSON.stringify(value)}`)
  }

  intAttribute(key: AttributeKey, value: number | null): void {
    const whole = wholeOf(value)
    if (whole !== null) this.add(key, `"intValue":${whole}`)
  }

  doubleAttribute(key: AttributeKey, value: number | null): void {
    if (value !== null && Number.isFinite(value)) this.add(key, `"doubleValue":${value}`)
  }

  boolAttribute(key: AttributeKey, value: boolean): void {
    this.add(key, `"boolValue":${value}`)
  }
}

const jsonSpan = (row: LedgerEvent, ids: Uint8Array, at: number): string => {
  const attributes = new JsonAttributes()
  writeAttributes(row, attributes)
  const status = failed(row) ? `{"code":${STATUS_ERROR},"message":${JSON.stringify(row.errorType ?? `status ${row.status}`)}}` : "{}"
  return `{"traceId":"${hex(ids, at, 16)}","spanId":"${hex(ids, at + 16, 8)}","name":${JSON.stringify(nameOf(row))},"kind":3,` +
    `"startTimeUnixNano":"${startMicros(row)}000","endTimeUnixNano":"${endMicros(row)}000","attributes":[${attributes.text}],"status":${status}}`
}

const json: Format = {
  begin: (w, resource, scope) => {
    w.text(`{"resourceSpans":[{"resource":{"attributes":${JSON.stringify(resource)}},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope)}},"spans":[`)
    return []
  },
  spans: (w, rows, ids, before) => {
    for (let i = 0; i < rows.length; i++) w.text((before + i === 0 ? "" : ",") + jsonSpan(rows[i]!, ids, i * ID_BYTES))
  },
  end: (w) => w.text("]}]}]}")
}

// Protobuf (opentelemetry-proto: trace/v1/trace.proto, common/v1/common.proto)

const LEN = 2
const VARINT = 0
const I64 = 1
const tag = (field: number, wire: number) => (field << 3) | wire

/** A growable buffer with protobuf's primitives; a length-delimited field is opened, written, then closed. */
class Writer implements Attributes {
  bytes: Uint8Array
  view: DataView
  pos = 0
  private readonly utf8 = new TextEncoder()

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity)
    this.view = new DataView(this.bytes.buffer)
  }

  ensure(more: number): void {
    if (this.pos + more <= this.bytes.length) return
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + more))
    next.set(this.bytes.subarray(0, this.pos))
    this.bytes = next
    this.view = new DataView(next.buffer)
  }

  byte(b: number): void {
    this.ensure(1)
    this.bytes[this.pos++] = b
  }

  varint(n: number): void {
    this.ensure(10)
    while (n >= 0x80) {
      this.bytes[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.bytes[this.pos++] = n
  }

  /** `length` bytes of `source` from `from`. */
  copy(source: Uint8Array, from: number, length: number): void {
    this.ensure(length)
    // A loop over locals: the keys and ids written here are a few dozen bytes, where `set` costs more than it copies.
    const out = this.bytes
    let pos = this.pos
    for (let i = from; i < from + length; i++) out[pos++] = source[i]!
    this.pos = pos
  }

  /** Opens a length-delimited field: its tag and one byte kept for the length (moved along if it needs more). */
  open(field: number): number {
    this.byte(tag(field, LEN))
    this.byte(0)
    return this.pos
  }

  close(start: number): void {
    const length = this.pos - start
    let size = 1
    while (length >= 0x80 ** size) size++
    if (size > 1) {
      this.ensure(size - 1)
      this.bytes.copyWithin(start + size - 1, start, this.pos)
      this.pos += size - 1
    }
    const end = this.pos
    this.pos = start - 1
    this.varint(length)
    this.pos = end
  }

  string(field: number, value: string): void {
    this.ensure(2 + 3 * value.length)
    const start = this.open(field)
    // ASCII byte by byte (model names, ids, routes); anything else through the encoder.
    const out = this.bytes
    let pos = this.pos
    let i = 0
    for (; i < value.length; i++) {
      const code = value.charCodeAt(i)
      if (code >= 0x80) break
      out[pos++] = code
    }
    this.pos = pos
    if (i < value.length) this.pos += this.utf8.encodeInto(value.slice(i), this.bytes.subarray(this.pos)).written
    this.close(start)
  }

  double(field: number, value: number): void {
    this.byte(tag(field, I64))
    this.ensure(8)
    this.view.setFloat64(this.pos, value, true)
    this.pos += 8
  }

  /** A fixed64 of nanoseconds, from whole microseconds (the product passes 2^53, so in two halves). */
  nanosFromMicros(field: number, micros: number): void {
    this.byte(tag(field, I64))
    this.ensure(8)
    const high = Math.floor(micros / 0x1_0000_0000)
    const low = (micros - high * 0x1_0000_0000) * 1000
    const carry = Math.floor(low / 0x1_0000_0000)
    this.view.setUint32(this.pos, low - carry * 0x1_0000_0000, true)
    this.view.setUint32(this.pos + 4, high * 1000 + carry, true)
    this.pos += 8
  }

  /** `AnyValue` (common.proto): string 1, bool 2, int64 3, double 4. */
  anyValue(field: number, value: string | number | boolean): void {
    const start = this.open(field)
    if (typeof value === "string") this.string(1, value)
    else if (typeof value === "boolean") {
      this.byte(tag(2, VARINT))
      this.byte(value ? 1 : 0)
    } else if (Number.isSafeInteger(value) && value >= 0) {
      this.byte(tag(3, VARINT))
      this.varint(value)
    } else this.double(4, value)
    this.close(start)
  }

  // A span's attributes (`Span.attributes`, `KeyValue`s): each one's lengths worked out before
  // its bytes are written, nothing moved back as `close` moves it. A string that is not ASCII, or
  // that would take a length above one byte, goes the general way (`keyValue`).

  stringAttribute(key: AttributeKey, value: string | null): void {
    if (value === null) return
    if (key.proto.length + 4 + value.length >= 0x80 || !ascii(value)) return this.keyValue(ATTRIBUTE_FIELD, key.proto, value)
    const out = this.head(key, 2 + value.length)
    let pos = this.pos
    out[pos++] = tag(1, LEN) // AnyValue.string_value
    out[pos++] = value.length
    for (let i = 0; i < value.length; i++) out[pos++] = value.charCodeAt(i)
    this.pos = pos
  }

  intAttribute(key: AttributeKey, value: number | null): void {
    const whole = wholeOf(value)
    if (whole === null) return
    this.head(key, 1 + varintSize(whole))
    this.bytes[this.pos++] = tag(3, VARINT) // AnyValue.int_value
    this.varint(whole)
  }

  doubleAttribute(key: AttributeKey, value: number | null): void {
    if (value === null || !Number.isFinite(value)) return
    this.head(key, 9)
    this.double(4, value) // AnyValue.double_value
  }

  boolAttribute(key: AttributeKey, value: boolean): void {
    const out = this.head(key, 2)
    out[this.pos++] = tag(2, VARINT) // AnyValue.bool_value
    out[this.pos++] = value ? 1 : 0
  }

  /** An attribute up to its `AnyValue`'s content, `any` bytes long: the buffer to write that into, at `pos`. */
  private head(key: AttributeKey, any: number): Uint8Array {
    const length = key.proto.length + 2 + any // below 0x80, and so each length inside: one byte each
    this.ensure(2 + length)
    const out = this.bytes
    let pos = this.pos
    out[pos++] = tag(ATTRIBUTE_FIELD, LEN)
    out[pos++] = length
    this.pos = pos
    this.copy(key.proto, 0, key.proto.length)
    out[this.pos++] = tag(2, LEN) // KeyValue.value
    out[this.pos++] = any
    return out
  }

  /** A `KeyValue` as field `field`, its key already encoded as field 1. */
  keyValue(field: number, key: Uint8Array, value: string | number | boolean): void {
    const start = this.open(field)
    this.copy(key, 0, key.length)
    this.anyValue(2, value)
    this.close(start)
  }

  /** `value` as UTF-8, no tag or length (the JSON body). */
  text(value: string): void {
    this.ensure(3 * value.length)
    this.pos += this.utf8.encodeInto(value, this.bytes.subarray(this.pos)).written
  }

  done(): Uint8Array {
    return this.bytes.subarray(0, this.pos)
  }
}

/** `Span.attributes`. */
const ATTRIBUTE_FIELD = 9

/** The bytes of `n` as a varint. */
const varintSize = (n: number): number => {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}

const ascii = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) >= 0x80) return false
  return true
}

/** `KeyValue.key`, encoded once per key. */
const keyField = (key: string): Uint8Array => {
  const w = new Writer(2 + 3 * key.length + 8)
  w.string(1, key)
  return w.done()
}

const attributeKey = (name: string): AttributeKey => {
  const proto = keyField(name)
  // An attribute's lengths are one byte each (`head`): a key this short leaves room for any number.
  if (proto.length > 0x40) throw new Error(`OTLP attribute key too long: ${name}`)
  return { proto, json: `{"key":${JSON.stringify(name)},"value":{` }
}

/** The spans' attribute keys: the GenAI semantic conventions', then tollgate's own. */
const KEYS = {
  operation: attributeKey("gen_ai.operation.name"),
  provider: attributeKey("gen_ai.provider.name"),
  requestModel: attributeKey("gen_ai.request.model"),
  responseModel: attributeKey("gen_ai.response.model"),
  inputTokens: attributeKey("gen_ai.usage.input_tokens"),
  outputTokens: attributeKey("gen_ai.usage.output_tokens"),
  cacheReadTokens: attributeKey("gen_ai.usage.cache_read.input_tokens"),
  cacheCreationTokens: attributeKey("gen_ai.usage.cache_creation.input_tokens"),
  reasoningTokens: attributeKey("gen_ai.usage.reasoning.output_tokens"),
  timeToFirstChunk: attributeKey("gen_ai.response.time_to_first_chunk"),
  status: attributeKey("http.response.status_code"),
  errorType: attributeKey("error.type"),
  requestId: attributeKey("tollgate.request_id"),
  endpoint: attributeKey("tollgate.endpoint"),
  route: attributeKey("tollgate.route"),
  attempts: attributeKey("tollgate.attempts"),
  failover: attributeKey("tollgate.failover"),
  costUsd: attributeKey("tollgate.cost_usd"),
  cache: attributeKey("tollgate.cache"),
  stream: attributeKey("tollgate.stream"),
  aborted: attributeKey("tollgate.aborted"),
  usageSource: attributeKey("tollgate.usage_source")
}

const resourceValue = (value: KeyValue["value"]): string | number | boolean =>
  value.stringValue ?? value.boolValue ?? value.intValue ?? value.doubleValue ?? JSON.stringify(value)

const protobuf: Format = {
  begin: (w, resource, scope) => {
    const resourceSpans = w.open(1) // ExportTraceServiceRequest.resource_spans
    const res = w.open(1) // ResourceSpans.resource
    for (const kv of resource) w.keyValue(1, keyField(kv.key), resourceValue(kv.value)) // Resource.attributes
    w.close(res)
    const scopeSpans = w.open(2) // ResourceSpans.scope_spans
    const scopeField = w.open(1) // ScopeSpans.scope
    w.string(1, scope) // InstrumentationScope.name
    w.close(scopeField)
    return [resourceSpans, scopeSpans]
  },
  spans: (w, rows, ids) => {
    w.ensure(rows.length * 768)
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!
      const at = i * ID_BYTES
      const span = w.open(2) // ScopeSpans.spans
      w.byte(tag(1, LEN)) // Span.trace_id
      w.byte(16)
      w.copy(ids, at, 16)
      w.byte(tag(2, LEN)) // Span.span_id
      w.byte(8)
      w.copy(ids, at + 16, 8)
      w.string(5, nameOf(row)) // Span.name
      w.byte(tag(6, VARINT)) // Span.kind: SPAN_KIND_CLIENT
      w.byte(3)
      w.nanosFromMicros(7, startMicros(row)) // Span.start_time_unix_nano
      w.nanosFromMicros(8, endMicros(row)) // Span.end_time_unix_nano
      writeAttributes(row, w)
      if (failed(row)) {
        const status = w.open(15) // Span.status
        w.string(2, row.errorType ?? `status ${row.status}`) // Status.message
        w.byte(tag(3, VARINT)) // Status.code
        w.byte(STATUS_ERROR)
        w.close(status)
      }
      w.close(span)
    }
  },
  // The inner one first: closing moves what follows its start when its length needs more bytes.
  end: (w, [resourceSpans, scopeSpans]) => {
    w.close(scopeSpans!)
    w.close(resourceSpans!)
  }
}
