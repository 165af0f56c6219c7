/**
 * An OpenAI-shaped provider on 127.0.0.1 (port 0) that speaks every endpoint tollgate proxies:
 * `/v1/responses` (JSON and SSE, as OpenAI sends them), `/v1/chat/completions` (JSON and SSE),
 * `/v1/embeddings`, `/v1/completions` and `GET /v1/models`. It behaves like a model that uses
 * tools: offered a `get_weather` function and not yet given its result, it calls it (arguments
 * `{"city":"Paris"}`); otherwise it answers `PONG: <the last user text>`. Usage is fixed, so
 * tests can check the ledger. It records what it received; closed with its scope.
 */
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export interface OpenAiPlatform {
  /** Base URL as a provider's `baseUrl` (ends in `/v1`). */
  readonly url: string
  readonly received: Array<Received>
  /** The exact bytes of each answer, in order. */
  readonly sent: Array<Buffer>
}

export const RESPONSES_USAGE = {
  input_tokens: 1000,
  input_tokens_details: { cached_tokens: 100 },
  output_tokens: 200,
  output_tokens_details: { reasoning_tokens: 20 },
  total_tokens: 1200
}
export const CHAT_USAGE = { prompt_tokens: 900, completion_tokens: 90, total_tokens: 990 }
export const EMBEDDING_USAGE = { prompt_tokens: 8, total_tokens: 8 }

type Json = Record<string, any>

const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((p: { text?: unknown }) => (typeof p?.text === "string" ? p.text : "")).join("")
    : ""

/** What the model does for a Responses request: call a tool, or answer. */
const decideResponses = (body: Json): { call?: { name: string; args: string }; text: string } => {
  const input: Array<Json> = typeof body.input === "string" ? [{ role: "user", content: body.input }] : body.input ?? []
  const fn = (body.tools ?? []).find((t: Json) => t.type === "function" && t.name === "get_weather")
  const answered = input.some((i) => i.type === "function_call_output")
  if (fn !== undefined && !answered && body.tool_choice !== "none") return { call: { name: fn.name, args: "{\"city\":\"Paris\"}" }, text: "" }
  const users = input.filter((i) => i.role === "user")
  const last = users[users.length - 1]
  const output = input.find((i) => i.type === "function_call_output")
  return { text: output !== undefined ? `PONG: tool said ${output.output}` : `PONG: ${textOf(last?.content)}` }
}

const decideChat = (body: Json): { call?: { name: string; args: string }; text: string } => {
  const messages: Array<Json> = body.messages ?? []
  const fn = (body.tools ?? []).find((t: Json) => t.type === "function" && t.function?.name === "get_weather")
  const answered = messages.some((m) => m.role === "tool")
  if (fn !== undefined && !answered && body.tool_choice !== "none") return { call: { name: fn.function.name, args: "{\"city\":\"Paris\"}" }, text: "" }
  const tool = messages.find((m) => m.role === "tool")
  const users = messages.filter((m) => m.role === "user")
  return { text: tool !== undefined ? `PONG: tool said ${textOf(tool.content)}` : `PONG: ${textOf(users[users.length - 1]?.content)}` }
}

const sse = (events: Array<Json>, named: boolean): string =>
  events.map((e) => (named ? `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n` : `data: ${JSON.stringify(e)}\n\n`)).join("")

const responsesAnswer = (body: Json, stream: boolean): string => {
  const { call, text } = decideResponses(body)
  const id = "resp_platform1"
  const base = { id, object: "response", created_at: 1_700_000_000, model: `${body.model}-2025`, status: "in_progress", output: [] as Array<Json>, usage: null as Json | null }
  const item: Json = call === undefined
    ? { id: "msg_platform1", type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text, annotations: [] }] }
    : { id: "fc_platform1", type: "function_call", call_id: "call_platform1", name: call.name, arguments: call.args, status: "completed" }
  const done = { ...base, status: "completed", output: [item], usage: RESPONSES_USAGE }
  if (!stream) return JSON.stringify(done)
  let seq = 0
  const ev = (type: string, fields: Json) => ({ type, sequence_number: seq++, ...fields })
  const events: Array<Json> = [ev("response.created", { response: base }), ev("response.in_progress", { response: base })]
  if (call === undefined) {
    events.push(
      ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", content: [] } }),
      ev("response.content_part.added", { output_index: 0, item_id: item.id, content_index: 0, part: { type: "output_text", text: "", annotations: [] } }),
      ev("response.output_text.delta", { output_index: 0, item_id: item.id, content_index: 0, delta: text.slice(0, 4) }),
      ev("response.output_text.delta", { output_index: 0, item_id: item.id, content_index: 0, delta: text.slice(4) }),
      ev("response.output_text.done", { output_index: 0, item_id: item.id, content_index: 0, text }),
      ev("response.content_part.done", { output_index: 0, item_id: item.id, content_index: 0, part: { type: "output_text", text, annotations: [] } })
    )
  } else {
    events.push(
      ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", arguments: "" } }),
      ev("response.function_call_arguments.delta", { output_index: 0, item_id: item.id, delta: call.args }),
      ev("response.function_call_arguments.done", { output_index: 0, item_id: item.id, arguments: call.args })
    )
  }
  events.push(ev("response.output_item.done", { output_index: 0, item }), ev("response.completed", { response: done }))
  return sse(events, true)
}

