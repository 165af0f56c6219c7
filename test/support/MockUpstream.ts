/**
 * A real OpenAI-compatible server on 127.0.0.1 for tests, where the socket matters. It records
 * what it received and what it sent, and behaves by the requested model:
 *
 *   any model         a completion (or SSE stream) with fixed usage
 *   "no-usage"        a stream that ignores `include_usage` (the proxy must estimate)
 *   "slow-stream"     sends two chunks, then waits until the client goes away
 *   "hang"            never answers
 *   "rate-limited"    429 with Retry-After and an OpenAI error body
 *   "reset"           destroys the connection without answering
 *   "stall"           streams its first chunk, then goes silent (connection kept open)
 *   "cut-stream"      streams its first chunk, then destroys the connection mid-answer
 *   "gated"           JSON: answers only on `release()`; stream: first chunk, then the rest on `release()`
 *   "gated-fail"      like "gated", but answers 503 on `release()` (JSON only)
 *
 * `GET .../models` answers a one-model list, or 401 to the key "sk-refused".
 *
 * A server made with `faulty: false` ignores those names and answers every model normally
 * (a healthy second provider for failover tests).
 */
import { Deferred, Effect, Stream, SubscriptionRef } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export const USAGE = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 200 },
  completion_tokens_details: { reasoning_tokens: 50 }
}

export interface MockUpstream {
  /** Base URL, ending in /v1. */
  readonly url: string
  readonly received: Array<Received>
  /** The model-list requests (`GET .../models`), kept apart from `received`. */
  readonly listed: Array<Received>
  /** Every SSE event written, per request, in order. */
  readonly sentEvents: Array<Array<string>>
  /** Completes when a "slow-stream" client's socket closes. */
  readonly streamClosed: Deferred.Deferred<void>
  /** Completes when a "slow-stream" request has sent its first chunks. */
  readonly streamStarted: Deferred.Deferred<void>
  /** Lets every held "gated" answer go on. */
  readonly release: () => void
  /** Waits until `n` "gated" answers are held (the requests have arrived). */
  readonly awaitHeld: (n: number) => Effect.Effect<void>
  /** Waits until the number of held "gated" answers satisfies `ok` (0: every one was given up by its client). */
  readonly awaitHeldWhere: (ok: (count: number) => boolean) => Effect.Effect<void>
  /** Sockets of answers that were closed by the other side. */
  readonly closed: { count: number }
  /**
   * Waits until the answer to a request that `which` picks was closed by the other side before it
   * ended: a signal per request, where `streamClosed` is one for all of them.
   */
  readonly awaitClosed: (which: (received: Received) => boolean) => Effect.Effect<void>
}

const answerFor = (body: { messages?: Array<{ content?: unknown }> }) => {
  const last = body.messages?.[body.messages.length - 1]?.content
  return `Echo from upstream: ${typeof last === "string" ? last : "(parts)"}`
}

export const make = makeWith({ faulty: true })

