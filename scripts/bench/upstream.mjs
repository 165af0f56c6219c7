#!/usr/bin/env node
// Mock OpenAI-compatible upstream for the benchmark (node:http only, 127.0.0.1).
//
//   node scripts/bench/upstream.mjs [--port 0] [--chunks 50]
//
// POST /v1/chat/completions
//   - non-streaming: a ~1 KB chat.completion JSON with `usage`.
//   - `stream: true`: SSE with `--chunks` content chunks (role on the first, finish_reason on the
//     last), then a usage-only chunk (`choices: []`) when `stream_options.include_usage` is true,
//     then `data: [DONE]`.
// Per-request knobs (request headers, forwarded unchanged by proxies):
//   x-bench-chunk-delay-ms  pause between content chunks (a paced stream); default 0
//   x-bench-chunks          number of content chunks; default --chunks
// POST /v1/responses
//   - non-streaming: a Responses object (`object: "response"`) with the same answer and `usage`.
//   - `stream: true`: the Responses event sequence (created, in_progress, item and part added,
//     `--chunks` output_text deltas, the done events, completed with usage), no [DONE].
// GET /healthz answers 200; GET /stats answers {"requests": n} (chat requests received so far), so
// the harness can tell how many client requests really reached the upstream.
//
// Prints `upstream listening on http://127.0.0.1:PORT` once it accepts connections; SIGINT/SIGTERM
// close it.
import * as http from "node:http"
import { parseArgs } from "node:util"
import { ANSWER } from "./fixtures.mjs"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    chunks: { type: "string", default: "50" }
  }
})
const DEFAULT_CHUNKS = Number(values.chunks)

const CREATED = 1_735_689_600
const WORDS = ANSWER.split(" ")

let counter = 0
let received = 0
const nextId = () => `chatcmpl-bench${(++counter).toString(36).padStart(10, "0")}`

const usageOf = (completionTokens) => ({
  prompt_tokens: 42,
  completion_tokens: completionTokens,
  total_tokens: 42 + completionTokens,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 }
})

const completion = (model) =>
  JSON.stringify({
    id: nextId(),
    object: "chat.completion",
    created: CREATED,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: ANSWER, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop"
      }
    ],
    usage: usageOf(97),
    service_tier: "default",
    system_fingerprint: "fp_bench0001"
  })

/** The content of chunk i of n: the answer's words spread over n chunks. */
const pieceOf = (i, n) => {
  const from = Math.floor((i * WORDS.length) / n)
  const to = Math.floor(((i + 1) * WORDS.length) / n)
  const words = WORDS.slice(from, to).join(" ")
  return i === 0 ? words : words.length === 0 ? "" : ` ${words}`
}

const chunkEvent = (id, model, i, n) => {
  const delta = i === 0 ? { role: "assistant", content: pieceOf(i, n), refusal: null } : { content: pieceOf(i, n) }
  return `data: ${JSON.stringify({
    id,
    object: "chat.completion.chunk",
    created: CREATED,
    model,
    system_fingerprint: "fp_bench0001",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: i === n - 1 ? "stop" : null }]
  })}\n\n`
}

const usageEvent = (id, model, n) =>
  `data: ${JSON.stringify({
    id,
    object: "chat.completion.chunk",
    created: CREATED,
    model,
    system_fingerprint: "fp_bench0001",
    choices: [],
    usage: usageOf(n)
  })}\n\n`

const DONE = "data: [DONE]\n\n"

const sendJson = (res, status, body) => {
  const bytes = Buffer.from(typeof body === "string" ? body : JSON.stringify(body))
  res.writeHead(status, { "content-type": "application/json", "content-length": bytes.length, "x-request-id": "req_bench" })
  res.end(bytes)
}

const stream = (req, res, body) => {
  const model = typeof body.model === "string" ? body.model : "gpt-4o-mini"
  const n = Math.max(1, Number(req.headers["x-bench-chunks"] ?? DEFAULT_CHUNKS) || DEFAULT_CHUNKS)
  const delay = Math.max(0, Number(req.headers["x-bench-chunk-delay-ms"] ?? 0) || 0)
  const includeUsage = body.stream_options?.include_usage === true
  const id = nextId()
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": "req_bench" })
  let i = 0
  let timer
  let closed = false
  res.on("close", () => {
    closed = true
    if (timer !== undefined) clearTimeout(timer)
  })
  const finish = () => {
    if (includeUsage) res.write(usageEvent(id, model, n))
    res.end(DONE)
  }
  if (delay === 0) {
    let out = ""
    for (; i < n; i++) out += chunkEvent(id, model, i, n)
    res.write(out)
    finish()
    return
  }
  const step = () => {
    timer = undefined
    if (closed) return
    res.write(chunkEvent(id, model, i, n))
    i++
    if (i === n) finish()
    else timer = setTimeout(step, delay)
  }
  step() // the first chunk goes out at once; the pace applies between chunks
}

