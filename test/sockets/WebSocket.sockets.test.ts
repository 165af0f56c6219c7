/**
 * A WebSocket upgrade on tollgate's listener (Codex tries one on `/v1/responses` when its
 * provider says `supports_websockets`): answered 426 with an OpenAI-shaped error and the
 * connection closed, never left hanging or dropped without a word. An upgrade to anything else
 * (`h2c`) is ignored, as HTTP/1.1 lets a server do, and the request served.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as Tollgate from "../support/Tollgate.js"

/** Writes `request` on a fresh connection and reads until the server closes it. */
const exchange = (baseUrl: string, request: string) =>
  Effect.async<{ readonly answer: string; readonly closedByServer: boolean }>((resume) => {
    const url = new URL(baseUrl)
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(request))
    let answer = ""
    let ended = false
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")))
    socket.on("end", () => (ended = true))
    socket.on("close", () => resume(Effect.succeed({ answer, closedByServer: ended })))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("10 seconds"))

const upgrade = (path: string, protocol: string, extra = "") =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`

describe("WebSocket upgrades", () => {
  layer(Tollgate.layer({ providers: { sim: { kind: "mock" } } }), { excludeTestServices: true })((it) => {
    it.effect("an upgrade to websocket on /v1/responses: 426, OpenAI's error shape saying to POST, and the connection closed", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { answer, closedByServer } = yield* exchange(baseUrl, upgrade("/v1/responses", "websocket", "OpenAI-Beta: responses_websockets=2026-02-06\r\n"))
        assert.isTrue(closedByServer, "the server closed the connection")
        const [head, body] = answer.split("\r\n\r\n") as [string, string]
        assert.match(head, /^HTTP\/1\.1 426 Upgrade Required\r\n/)
        assert.match(head, /\r\nconnection: close/i)
        assert.match(head, /\r\ncontent-type: application\/json/i)
        const error = (JSON.parse(body) as { error: { message: string; type: string; code: string } }).error
        assert.deepInclude(error, { type: "invalid_request_error", code: "websocket_not_supported" })
        assert.include(error.message, "HTTP POST")
        // No switch of protocols was ever offered.
        assert.notInclude(answer, "101")
      }))

    it.effect("any path, with a client key or not: the same answer", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { answer, closedByServer } = yield* exchange(baseUrl, upgrade("/v1/chat/completions", "WebSocket", "Authorization: Bearer sk-x\r\n"))
        assert.isTrue(closedByServer)
        assert.match(answer, /^HTTP\/1\.1 426 /)
      }))

    it.effect("an upgrade to h2c is ignored: the request is served over HTTP/1.1", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { answer } = yield* exchange(baseUrl, upgrade("/healthz", "h2c", "Connection: close\r\n"))
        assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
        assert.include(answer, "{\"status\":\"ok\"}")
      }))
  })
})
