/**
 * The cache and coalescing through the real listener, against a real mock upstream whose answers
 * can be held at a gate, so that "at the same moment" is a fact and not a race.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import OpenAI from "openai"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

class Upstream extends Effect.Tag("test/CacheUpstream")<Upstream, MockUpstream.MockUpstream>() {}

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.make, (upstream) =>
    Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        pricing: { gated: { input: 1, output: 2 } },
        providers: {
          up: { kind: "openai", baseUrl: upstream.url, timeouts: { idle: "300ms" } },
          // No idle timeout of its own: only tollgate giving up on the call closes its stream.
          patient: { kind: "openai", baseUrl: upstream.url }
        },
        routes: [{ name: "patient", match: { model: "gated-patient" }, targets: [{ provider: "patient", model: "gated" }] }]
      }),
      Layer.succeed(Upstream, upstream)
    ))
)

const body = (model: string, prompt: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, temperature: 0, messages: [{ role: "user", content: prompt }], ...extra })

/** Every client here uses the same key, as the SDK clients do: one tenant. */
const post = (baseUrl: string, json: string, signal?: AbortSignal) =>
  fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    body: json,
    headers: { authorization: "Bearer k" },
    ...(signal === undefined ? {} : { signal })
  })

/** Reads a response body to the end, as text. */
const readAll = (response: Response) => Effect.promise(() => response.text())

/** Reads until the body contains `marker`; returns the reader (to continue or cancel). */
const readUntil = (response: Response, marker: string) =>
  Effect.promise(async () => {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes(marker)) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    return { reader, text }
  })

const receivedFor = (upstream: MockUpstream.MockUpstream, prompt: string) => upstream.received.filter((r) => r.body.includes(prompt)).length

