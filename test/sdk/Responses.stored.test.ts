/**
 * The Responses API's endpoints beside `POST /v1/responses`, through tollgate over sockets with
 * the official `openai` SDK: a stored response read (JSON and as its event stream), deleted,
 * cancelled and its input items listed, `compact` and `input_tokens.count`. They reach the
 * provider that speaks Responses with its method, no body where there is none, tollgate's key;
 * answers come back as the provider sent them; only `compact` leaves a ledger row.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import * as OpenAiPlatform from "../support/OpenAiPlatform.js"
import * as Tollgate from "../support/Tollgate.js"

class Upstream extends Effect.Tag("test/StoredResponsesUpstream")<Upstream, OpenAiPlatform.OpenAiPlatform>() {}

process.env["TOLLGATE_TEST_STORED_KEY"] = "sk-platform-stored"

const Env = Layer.unwrapScoped(
  Effect.gen(function*() {
    const platform = yield* OpenAiPlatform.make
    return Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        providers: {
          // A chat-only provider first: id-only requests go to the first provider that speaks Responses.
          chatonly: { kind: "openai", baseUrl: platform.url },
          platform: { kind: "openai", baseUrl: platform.url, responsesApi: true, apiKeyEnv: "TOLLGATE_TEST_STORED_KEY" }
        },
        routes: [
          { name: "native", match: { model: "pass-*" }, targets: [{ provider: "chatonly" }, { provider: "platform" }] },
          { name: "renamed", match: { model: "nickname" }, targets: [{ provider: "platform", model: "pass-model" }] },
          { name: "chat", match: { model: "chat-*" }, targets: [{ provider: "chatonly" }] }
        ]
      }),
      Layer.succeed(Upstream, platform)
    )
  })
)

const client = (baseUrl: string) => new OpenAI({ baseURL: baseUrl, apiKey: "sk-client", maxRetries: 0 })

/** The request id tollgate gave this answer (`x-tollgate-request-id`). */
const idOf = (headers: Headers) => headers.get("x-tollgate-request-id")!

