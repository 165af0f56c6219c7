/**
 * The Responses API over real sockets, event by event: the request the real Codex CLI sends on its
 * first turn (recorded from `codex exec` 0.169) goes through tollgate to a chat-only provider (the
 * simulated model); the event stream it gets back is checked in order, with continuous
 * `sequence_number`s and usage on `response.completed`, and what translation left out is named. A
 * stream cut by the provider midway ends with the Responses `error` event, and the row says so.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const codexTurn = JSON.parse(fs.readFileSync(path.join(HERE, "..", "fixtures", "responses", "codex-request.json"), "utf8")) as {
  readonly headers: Record<string, string>
  readonly body: Record<string, unknown>
}

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.make, (upstream) =>
    Tollgate.layer({
      retry: { attempts: 0 },
      providers: { sim: { kind: "mock" }, faulty: { kind: "openai", baseUrl: upstream.url } },
      routes: [{ name: "faulty", match: { model: "cut-stream" }, targets: [{ provider: "faulty" }] }]
    }))
)

interface Event {
  readonly event: string
  readonly data: Record<string, any>
}

/** The named events of a Responses stream, in order. */
const eventsOf = (text: string): Array<Event> =>
  text.split("\n\n").filter((block) => block.trim() !== "").map((block) => {
    const lines = block.split("\n")
    const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? ""
    const data = JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"))
    return { event, data }
  })

const post = (baseUrl: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-codex", ...headers },
      body: JSON.stringify(body)
    })
    return { response, text: await response.text() }
  })

describe("the Responses API, event by event", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("Codex's recorded first turn, translated for a chat-only provider: the exact event sequence, usage at the end, what was left out named", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const userAgent = codexTurn.headers["user-agent"]!
        const { response, text } = yield* post(baseUrl, { ...codexTurn.body, model: "sim-codex" }, { "user-agent": userAgent })
        assert.strictEqual(response.status, 200)
        assert.include(response.headers.get("content-type") ?? "", "text/event-stream")
        const dropped = response.headers.get("x-tollgate-dropped") ?? ""
        assert.include(dropped, "client_metadata")
        assert.match(dropped, /tools\[\d+\]:web_search/)
        assert.notInclude(text, "[DONE]")

        const events = eventsOf(text)
        // Every event is named as its payload's type, numbered from 0 without a gap.
        assert.deepStrictEqual(events.map((e) => e.event), events.map((e) => e.data.type))
        assert.deepStrictEqual(events.map((e) => e.data.sequence_number), events.map((_, i) => i))
        const names = events.map((e) => e.event)
        assert.deepStrictEqual(names.slice(0, 5), [
          "response.created",
          "response.in_progress",
          "response.output_item.added",
          "response.content_part.added",
          "response.output_text.delta"
        ])
        assert.deepStrictEqual(names.slice(-4), [
          "response.output_text.done",
          "response.content_part.done",
          "response.output_item.done",
          "response.completed"
        ])
        assert.isTrue(names.slice(4, -4).every((n) => n === "response.output_text.delta"))
        const deltas = events.filter((e) => e.event === "response.output_text.delta").map((e) => e.data.delta).join("")
        const done = events.find((e) => e.event === "response.output_text.done")!
        assert.strictEqual(done.data.text, deltas)
        const completed = events.at(-1)!.data.response
        assert.strictEqual(completed.status, "completed")
        assert.strictEqual(completed.output[0].content[0].text, deltas)
        assert.isAbove(completed.usage.input_tokens, 1000, "Codex's instructions and tools are counted")
        assert.isAbove(completed.usage.output_tokens, 0)

        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, {
          endpoint: "/v1/responses",
          stream: 1,
          status: 200,
          provider: "sim",
          input_tokens: completed.usage.input_tokens,
          output_tokens: completed.usage.output_tokens,
          user_agent: userAgent
        })
      }))

    it.effect("a stream the provider cuts midway ends with the Responses error event; the row records the failure", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { response, text } = yield* post(baseUrl, { model: "cut-stream", input: "tell me a story", stream: true })
        assert.strictEqual(response.status, 200)
        const events = eventsOf(text)
        assert.strictEqual(events[0]!.event, "response.created")
        const last = events.at(-1)!
        assert.strictEqual(last.event, "error")
        assert.strictEqual(last.data.type, "error")
        // The error event continues the stream's numbering.
        assert.deepStrictEqual(events.map((e) => e.data.sequence_number), events.map((_, i) => i))
        assert.isString(last.data.message)
        assert.notInclude(events.map((e) => e.event), "response.completed")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.strictEqual(row!.endpoint, "/v1/responses")
        assert.isNotNull(row!.error_type)
      }))
  })
})
