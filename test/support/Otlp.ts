/**
 * OTLP bodies as a collector reads them: JSON parsed, protobuf decoded by protobufjs from the
 * specification's messages (the fields tollgate sends, from opentelemetry-proto's trace.proto and
 * common.proto), into the OTLP JSON shape (ids in hex, 64-bit numbers as strings).
 */
import protobuf from "protobufjs"

const SCHEMA = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; bytes bytes_value = 7; }
}
`

const ExportTraceServiceRequest = protobuf.parse(SCHEMA).root.lookupType("otlp.ExportTraceServiceRequest")

const ID_FIELDS = new Set(["traceId", "spanId", "parentSpanId"])

/** Bytes fields as hex, as OTLP JSON writes ids. */
const hexIds = (value: unknown, key = ""): unknown => {
  if (value instanceof Uint8Array) return ID_FIELDS.has(key) ? Buffer.from(value).toString("hex") : Buffer.from(value).toString("base64")
  if (Array.isArray(value)) return value.map((v) => hexIds(v))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hexIds(v, k)]))
  }
  return value
}

/** An `ExportTraceServiceRequest` in protobuf, as the JSON form would give it. */
export const decodeTraces = (bytes: Uint8Array): any =>
  hexIds(ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(bytes), { longs: String, defaults: false }))

/** A traces body of either form, by its content type. */
export const readTraces = (contentType: string | undefined, bytes: Uint8Array): any =>
  contentType?.startsWith("application/x-protobuf") ? decodeTraces(bytes) : JSON.parse(Buffer.from(bytes).toString("utf8") || "{}")

/** The spans of a traces body. */
export const spansOf = (body: any): Array<any> =>
  (body.resourceSpans ?? []).flatMap((r: any) => r.scopeSpans ?? []).flatMap((s: any) => s.spans ?? [])

/** A span's attributes as a plain record; numbers as numbers (protobuf's int64 arrives as a string). */
export const attributesOf = (span: { attributes?: Array<{ key: string; value: Record<string, unknown> }> }): Record<string, unknown> =>
  Object.fromEntries((span.attributes ?? []).map((a) => {
    const [kind, value] = Object.entries(a.value)[0]!
    return [a.key, kind === "intValue" ? Number(value) : value]
  }))