describe("the Responses API's stored-response endpoints through tollgate", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("retrieve, delete, cancel, input items and input tokens pass through to the Responses provider; none is booked; compact is", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const platform = yield* Upstream
        const openai = client(baseUrl)
        const free: Array<string> = []

        const retrieved = yield* Effect.promise(() => openai.responses.retrieve(OpenAiPlatform.STORED_ID).withResponse())
        assert.strictEqual(retrieved.data.id, OpenAiPlatform.STORED_ID)
        assert.strictEqual(retrieved.data.output_text, "PONG: hello")
        assert.strictEqual(retrieved.response.headers.get("x-tollgate-provider"), "platform")
        free.push(idOf(retrieved.response.headers))
        let sent = platform.received.at(-1)!
        assert.strictEqual(sent.method, "GET")
        assert.strictEqual(sent.url, `/v1/responses/${OpenAiPlatform.STORED_ID}`)
        assert.strictEqual(sent.body, "")
        assert.strictEqual(sent.headers["authorization"], "Bearer sk-platform-stored")
        assert.isUndefined(sent.headers["content-type"])

        // The answer's bytes as the provider sent them, query string passed on.
        const raw = yield* Effect.promise(() => fetch(`${baseUrl}/responses/${OpenAiPlatform.STORED_ID}?include%5B%5D=reasoning.encrypted_content`))
        const rawBytes = Buffer.from(yield* Effect.promise(() => raw.arrayBuffer()))
        assert.strictEqual(raw.status, 200)
        assert.isTrue(rawBytes.equals(platform.sent.at(-1)!))
        assert.strictEqual(platform.received.at(-1)!.url, `/v1/responses/${OpenAiPlatform.STORED_ID}?include%5B%5D=reasoning.encrypted_content`)
        free.push(idOf(raw.headers))

        // Read as its event stream: passed through as it comes.
        const streamed = yield* Effect.promise(() => fetch(`${baseUrl}/responses/${OpenAiPlatform.STORED_ID}?stream=true`))
        assert.include(streamed.headers.get("content-type")!, "text/event-stream")
        const streamedBytes = Buffer.from(yield* Effect.promise(() => streamed.arrayBuffer()))
        assert.isTrue(streamedBytes.equals(platform.sent.at(-1)!))
        free.push(idOf(streamed.headers))
        const events: Array<string> = []
        yield* Effect.promise(async () => {
          for await (const event of await openai.responses.retrieve(OpenAiPlatform.STORED_ID, { stream: true })) events.push(event.type)
        })
        assert.strictEqual(events.at(-1), "response.completed")

        // The provider's 404 for an unknown id, its status and body.
        const missing = yield* Effect.promise(() => openai.responses.retrieve("resp_nope").then(() => undefined, (e: unknown) => e))
        assert.instanceOf(missing, OpenAI.NotFoundError)
        assert.include((missing as InstanceType<typeof OpenAI.NotFoundError>).message, "Response with id 'resp_nope' not found.")

        const deleted = yield* Effect.promise(() => openai.responses.delete(OpenAiPlatform.STORED_ID).withResponse())
        free.push(idOf(deleted.response.headers))
        sent = platform.received.at(-1)!
        assert.deepInclude(sent, { method: "DELETE", url: `/v1/responses/${OpenAiPlatform.STORED_ID}`, body: "" })

        const cancelled = yield* Effect.promise(() => openai.responses.cancel(OpenAiPlatform.STORED_ID).withResponse())
        assert.strictEqual(cancelled.data.status, "cancelled")
        free.push(idOf(cancelled.response.headers))
        assert.deepInclude(platform.received.at(-1)!, { method: "POST", url: `/v1/responses/${OpenAiPlatform.STORED_ID}/cancel` })

        const items = yield* Effect.promise(() => openai.responses.inputItems.list(OpenAiPlatform.STORED_ID, { limit: 5 }))
        assert.strictEqual(items.data[0]!.id, "msg_input1")
        assert.deepInclude(platform.received.at(-1)!, { method: "GET", url: `/v1/responses/${OpenAiPlatform.STORED_ID}/input_items?limit=5` })

        // A body with a model: the routed targets that speak Responses (the chat-only first one is passed over).
        const counted = yield* Effect.promise(() => openai.responses.inputTokens.count({ model: "pass-model", input: "hello" }).withResponse())
        assert.strictEqual(counted.data.input_tokens, OpenAiPlatform.INPUT_TOKENS)
        assert.strictEqual(counted.response.headers.get("x-tollgate-provider"), "platform")
        free.push(idOf(counted.response.headers))
        assert.deepInclude(platform.received.at(-1)!, { method: "POST", url: "/v1/responses/input_tokens" })

        // compact generates output and is billed: one row, with its usage. The route's model is the one sent.
        const compacted = yield* Effect.promise(() => openai.responses.compact({ model: "nickname", input: "a long conversation" }).withResponse())
        assert.strictEqual(compacted.data.object, "response.compaction")
        assert.isTrue(Buffer.from(JSON.stringify(compacted.data)).length > 0)
        assert.strictEqual(JSON.parse(platform.received.at(-1)!.body).model, "pass-model")
        assert.match(compacted.response.headers.get("x-tollgate-cost")!, /^(\d+\.\d{8}|unpriced)$/)
        const [row] = yield* Tollgate.awaitRequests([idOf(compacted.response.headers)])
        assert.deepInclude(row, {
          endpoint: "/v1/responses/compact",
          route: "renamed",
          provider: "platform",
          requested_model: "nickname",
          status: 200,
          input_tokens: 1000,
          output_tokens: 200,
          cached_input_tokens: 100,
          reasoning_tokens: 20,
          usage_source: "reported",
          served_model: "pass-model"
        })
        // The rows are written in order: the compact row is there, so the earlier requests' would be too.
        const rows = yield* Tollgate.awaitRows(1)
        assert.deepStrictEqual(rows.filter((r) => free.includes(String(r.request_id))), [])
        assert.isFalse(rows.some((r) => String(r.endpoint).startsWith("/v1/responses/") && r.endpoint !== "/v1/responses/compact"))
      }))

    it.effect("a model routed only to providers without the Responses API: 400 naming responsesApi; unknown sub-paths: 404", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const refused = yield* Effect.promise(() => client(baseUrl).responses.compact({ model: "chat-model", input: "x" }).then(() => undefined, (e: unknown) => e))
        assert.instanceOf(refused, OpenAI.BadRequestError)
        assert.include((refused as InstanceType<typeof OpenAI.BadRequestError>).message, "responsesApi")
        const bad = yield* Effect.promise(() => fetch(`${baseUrl}/responses/compact`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" }))
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(((yield* Effect.promise(() => bad.json())) as { error: { code: string } }).error.code, "invalid_json")
        for (const [method, path] of [["GET", "/responses/resp_1/nothing"], ["GET", "/responses/resp_1/cancel/more"], ["POST", "/responses/.."]] as const) {
          const answer = yield* Effect.promise(() => fetch(`${baseUrl}${path}`, { method }))
          assert.strictEqual(answer.status, 404, path)
          assert.strictEqual(((yield* Effect.promise(() => answer.json())) as { error: { type: string } }).error.type, "invalid_request_error")
        }
        const wrong = yield* Effect.promise(() => fetch(`${baseUrl}/responses/resp_1/cancel`, { method: "GET" }))
        assert.strictEqual(wrong.status, 405)
        assert.strictEqual(wrong.headers.get("allow"), "POST")
      }))
  })
})

describe("stored-response endpoints with no provider that speaks the Responses API", () => {
  layer(
    Layer.unwrapScoped(Effect.map(OpenAiPlatform.make, (platform) => Tollgate.layer({ providers: { chatonly: { kind: "openai", baseUrl: platform.url } } }))),
    { excludeTestServices: true }
  )((it) => {
    it.effect("an id-only request is refused with a 400 in OpenAI's shape that names responsesApi", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const answer = yield* Effect.promise(() => fetch(`${baseUrl}/responses/resp_1`))
        assert.strictEqual(answer.status, 400)
        const body = (yield* Effect.promise(() => answer.json())) as { error: { message: string; type: string; code: string } }
        assert.strictEqual(body.error.type, "invalid_request_error")
        assert.strictEqual(body.error.code, "no_responses_provider")
        assert.include(body.error.message, "responsesApi: true")
        assert.include(body.error.message, "GET /v1/responses/resp_1")
      }))
  })
})