const chatAnswer = (body: Json, stream: boolean): string => {
  const { call, text } = decideChat(body)
  const id = "chatcmpl-platform1"
  const model = `${body.model}-2025`
  const toolCalls = call === undefined ? undefined : [{ id: "call_platform1", type: "function", function: { name: call.name, arguments: call.args } }]
  const finish = call === undefined ? "stop" : "tool_calls"
  if (!stream) {
    return JSON.stringify({
      id,
      object: "chat.completion",
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: call === undefined ? text : null, ...(toolCalls ? { tool_calls: toolCalls } : {}) }, finish_reason: finish }],
      usage: CHAT_USAGE
    })
  }
  const chunk = (delta: Json, finish_reason: string | null = null) => ({ id, object: "chat.completion.chunk", created: 1_700_000_000, model, choices: [{ index: 0, delta, finish_reason }] })
  const events: Array<Json> = [chunk({ role: "assistant", content: "" })]
  if (call === undefined) events.push(chunk({ content: text.slice(0, 4) }), chunk({ content: text.slice(4) }))
  else {
    events.push(
      chunk({ tool_calls: [{ index: 0, id: "call_platform1", type: "function", function: { name: call.name, arguments: "" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: call.args } }] })
    )
  }
  events.push(chunk({}, finish))
  const usage = body.stream_options?.include_usage === true ? [{ id, object: "chat.completion.chunk", created: 1_700_000_000, model, choices: [], usage: CHAT_USAGE }] : []
  return sse([...events, ...usage], false) + "data: [DONE]\n\n"
}

const embeddingsAnswer = (body: Json): string => {
  const inputs = Array.isArray(body.input) ? body.input : [body.input]
  const vector = [0.25, -0.5, 0.125]
  const data = inputs.map((_: unknown, index: number) => ({
    object: "embedding",
    index,
    embedding: body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector
  }))
  return JSON.stringify({ object: "list", data, model: body.model, usage: EMBEDDING_USAGE })
}

const completionsAnswer = (body: Json, stream: boolean): string => {
  const usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }
  if (!stream) {
    return JSON.stringify({ id: "cmpl-platform1", object: "text_completion", created: 1_700_000_000, model: body.model, choices: [{ index: 0, text: " world", finish_reason: "stop", logprobs: null }], usage })
  }
  const chunk = (text: string, finish: string | null) => ({ id: "cmpl-platform1", object: "text_completion", created: 1_700_000_000, model: body.model, choices: [{ index: 0, text, finish_reason: finish, logprobs: null }] })
  const tail = body.stream_options?.include_usage === true ? [{ id: "cmpl-platform1", object: "text_completion", created: 1_700_000_000, model: body.model, choices: [], usage }] : []
  return sse([chunk(" wor", null), chunk("ld", "stop"), ...tail], false) + "data: [DONE]\n\n"
}

/** The one stored response there is (what `POST /v1/responses` answered, as kept). */
export const STORED_ID = "resp_platform1"
export const INPUT_TOKENS = 42

const notFound = (id: string) => ({
  status: 404,
  type: "application/json",
  body: JSON.stringify({ error: { message: `Response with id '${id}' not found.`, type: "invalid_request_error", param: null, code: null } })
})

/**
 * The endpoints beside `POST /v1/responses`: a stored response read (JSON, or `?stream=true` as
 * its events), deleted, cancelled, its input items listed; `compact` (with usage, as billed);
 * `input_tokens`. Undefined: not one of them.
 */