export function makeWith(options: { readonly faulty: boolean }) {
  return Effect.gen(function*() {
  const received: Array<Received> = []
  const listed: Array<Received> = []
  const sentEvents: Array<Array<string>> = []
  const streamClosed = yield* Deferred.make<void>()
  const streamStarted = yield* Deferred.make<void>()
  let held: Array<() => void> = []
  const heldCount = yield* SubscriptionRef.make(0)
  /** Holds an answer until `release()`; forgets it if its client goes away first. */
  const hold = (res: http.ServerResponse, go: () => void) => {
    held.push(go)
    Effect.runSync(SubscriptionRef.set(heldCount, held.length))
    res.on("close", () => {
      held = held.filter((g) => g !== go)
      Effect.runSync(SubscriptionRef.set(heldCount, held.length))
    })
  }
  const release = () => {
    const now = held
    held = []
    Effect.runSync(SubscriptionRef.set(heldCount, 0))
    for (const go of now) go()
  }
  const awaitHeldWhere = (ok: (count: number) => boolean) =>
    heldCount.changes.pipe(Stream.takeUntil(ok), Stream.runDrain, Effect.timeout("20 seconds"), Effect.orDie)
  const awaitHeld = (n: number) => awaitHeldWhere((count) => count >= n)
  const closed = { count: 0 }
  const closedRequests = yield* SubscriptionRef.make<ReadonlyArray<Received>>([])
  const awaitClosed = (which: (received: Received) => boolean) =>
    closedRequests.changes.pipe(Stream.takeUntil((all) => all.some(which)), Stream.runDrain, Effect.timeout("20 seconds"), Effect.orDie)

  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8")
      const thisRequest: Received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: raw }
      // The model list (`tollgate providers check`, and tollgate's listing at start): a key of
      // "sk-refused" is refused like a wrong one. Recorded in `listed`, not `received`: tests count the exchanges they send.
      if (req.method === "GET" && (req.url ?? "").endsWith("/models")) {
        listed.push(thisRequest)
        const refused = req.headers.authorization === "Bearer sk-refused"
        res.writeHead(refused ? 401 : 200, { "content-type": "application/json" })
        res.end(JSON.stringify(
          refused
            ? { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }
            : { object: "list", data: [{ id: "gpt-4o-mini", object: "model", created: 1_700_000_000, owned_by: "mock" }] }
        ))
        return
      }
      received.push(thisRequest)
      const body = JSON.parse(raw) as {
        model: string
        stream?: boolean
        stream_options?: { include_usage?: boolean }
        messages?: Array<{ content?: unknown }>
      }
      const base = { id: "chatcmpl-up1", object: "chat.completion.chunk", created: 1_700_000_000, model: `${body.model}-2025-01-01` }

      const model = options.faulty ? body.model : "normal"
      if (model === "hang") return
      if (model === "reset") {
        req.socket.destroy()
        return
      }
      res.on("close", () => {
        if (!res.writableEnded) {
          closed.count++
          Effect.runSync(SubscriptionRef.update(closedRequests, (all) => [...all, thisRequest]))
          Deferred.unsafeDone(streamClosed, Effect.void)
        }
      })
      if ((model === "gated" || model === "gated-fail") && body.stream !== true) {
        hold(res, () => {
          if (model === "gated-fail") {
            res.writeHead(503, { "content-type": "application/json" })
            res.end(JSON.stringify({ error: { message: "overloaded", type: "server_error", code: null } }))
            return
          }
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({
            id: "chatcmpl-gated",
            object: "chat.completion",
            created: 1_700_000_000,
            model: body.model,
            choices: [{ index: 0, message: { role: "assistant", content: answerFor(body), refusal: null }, logprobs: null, finish_reason: "stop" }],
            usage: USAGE
          }))
        })
        return
      }
      if (model === "rate-limited") {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "7", "x-request-id": "up-429" })
        res.end(JSON.stringify({ error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } }))
        return
      }
      if (body.stream !== true) {
        res.writeHead(200, { "content-type": "application/json", "x-request-id": "up-1", "openai-processing-ms": "12" })
        res.end(JSON.stringify({
          id: "chatcmpl-up1",
          object: "chat.completion",
          created: 1_700_000_000,
          model: `${body.model}-2025-01-01`,
          choices: [{ index: 0, message: { role: "assistant", content: answerFor(body), refusal: null }, logprobs: null, finish_reason: "stop" }],
          usage: USAGE
        }))
        return
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      const events: Array<string> = []
      sentEvents.push(events)
      const send = (data: string) => {
        events.push(data)
        res.write(`data: ${data}\n\n`)
      }
      send(JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }))
      const words = answerFor(body).split(" ")
      if (model === "gated") {
        hold(res, () => {
          for (const word of words) {
            send(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: `${word} ` }, finish_reason: null }] }))
          }
          send(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }))
          if (body.stream_options?.include_usage === true) send(JSON.stringify({ ...base, choices: [], usage: USAGE }))
          send("[DONE]")
          res.end()
        })
        return
      }
      if (model === "stall") {
        send(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: words[0] }, finish_reason: null }] }))
        return
      }
      if (model === "cut-stream") {
        const data = JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: words[0] }, finish_reason: null }] })
        events.push(data)
        // Once the chunk is handed to the socket, the connection dies without the body's end.
        res.write(`data: ${data}\n\n`, () => res.socket?.destroy())
        return
      }
      if (model === "slow-stream") {
        send(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: words[0] }, finish_reason: null }] }))
        res.on("close", () => Deferred.unsafeDone(streamClosed, Effect.void))
        Deferred.unsafeDone(streamStarted, Effect.void)
        return
      }
      for (const word of words) {
        send(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: `${word} ` }, finish_reason: null }] }))
      }
      send(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }))
      if (body.stream_options?.include_usage === true && model !== "no-usage") {
        send(JSON.stringify({ ...base, choices: [], usage: USAGE }))
      }
      send("[DONE]")
      res.end()
    })
  })

  yield* Effect.acquireRelease(
    Effect.async<void>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.void))
    }),
    () =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  const { port } = server.address() as AddressInfo
  const upstream: MockUpstream = {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    listed,
    sentEvents,
    streamClosed,
    streamStarted,
    release,
    awaitHeld,
    awaitHeldWhere,
    closed,
    awaitClosed
  }
  return upstream
  })
}
