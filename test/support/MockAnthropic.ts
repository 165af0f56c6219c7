/**
 * A local stand-in for Anthropic's Messages API on 127.0.0.1 (port 0). It records every request
 * (headers and the exact body bytes) and answers by the requested model:
 *
 *   any model        a message (or, with `stream: true`, its event stream) with cache usage
 *   "rate-limited"   429 with `retry-after: 7` and Anthropic's error body
 *   "overloaded"     529 with Anthropic's overloaded error body
 *   "bad"            400 with Anthropic's invalid_request_error body
 *
 * `/v1/messages/count_tokens` answers `{"input_tokens": 42}`.
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
  input_tokens: 120,
  cache_creation_input_tokens: 3000,
  cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 2000 },
  cache_read_input_tokens: 9000,
  output_tokens: 55
}

export const errorBody = (type: string, message: string) => JSON.stringify({ type: "error", error: { type, message } })

export const message = (model: string) => ({
  id: "msg_mock",
  type: "message",
  role: "assistant",
  model,
  content: [{ type: "text", text: "Hello from Claude" }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: USAGE
})

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

export const streamEvents = (model: string): Array<string> => [
  sse("message_start", {
    type: "message_start",
    message: { ...message(model), content: [], stop_reason: null, usage: { ...USAGE, output_tokens: 1 } }
  }),
  sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
  sse("ping", { type: "ping" }),
  sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello from" } }),
  sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: " Claude" } }),
  sse("content_block_stop", { type: "content_block_stop", index: 0 }),
  sse("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: USAGE.output_tokens } }),
  sse("message_stop", { type: "message_stop" })
]

export interface MockAnthropic {
  /** Base URL without a path, like `https://api.anthropic.com`. */
  readonly url: string
  readonly received: Array<Received>
}

export const make = Effect.acquireRelease(
  Effect.async<{ server: http.Server; handle: MockAnthropic }>((resume) => {
    const received: Array<Received> = []
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks)
        // tollgate lists a keyed provider's models (`GET /v1/models`): not one of the exchanges tests check.
        if (req.method === "GET") {
          return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [], has_more: false }))
        }
        received.push({ url: req.url ?? "", headers: req.headers, body })
        if (req.url === "/v1/messages/count_tokens") {
          return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 42 }))
        }
        const json = JSON.parse(body.toString("utf8")) as { model: string; stream?: boolean }
        const json400 = { "content-type": "application/json", "request-id": "req_mock" }
        switch (json.model) {
          case "rate-limited":
            return res.writeHead(429, { ...json400, "retry-after": "7" }).end(errorBody("rate_limit_error", "slow down"))
          case "overloaded":
            return res.writeHead(529, json400).end(errorBody("overloaded_error", "Overloaded"))
          case "bad":
            return res.writeHead(400, json400).end(errorBody("invalid_request_error", "max_tokens: Field required"))
        }
        if (json.stream === true) {
          res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" })
          for (const event of streamEvents(json.model)) res.write(event)
          return res.end()
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(message(json.model)))
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ server, handle: { url: `http://127.0.0.1:${port}`, received } }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
).pipe(Effect.map(({ handle }) => handle))