const storedAnswer = (method: string, url: string, raw: string): { status: number; type: string; body: string } | undefined => {
  const [path, query = ""] = url.split("?") as [string, string?]
  const json = "application/json"
  if (method === "POST" && path === "/v1/responses/compact") {
    const body = JSON.parse(raw) as Json
    return {
      status: 200,
      type: json,
      body: JSON.stringify({
        id: "cmp_platform1",
        object: "response.compaction",
        created_at: 1_700_000_000,
        output: [{ id: "cmp_item1", type: "compaction", encrypted_content: `compacted for ${body.model}` }],
        usage: RESPONSES_USAGE
      })
    }
  }
  if (method === "POST" && path === "/v1/responses/input_tokens") {
    return { status: 200, type: json, body: JSON.stringify({ object: "response.input_tokens", input_tokens: INPUT_TOKENS }) }
  }
  const match = /^\/v1\/responses\/([^/]+)(\/cancel|\/input_items)?$/.exec(path)
  if (match === null || match[1] === "compact" || match[1] === "input_tokens") return undefined
  const id = decodeURIComponent(match[1]!)
  if (id !== STORED_ID) return notFound(id)
  const kept = JSON.parse(responsesAnswer({ model: "pass-model", input: "hello" }, false)) as Json
  if (method === "GET" && match[2] === undefined) {
    return query.split("&").includes("stream=true")
      ? { status: 200, type: "text/event-stream; charset=utf-8", body: responsesAnswer({ model: "pass-model", input: "hello" }, true) }
      : { status: 200, type: json, body: JSON.stringify(kept) }
  }
  if (method === "DELETE" && match[2] === undefined) return { status: 200, type: json, body: JSON.stringify({ id, object: "response", deleted: true }) }
  if (method === "POST" && match[2] === "/cancel") return { status: 200, type: json, body: JSON.stringify({ ...kept, status: "cancelled" }) }
  if (method === "GET" && match[2] === "/input_items") {
    const item = { id: "msg_input1", type: "message", role: "user", status: "completed", content: [{ type: "input_text", text: "hello" }] }
    return { status: 200, type: json, body: JSON.stringify({ object: "list", data: [item], first_id: item.id, last_id: item.id, has_more: false }) }
  }
  return undefined
}

export const make = Effect.acquireRelease(
  Effect.async<{ server: http.Server; platform: OpenAiPlatform }>((resume) => {
    const received: Array<Received> = []
    const sent: Array<Buffer> = []
    const server = http.createServer((req, res) => {
      let raw = ""
      req.on("data", (c: Buffer) => (raw += c.toString("utf8")))
      req.on("end", () => {
        const url = req.url ?? ""
        received.push({ method: req.method ?? "", url, headers: req.headers, body: raw })
        const reply = (status: number, type: string, body: string) => {
          const bytes = Buffer.from(body, "utf8")
          sent.push(bytes)
          res.writeHead(status, { "content-type": type, "x-request-id": `platform-${received.length}` })
          // Streams go out in two writes, so parsers meet a chunk boundary.
          if (type.startsWith("text/event-stream") && bytes.length > 10) {
            res.write(bytes.subarray(0, Math.floor(bytes.length / 2)))
            setImmediate(() => res.end(bytes.subarray(Math.floor(bytes.length / 2))))
          } else res.end(bytes)
        }
        if (req.method === "GET" && url.endsWith("/models")) {
          return reply(200, "application/json", JSON.stringify({ object: "list", data: [{ id: "platform-model", object: "model", created: 1_700_000_000, owned_by: "platform" }] }))
        }
        const stored = storedAnswer(req.method ?? "", url, raw)
        if (stored !== undefined) return reply(stored.status, stored.type, stored.body)
        let body: Json
        try {
          body = JSON.parse(raw)
        } catch {
          return reply(400, "application/json", JSON.stringify({ error: { message: "invalid JSON", type: "invalid_request_error" } }))
        }
        const stream = body.stream === true
        const type = stream ? "text/event-stream; charset=utf-8" : "application/json"
        if (url === "/v1/responses") return reply(200, type, responsesAnswer(body, stream))
        if (url === "/v1/chat/completions") return reply(200, type, chatAnswer(body, stream))
        if (url === "/v1/embeddings") return reply(200, "application/json", embeddingsAnswer(body))
        if (url === "/v1/completions") return reply(200, type, completionsAnswer(body, stream))
        return reply(404, "application/json", JSON.stringify({ error: { message: `no ${url} here`, type: "invalid_request_error" } }))
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ server, platform: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, received, sent } }))
    )
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ platform }) => platform))
