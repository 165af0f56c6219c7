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

type Value = string | number | boolean | null | undefined

/** The GenAI operation of an endpoint (`gen_ai.operation.name`). */
const operationOf = (endpoint: string): string =>
  endpoint.endsWith("/embeddings") ? "embeddings" : endpoint.endsWith("/completions") && !endpoint.endsWith("/chat/completions") ? "text_completion" : "chat"

/** Each span's attributes: a null or absent value is left out. */
const ATTRIBUTES: ReadonlyArray<readonly [key: string, get: (row: LedgerEvent) => Value]> = [
  ["gen_ai.operation.name", (row) => operationOf(row.endpoint)],
  ["gen_ai.provider.name", (row) => row.provider],
  ["gen_ai.request.model", (row) => row.requestedModel],
  ["gen_ai.response.model", (row) => row.servedModel],
  ["gen_ai.usage.input_tokens", (row) => row.inputTokens],
  ["gen_ai.usage.output_tokens", (row) => row.outputTokens],
  ["gen_ai.usage.cache_read.input_tokens", (row) => row.cachedInputTokens],
  ["gen_ai.usage.cache_creation.input_tokens", (row) => row.cacheWriteTokens],
  ["gen_ai.usage.reasoning.output_tokens", (row) => row.reasoningTokens],
  ["gen_ai.response.time_to_first_chunk", (row) => (row.ttfbMs === null ? null : row.ttfbMs / 1000)],
  ["http.response.status_code", (row) => row.status],
  ["error.type", (row) => row.errorType],
  ["tollgate.request_id", (row) => row.requestId],
  ["tollgate.endpoint", (row) => row.endpoint],
  ["tollgate.route", (row) => row.route],
  ["tollgate.attempts", (row) => row.attempts],
  ["tollgate.failover", (row) => row.failover],
  ["tollgate.cost_usd", (row) => row.costUsd],
  ["tollgate.cache", (row) => row.cacheStatus],
  ["tollgate.stream", (row) => row.stream],
  ["tollgate.aborted", (row) => row.aborted],
  ["tollgate.usage_source", (row) => row.usageSource]
]

const nameOf = (row: LedgerEvent): string => `${operationOf(row.endpoint)} ${row.requestedModel ?? row.servedModel ?? "unknown"}`

/** Start and end in whole microseconds since the epoch (exact as doubles until the year 2255). */
const startMicros = (row: LedgerEvent): number => Math.round(row.ts) * 1000
const endMicros = (row: LedgerEvent): number => startMicros(row) + Math.max(0, Math.round(row.latencyMs * 1000))

const failed = (row: LedgerEvent): boolean => row.status >= 400

/** A span's status: Error with the error type for a status of 400 or more, else Unset (as instrumentation leaves it). */
const STATUS_ERROR = 2

/**
 * One export request (`ExportTraceServiceRequest`) built a few rows at a time: `add` writes rows
 * as spans at once, `ids` giving each row `ID_BYTES` random bytes (trace id, span id) in order, so
 * the exporter holds bytes rather than rows until the batch is full; `finish` closes the request
 * and gives its bytes, valid until the next `add`, as the batch's one buffer is kept for the next
 * (a fresh one per export counted towards V8's next full collection).
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

const JSON_KEYS = ATTRIBUTES.map(([key]) => `{"key":${JSON.stringify(key)},"value":{`)

const jsonValue = (value: string | number | boolean): string =>
  typeof value === "string"
    ? `"stringValue":${JSON.stringify(value)}}}`
    : typeof value === "boolean"
    ? `"boolValue":${value}}}`
    : Number.isSafeInteger(value) && value >= 0
    ? `"intValue":${value}}}`
    : Number.isFinite(value)
    ? `"doubleValue":${value}}}`
    : `"stringValue":"${value}"}}`

const jsonSpan = (row: LedgerEvent, ids: Uint8Array, at: number): string => {
  let attributes = ""
  for (let i = 0; i < ATTRIBUTES.length; i++) {
    const value = ATTRIBUTES[i]![1](row)
    if (value === null || value === undefined) continue
    attributes += (attributes === "" ? "" : ",") + JSON_KEYS[i] + jsonValue(value)
  }
  const status = failed(row) ? `{"code":${STATUS_ERROR},"message":${JSON.stringify(row.errorType ?? `status ${row.status}`)}}` : "{}"
  return `{"traceId":"${hex(ids, at, 16)}","spanId":"${hex(ids, at + 16, 8)}","name":${JSON.stringify(nameOf(row))},"kind":3,` +
    `"startTimeUnixNano":"${startMicros(row)}000","endTimeUnixNano":"${endMicros(row)}000","attributes":[${attributes}],"status":${status}}`
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
class Writer {
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

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length)
    // A loop over locals: the keys and ids written here are a few dozen bytes, where `set` costs more than it copies.
    const out = this.bytes
    let pos = this.pos
    for (let i = 0; i < bytes.length; i++) out[pos++] = bytes[i]!
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

  /** A `KeyValue` as field `field`, its key already encoded as field 1. */
  keyValue(field: number, key: Uint8Array, value: string | number | boolean): void {
    const start = this.open(field)
    this.raw(key)
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

/** `KeyValue.key`, encoded once per key. */
const keyField = (key: string): Uint8Array => {
  const w = new Writer(2 + 3 * key.length + 8)
  w.string(1, key)
  return w.done()
}

const PROTO_KEYS = ATTRIBUTES.map(([key]) => keyField(key))

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
      w.raw(ids.subarray(at, at + 16))
      w.byte(tag(2, LEN)) // Span.span_id
      w.byte(8)
      w.raw(ids.subarray(at + 16, at + 24))
      w.string(5, nameOf(row)) // Span.name
      w.byte(tag(6, VARINT)) // Span.kind: SPAN_KIND_CLIENT
      w.byte(3)
      w.nanosFromMicros(7, startMicros(row)) // Span.start_time_unix_nano
      w.nanosFromMicros(8, endMicros(row)) // Span.end_time_unix_nano
      for (let a = 0; a < ATTRIBUTES.length; a++) {
        const value = ATTRIBUTES[a]![1](row)
        if (value !== null && value !== undefined) w.keyValue(9, PROTO_KEYS[a]!, value) // Span.attributes
      }
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