describe("cache and coalescing over real sockets", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a deterministic repeat is served from the cache: no upstream call, costs 0, saves the price", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const first = yield* Effect.promise(() => post(baseUrl, body("gpt-4o-mini", "repeat me")))
        const firstText = yield* readAll(first)
        assert.strictEqual(first.headers.get("x-tollgate-cache"), "miss")
        // Same request, keys in another order: the same entry.
        const second = yield* Effect.promise(() =>
          post(baseUrl, JSON.stringify({ messages: [{ content: "repeat me", role: "user" }], temperature: 0, model: "gpt-4o-mini" }))
        )
        assert.strictEqual(yield* readAll(second), firstText)
        assert.strictEqual(second.headers.get("x-tollgate-cache"), "hit")
        assert.strictEqual(second.headers.get("x-tollgate-cost"), "0")
        assert.strictEqual(receivedFor(upstream, "repeat me"), 1)

        // The same answer as a stream, through the SDK.
        const { data: stream, response: third } = yield* Effect.promise(() =>
          new OpenAI({ baseURL: baseUrl, apiKey: "k" }).chat.completions.create({
            model: "gpt-4o-mini",
            temperature: 0,
            stream: true,
            messages: [{ role: "user", content: "repeat me" }]
          }).withResponse()
        )
        let text = ""
        yield* Effect.promise(async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
        })
        assert.strictEqual(text, JSON.parse(firstText).choices[0].message.content)
        assert.strictEqual(receivedFor(upstream, "repeat me"), 1)

        const ids = [first, second, third].map((r) => r.headers.get("x-tollgate-request-id")!)
        const found = yield* Tollgate.awaitRequests(ids)
        const rows = ids.map((id) => found.find((r) => r.request_id === id)!)
        assert.deepStrictEqual(rows.map((r) => r.cache_status), ["miss", "hit", "hit"])
        assert.isAbove(rows[0]!.cost_usd as number, 0)
        assert.strictEqual(rows[1]!.cost_usd, 0)
        assert.strictEqual(rows[1]!.saved_usd, rows[0]!.cost_usd)
      }))

    it.effect("50 concurrent identical requests: exactly one upstream call, 50 identical bodies", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gated", "fifty at once")
        const responses = yield* Effect.fork(
          Effect.forEach(Array.from({ length: 50 }), () => Effect.promise(() => post(baseUrl, json).then(async (r) => ({ r, text: await r.text() }))), {
            concurrency: "unbounded"
          })
        )
        yield* Tollgate.awaitSubscribers(50)
        yield* upstream.awaitHeld(1)
        assert.strictEqual(receivedFor(upstream, "fifty at once"), 1)
        upstream.release()
        const all = yield* Effect.flatMap(Effect.succeed(responses), (f) => f.await).pipe(Effect.flatten)
        assert.strictEqual(new Set(all.map((a) => a.text)).size, 1)
        assert.include(all[0]!.text, "fifty at once")
        assert.strictEqual(all.filter((a) => a.r.headers.get("x-tollgate-cache") === "coalesced").length, 49)
        assert.strictEqual(receivedFor(upstream, "fifty at once"), 1)
      }))

    it.effect("streams: clients joining at different chunks each get the same bytes; the SDK parses them", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gated", "late joiners", { stream: true })
        const a = yield* Effect.promise(() => post(baseUrl, json))
        const aStart = yield* readUntil(a, "\n\n") // A has its first chunk
        yield* Tollgate.awaitSubscribers(1)
        const b = yield* Effect.promise(() => post(baseUrl, json)) // B joins after the first chunk
        yield* Tollgate.awaitSubscribers(2)
        const sdk = yield* Effect.promise(() =>
          new OpenAI({ baseURL: baseUrl, apiKey: "k" }).chat.completions.create({
            model: "gated",
            temperature: 0,
            stream: true,
            messages: [{ role: "user", content: "late joiners" }]
          })
        )
        yield* Tollgate.awaitSubscribers(3)
        yield* upstream.awaitHeld(1)
        upstream.release()
        const aText = aStart.text + (yield* Effect.promise(async () => {
          const decoder = new TextDecoder()
          let rest = ""
          for (let r = await aStart.reader.read(); !r.done; r = await aStart.reader.read()) rest += decoder.decode(r.value, { stream: true })
          return rest
        }))
        const bText = yield* readAll(b)
        const chunks: Array<unknown> = []
        yield* Effect.promise(async () => {
          for await (const chunk of sdk) chunks.push(chunk)
        })
        assert.strictEqual(bText, aText, "byte-identical")
        assert.isTrue(aText.endsWith("data: [DONE]\n\n"))
        const events = aText.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)))
        assert.deepStrictEqual(chunks, events)
        assert.strictEqual(receivedFor(upstream, "late joiners"), 1)
      }))

    it.effect("the first client leaving mid-stream does not stop the others, and still pays for the call it started", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gated", "leader leaves", { stream: true })
        const leaderAbort = new AbortController()
        const leader = yield* Effect.promise(() => post(baseUrl, json, leaderAbort.signal))
        yield* readUntil(leader, "\n\n")
        const follower = yield* Effect.promise(() => post(baseUrl, json))
        yield* Tollgate.awaitSubscribers(2)
        yield* upstream.awaitHeld(1)
        leaderAbort.abort()
        // The proxy has seen the leader go (it left the flight) before the answer goes on: piped,
        // the rest of the answer would otherwise reach its socket before the close is noticed.
        yield* Tollgate.awaitSubscribersWhere((count) => count === 1)
        const closedBefore = upstream.closed.count
        upstream.release()
        const text = yield* readAll(follower)
        assert.isTrue(text.endsWith("data: [DONE]\n\n"), "the follower got the whole stream")
        assert.strictEqual(upstream.closed.count, closedBefore, "the upstream call was not aborted")

        // The leader pays for the call it started, even though it left: its row is written when
        // the call ends, with the real usage; the follower's costs nothing and records the saving.
        // gated: $1 / $2 per 1M; 1200 input (200 cached at the input rate), 300 output.
        const FULL = (1200 * 1 + 300 * 2) / 1_000_000
        const [leaderRow, followerRow] = yield* Effect.map(
          Tollgate.awaitRequests([leader.headers.get("x-tollgate-request-id")!, follower.headers.get("x-tollgate-request-id")!]),
          (rows) => [rows.find((r) => r.aborted === 1)!, rows.find((r) => r.aborted === 0)!] as const
        )
        assert.isDefined(leaderRow)
        assert.isDefined(followerRow)
        assert.deepInclude(leaderRow, { cache_status: "miss", input_tokens: 1200, output_tokens: 300, usage_source: "reported" })
        assert.closeTo(leaderRow.cost_usd as number, FULL, 1e-12)
        assert.deepInclude(followerRow, { cache_status: "coalesced", cost_usd: 0 })
        assert.closeTo(followerRow.saved_usd as number, FULL, 1e-12)
      }))

    it.effect("when every client of a flight has left, its upstream call is aborted (the provider has no idle timeout to do it)", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gated-patient", "everyone leaves", { stream: true })
        const clients = [new AbortController(), new AbortController()]
        const first = yield* Effect.promise(() => post(baseUrl, json, clients[0]!.signal))
        yield* readUntil(first, "\n\n")
        const second = yield* Effect.promise(() => post(baseUrl, json, clients[1]!.signal))
        yield* readUntil(second, "\n\n")
        assert.strictEqual(second.headers.get("x-tollgate-cache"), "coalesced")
        yield* upstream.awaitHeld(1)
        for (const client of clients) client.abort()
        // This request's own socket, closed by tollgate while the provider still held the answer.
        yield* upstream.awaitClosed((r) => r.body.includes("everyone leaves"))
        assert.strictEqual(receivedFor(upstream, "everyone leaves"), 1)
        const rows = yield* Tollgate.awaitRequests([first, second].map((r) => r.headers.get("x-tollgate-request-id")!))
        assert.deepStrictEqual(rows.map((r) => r.aborted), [1, 1])
      }))

    it.effect("an upstream error reaches every waiter, is not stored, and the next request goes upstream again", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gated-fail", "shared failure")
        const fiber = yield* Effect.fork(
          Effect.forEach(Array.from({ length: 5 }), () => Effect.promise(() => post(baseUrl, json).then(async (r) => ({ status: r.status, text: await r.text() }))), {
            concurrency: "unbounded"
          })
        )
        yield* Tollgate.awaitSubscribers(5)
        yield* upstream.awaitHeld(1)
        upstream.release()
        const all = yield* fiber.await.pipe(Effect.flatten)
        assert.deepStrictEqual(all.map((a) => a.status), [503, 503, 503, 503, 503])
        assert.include(all[0]!.text, "overloaded")
        assert.strictEqual(receivedFor(upstream, "shared failure"), 1)
        const again = yield* Effect.fork(Effect.promise(() => post(baseUrl, json).then((r) => r.status)))
        yield* upstream.awaitHeld(1)
        upstream.release()
        assert.strictEqual(yield* again.await.pipe(Effect.flatten), 503)
        assert.strictEqual(receivedFor(upstream, "shared failure"), 2)
      }))

    it.effect("a stream that breaks off is never stored", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("stall", "broken stream", { stream: true })
        const first = yield* Effect.promise(() => post(baseUrl, json))
        assert.include(yield* readAll(first), "stream failed")
        const second = yield* Effect.promise(() => post(baseUrl, json))
        assert.strictEqual(second.headers.get("x-tollgate-cache"), "miss")
        yield* readAll(second)
        assert.strictEqual(receivedFor(upstream, "broken stream"), 2)
      }))

    it.effect("clients with different keys never share a cached answer, even in the same project; the same key does", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gpt-4o-mini", "whose answer")
        const send = (key: string) =>
          Effect.promise(() =>
            fetch(`${baseUrl}/chat/completions`, {
              method: "POST",
              body: json,
              headers: { authorization: `Bearer ${key}`, "x-tollgate-project": "shared-project" }
            }).then(async (r) => {
              await r.text()
              return r.headers.get("x-tollgate-cache")
            })
          )
        assert.strictEqual(yield* send("key-alice"), "miss")
        assert.strictEqual(yield* send("key-bob"), "miss", "another key is another tenant")
        assert.strictEqual(receivedFor(upstream, "whose answer"), 2)
        assert.strictEqual(yield* send("key-alice"), "hit")
        assert.strictEqual(yield* send("key-bob"), "hit")
        assert.strictEqual(receivedFor(upstream, "whose answer"), 2)
      }))

    it.effect("clients can opt out (bypass, no-store) or force a refresh", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const json = body("gpt-4o-mini", "opt out")
        const send = (headers: Record<string, string>) =>
          Effect.promise(() => fetch(`${baseUrl}/chat/completions`, { method: "POST", body: json, headers: { authorization: "Bearer k", ...headers } }).then(async (r) => {
            await r.text()
            return r.headers.get("x-tollgate-cache")
          }))
        assert.strictEqual(yield* send({}), "miss")
        assert.strictEqual(yield* send({}), "hit")
        assert.strictEqual(yield* send({ "x-tollgate-cache": "bypass" }), "bypass")
        assert.strictEqual(yield* send({ "cache-control": "no-store" }), "bypass")
        assert.strictEqual(yield* send({ "x-tollgate-cache": "refresh" }), "refresh")
        assert.strictEqual(receivedFor(upstream, "opt out"), 4)
        assert.strictEqual(yield* send({ "x-tollgate-project": "another-team" }), "miss", "tenants never share")
        const hot = yield* Effect.promise(() => post(baseUrl, body("gpt-4o-mini", "opt out", { temperature: 0.7 })).then((r) => r.headers.get("x-tollgate-cache")))
        assert.strictEqual(hot, "off", "non-deterministic requests are not cached")
      }))
  })
})
