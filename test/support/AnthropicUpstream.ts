/**
 * A minimal Anthropic Messages server on 127.0.0.1 for end-to-end tests. It records what it
 * received (bytes and headers) and keeps the exact bytes it sent, so a test can check that the
 * proxy passed both through untouched. The answer contains text and a tool call, and reports
 * prompt-cache reads and writes (with the 1-hour split) as Anthropic does.
 *
 * The model "claude-odd-stream" streams valid SSE that a re-serialiser would not reproduce (a
 * comment, `data:` without its space, spaced JSON, a multi-byte character), written in pieces cut
 * mid-line and mid-character: only bytes passed through untouched arrive as they were sent.
 */
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Received {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

export const USAGE = {
  input_tokens: 100,
  cache_creation_input_tokens: 300,
  cache_read_input_tokens: 2000,
  cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
  output_tokens: 50
}

const message = (model: string) => ({
  id: "msg_01TestAnswer",
  type: "message",
  role: "assistant",
  model,
  content: [
    { type: "text", text: "Let me look that up." },
    { type: "tool_use", id: "toolu_01Weather", name: "get_weather", input: { city: "Ouagadougou" } }
  ],
  stop_reason: "tool_use",
  stop_sequence: null,
  usage: USAGE
})

const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`

const events = (model: string) => [
  event("message_start", {
    message: { ...message(model), content: [], stop_reason: null, usage: { ...USAGE, output_tokens: 1 } }
  }),
  event("ping", {}),
  event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
  event("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Let me " } }),
  event("content_block_delta", { index: 0, delta: { type: "text_delta", text: "look that up." } }),
  event("content_block_stop", { index: 0 }),
  event("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_01Weather", name: "get_weather", input: {} } }),
  event("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "{\"city\": " } }),
  event("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "\"Ouagadougou\"}" } }),
  event("content_block_stop", { index: 1 }),
  event("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 50 } }),
  event("message_stop", {})
]

/** The odd stream's text (see the header). */
const oddStream = (model: string) => {
  const spaced = (data: Record<string, unknown>) => JSON.stringify(data, null, 1).replaceAll("\n", "")
  return [
    ": an SSE comment, which carries nothing\n\n",
    `event: message_start\ndata:${spaced({ type: "message_start", message: { ...message(model), content: [], stop_reason: null, usage: { ...USAGE, output_tokens: 1 } } })}\n\n`,
    `event: content_block_start\ndata: ${spaced({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } })}\n\n`,
    `event: content_block_delta\ndata: ${spaced({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "héllo ☃ " } })}\n\n`,
    `event: content_block_delta\ndata:${spaced({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "wörld" } })}\n\n`,
    `event: content_block_stop\ndata: ${spaced({ type: "content_block_stop", index: 0 })}\n\n`,
    `event: message_delta\ndata: ${spaced({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 50 } })}\n\n`,
    `event: message_stop\ndata: ${spaced({ type: "message_stop" })}\n\n`
  ].join("")
}

/** Writes `bytes` in pieces cut at the byte offsets `cuts`, each after the one before has been flushed. */
const writeInPieces = (res: http.ServerResponse, bytes: Buffer, cuts: ReadonlyArray<number>) => {
  const at = [0, ...[...cuts].sort((a, b) => a - b), bytes.length]
  const next = (i: number): void => {
    if (i + 1 >= at.length) return void res.end()
    res.write(bytes.subarray(at[i]!, at[i + 1]!), () => next(i + 1))
  }
  next(0)
}

export interface AnthropicUpstream {
  /** Base URL (no /v1: the adapter adds the Messages path). */
  readonly url: string
  readonly received: Array<Received>
  /** The exact bytes of each answer. */
  readonly sent: Array<Buffer>
}

export const make = Effect.acquireRelease(
  Effect.async<{ server: http.Server; upstream: AnthropicUpstream }>((resume) => {
    const received: Array<Received> = []
    const sent: Array<Buffer> = []
    const server = http.createServer((req, res) => {
      const parts: Array<Buffer> = []
      req.on("data", (c: Buffer) => parts.push(c))
      req.on("end", () => {
        const body = Buffer.concat(parts)
        // tollgate lists the models a provider serves (`GET /v1/models`); not part of what tests check.
        if (req.method === "GET") {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [], has_more: false }))
          return
        }
        received.push({ url: req.url ?? "", headers: req.headers, body })
        const json = JSON.parse(body.toString("utf8")) as { model: string; stream?: boolean }
        if (req.url === "/v1/messages/count_tokens") {
          const bytes = Buffer.from(JSON.stringify({ input_tokens: 4242 }))
          sent.push(bytes)
          res.writeHead(200, { "content-type": "application/json" }).end(bytes)
          return
        }
        if (json.model === "claude-overloaded") {
          const bytes = Buffer.from(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "prompt is too long" } }))
          sent.push(bytes)
          res.writeHead(400, { "content-type": "application/json" }).end(bytes)
          return
        }
        if (json.stream === true && json.model === "claude-odd-stream") {
          const bytes = Buffer.from(oddStream(json.model))
          sent.push(bytes)
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
          // Cut through the snowman (3 bytes in UTF-8), and at places in the middle of lines.
          const snowman = bytes.indexOf(Buffer.from("☃"))
          const fraction = (f: number) => Math.floor(bytes.length * f)
          writeInPieces(res, bytes, [fraction(0.05), fraction(0.3), snowman + 1, fraction(0.7), fraction(0.93)])
          return
        }
        if (json.stream === true) {
          const all = events(json.model)
          sent.push(Buffer.from(all.join("")))
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
          for (const e of all) res.write(e)
          res.end()
          return
        }
        const bytes = Buffer.from(JSON.stringify(message(json.model)))
        sent.push(bytes)
        res.writeHead(200, { "content-type": "application/json", "request-id": "req_anthropic_1" }).end(bytes)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ server, upstream: { url: `http://127.0.0.1:${port}`, received, sent } }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
).pipe(Effect.map(({ upstream }) => upstream))
