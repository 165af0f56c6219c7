/**
 * A provider's stream piped to the client (src/Bytes.ts, src/Node/Listener.ts): the mid-stream budget guard cuts
 * it off over real sockets, as it does a simulated provider's stream (test/sockets/Routing.sockets).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import * as MockUpstream from "../support/MockUpstream.js"
import * as SdkStream from "../support/SdkStream.js"
import * as Tollgate from "../support/Tollgate.js"

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.make, (upstream) =>
    Tollgate.layer({
      retry: { attempts: 0 },
      cache: { enabled: false, coalesce: false },
      providers: { up: { kind: "openai", baseUrl: upstream.url } },
      routes: [{ name: "chatty", match: { model: "chatty" }, targets: [{ provider: "up", model: "gpt-4o" }] }],
      budget: { enabled: true, enforceMidStream: true, limits: [{ window: "perRequest", usd: 0.08 }] }
    }))
)

describe("A provider's stream, piped", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("the budget guard ends a stream that runs past its reservation: an error event, and the row says so", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const client = new OpenAI({ baseURL: baseUrl, apiKey: "sk-test", maxRetries: 0 })
        // The mock upstream echoes the last message, one word per chunk: ~400 chunks, far past
        // what 5 output tokens reserve.
        const { data: stream, response } = yield* Effect.promise(() =>
          client.chat.completions.create({
            model: "chatty",
            stream: true,
            max_tokens: 5,
            messages: [{ role: "user", content: "word ".repeat(400) }]
          }).withResponse()
        )
        const { failure, text } = yield* SdkStream.readToEnd(stream)
        assert.include(String((failure as Error | undefined)?.message), "budget reservation")
        assert.include(text, "Echo from upstream")
        assert.isBelow(text.length, "word ".repeat(400).length, "the stream was cut short")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { error_type: "budget_exceeded_mid_stream", stream: 1, status: 200, aborted: 0 })
      }))

    it.effect("nothing follows the guard's error event: the rest of the provider's stream is not sent", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const body = yield* Effect.promise(() =>
          fetch(`${baseUrl}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
            body: JSON.stringify({ model: "chatty", stream: true, max_tokens: 5, messages: [{ role: "user", content: "word ".repeat(400) }] })
          }).then((r) => r.text())
        )
        const events = body.split("\n\n").filter((e) => e.trim() !== "")
        assert.isAbove(events.length, 1)
        assert.include(events[events.length - 1]!, "budget reservation", "the error event is the last thing sent")
        assert.notInclude(body, "[DONE]")
      }))
  })
})