const responsesUsage = (output) => ({
  input_tokens: 42,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: output,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 42 + output
})

const responseObject = (id, model, status, output, usage) => ({
  id,
  object: "response",
  created_at: CREATED,
  status,
  model,
  output,
  usage,
  parallel_tool_calls: true,
  tool_choice: "auto",
  tools: [],
  store: false
})

const messageItem = (id, text, status) => ({
  id,
  type: "message",
  role: "assistant",
  status,
  content: status === "in_progress" ? [] : [{ type: "output_text", text, annotations: [] }]
})

/** A Responses answer: the whole object, or its event stream (paced like the chat stream). */
const responses = (req, res, body) => {
  const model = typeof body.model === "string" ? body.model : "gpt-4o-mini"
  const id = `resp_bench${(++counter).toString(36).padStart(10, "0")}`
  const item = `msg_bench${counter.toString(36).padStart(10, "0")}`
  if (body.stream !== true) return sendJson(res, 200, responseObject(id, model, "completed", [messageItem(item, ANSWER, "completed")], responsesUsage(97)))
  const n = Math.max(1, Number(req.headers["x-bench-chunks"] ?? DEFAULT_CHUNKS) || DEFAULT_CHUNKS)
  const delay = Math.max(0, Number(req.headers["x-bench-chunk-delay-ms"] ?? 0) || 0)
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": "req_bench" })
  let seq = 0
  const event = (type, fields) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`
  const where = { output_index: 0, item_id: item, content_index: 0 }
  const head = event("response.created", { response: responseObject(id, model, "in_progress", [], null) }) +
    event("response.in_progress", { response: responseObject(id, model, "in_progress", [], null) }) +
    event("response.output_item.added", { output_index: 0, item: messageItem(item, "", "in_progress") }) +
    event("response.content_part.added", { ...where, part: { type: "output_text", text: "", annotations: [] } })
  const tail = () =>
    event("response.output_text.done", { ...where, text: ANSWER }) +
    event("response.content_part.done", { ...where, part: { type: "output_text", text: ANSWER, annotations: [] } }) +
    event("response.output_item.done", { output_index: 0, item: messageItem(item, ANSWER, "completed") }) +
    event("response.completed", { response: responseObject(id, model, "completed", [messageItem(item, ANSWER, "completed")], responsesUsage(n)) })
  const delta = (i) => event("response.output_text.delta", { ...where, delta: pieceOf(i, n) })
  let i = 0
  let timer
  let closed = false
  res.on("close", () => {
    closed = true
    if (timer !== undefined) clearTimeout(timer)
  })
  if (delay === 0) {
    let out = head
    for (; i < n; i++) out += delta(i)
    res.end(out + tail())
    return
  }
  res.write(head)
  const step = () => {
    timer = undefined
    if (closed) return
    res.write(delta(i))
    i++
    if (i === n) res.end(tail())
    else timer = setTimeout(step, delay)
  }
  step()
}

const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  if (req.method === "GET" && req.url === "/healthz") return sendJson(res, 200, { status: "ok" })
  if (req.method === "GET" && req.url === "/stats") return sendJson(res, 200, { requests: received })
  if (req.method === "POST" && req.url === "/v1/responses") {
    received++
    const chunks = []
    req.on("data", (chunk) => chunks.push(chunk))
    req.on("end", () => {
      let body
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        return sendJson(res, 400, { error: { message: "invalid JSON", type: "invalid_request_error" } })
      }
      responses(req, res, body)
    })
    return
  }
  if (req.method !== "POST" || !req.url.startsWith("/v1/chat/completions")) {
    return sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: "invalid_request_error" } })
  }
  received++
  const chunks = []
  req.on("data", (chunk) => chunks.push(chunk))
  req.on("end", () => {
    let body
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      return sendJson(res, 400, { error: { message: "invalid JSON", type: "invalid_request_error" } })
    }
    if (body.stream === true) return stream(req, res, body)
    sendJson(res, 200, completion(typeof body.model === "string" ? body.model : "gpt-4o-mini"))
  })
})
server.headersTimeout = 66_000

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`upstream listening on http://127.0.0.1:${server.address().port}`)
})

const close = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(0), 2_000).unref()
}
process.on("SIGINT", close)
process.on("SIGTERM", close)
