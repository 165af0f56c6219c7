/**
 * What a provider can do to tollgate (issue #29): stream without end or event boundaries, answer
 * more JSON than fits, keep a stream alive past `timeouts.total`, answer 200 with broken JSON,
 * send a huge error body. Real sockets: a node:http provider on 127.0.0.1 and tollgate's own
 * listener, each behaviour chosen by the model the provider is asked for.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Effect, FiberId, Layer } from "effect"
import { createHash } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { leadingValue, trailingValue } from "../../src/Proxy/Whole.js"
import { COMPLETION_CAP, SseEvents, SseTap } from "../../src/Sse.js"
import { AnthropicSseTap } from "../../src/Sse/Anthropic.js"
import * as Tollgate from "../support/Tollgate.js"

/** How much the "flood" stream and the "big" JSON answer send: far more than any bound, far less than the test's time. */
const FLOOD_BYTES = 128 * 1024 * 1024
const BIG_JSON_BYTES = 100 * 1024 * 1024
const TIGHT = { bufferBytes: 1_000_000, eventBytes: 1_000_000, errorBytes: 4096 }

const USAGE = { prompt_tokens: 11, completion_tokens: 2222, total_tokens: 2233 }

/** A chat completion of about `size` bytes (its content padded), usage last when asked, in pieces of 64 KB (never whole in memory). */
function* completionOf(size: number, withUsage: boolean): Generator<string> {
  // A "usage" inside the content is not the answer's usage.
  const pad = JSON.stringify("lorem ipsum \"usage\": {\"prompt_tokens\": 1} dolor sit amet, ".repeat(1200)).slice(1, -1)
  yield `{"id":"chatcmpl-big","object":"chat.completion","model":"big-model-1","choices":[{"index":0,"message":{"role":"assistant","content":"`
  for (let sent = 0; sent < size; sent += pad.length) yield pad
  yield `"},"finish_reason":"stop"}]${withUsage ? `,"usage":${JSON.stringify(USAGE)}` : ""}}`
}

const hashOf = (pieces: Iterable<string>) => {
  const hash = createHash("sha256")
  for (const piece of pieces) hash.update(piece)
  return hash.digest("hex")
}

const sseHead = { "content-type": "text/event-stream" }
const chunkEvent = (content: string) =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", model: "flood-1", choices: [{ index: 0, delta: { content } }] })}\n\n`

interface Provider {
  readonly url: string
  /** Completes when the connection of the answer for that model closes. */
  readonly closed: (model: string) => Deferred.Deferred<{ readonly finished: boolean }>
}

/** Writes `next()` until it returns undefined, waiting for `drain` when the socket is full. */
const pump = (res: http.ServerResponse, next: () => string | undefined, done: () => void) => {
  const go = () => {
    for (let piece = next(); piece !== undefined; piece = next()) {
      if (!res.write(piece)) return void res.once("drain", go)
    }
    done()
  }
  go()
}

const makeProvider = Effect.acquireRelease(
  Effect.async<{ server: http.Server; provider: Provider }>((resume) => {
    const closings = new Map<string, Deferred.Deferred<{ readonly finished: boolean }>>()
    const closed = (model: string) => {
      let d = closings.get(model)
      if (d === undefined) closings.set(model, d = Deferred.unsafeMake(FiberId.none))
      return d
    }
    const server = http.createServer((req, res) => {
      let raw = ""
      req.on("data", (c: Buffer) => (raw += c.toString("utf8")))
      req.on("end", () => {
        const model = (JSON.parse(raw) as { model: string }).model
        const timers: Array<NodeJS.Timeout> = []
        res.on("close", () => {
          for (const t of timers) clearInterval(t)
          Deferred.unsafeDone(closed(model), Effect.succeed({ finished: res.writableFinished }))
        })
        switch (model) {
          case "flood": {
            // Events of ~8 KB, never a usage chunk, never [DONE]: the stream just ends.
            const event = chunkEvent("abcd ".repeat(1600))
            let sent = 0
            res.writeHead(200, sseHead)
            return pump(res, () => {
              if (sent >= FLOOD_BYTES) return undefined
              sent += event.length * 8
              return event.repeat(8)
            }, () => res.end())
          }
          case "boundless": {
            // One `data:` line of 4 MB in 4 KB writes: no event boundary anywhere.
            let sent = 0
            res.writeHead(200, sseHead)
            res.write("data: ")
            return pump(res, () => (sent >= 4 * 1024 * 1024 ? undefined : (sent += 4096, "x".repeat(4096))), () => res.end())
          }
          case "keepalive": {
            // A first chunk, then a comment every 50 ms (bounded: 200 of them, 10 s).
            res.writeHead(200, sseHead)
            res.write(chunkEvent("Hi"))
            let beats = 0
            const beat = setInterval(() => (++beats > 200 ? res.end() : res.write(": keepalive\n\n")), 50)
            timers.push(beat)
            return
          }
          case "big":
          case "bigjson":
          case "bigjson-nousage":
          case "bigjson-chunked": {
            const size = model === "big" ? BIG_JSON_BYTES : 5_000_000
            const withUsage = model !== "bigjson-nousage"
            let length = 0
            for (const piece of completionOf(size, withUsage)) length += Buffer.byteLength(piece)
            // "bigjson-chunked" says no length: its size is only known by reading.
            res.writeHead(200, { "content-type": "application/json", ...(model === "bigjson-chunked" ? {} : { "content-length": String(length) }) })
            const pieces = completionOf(size, withUsage)
            return pump(res, () => pieces.next().value ?? undefined, () => res.end())
          }
          case "truncated": {
            const whole = JSON.stringify({ id: "c", object: "chat.completion", model: "m-1", choices: [{ index: 0, message: { role: "assistant", content: "Hello there, this answer is cut off before its end" } }], usage: USAGE })
            res.writeHead(200, { "content-type": "application/json" })
            return res.end(whole.slice(0, 120))
          }
          case "huge-error":
          case "huge-error-chunked": {
            const body = JSON.stringify({ error: { message: "m".repeat(1024 * 1024), type: "invalid_request_error" } })
            res.writeHead(400, { "content-type": "application/json", ...(model === "huge-error" ? { "content-length": String(body.length) } : {}) })
            return res.end(body)
          }
          default:
            res.writeHead(500, { "content-type": "text/plain" }).end(`unknown model ${model}`)
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ server, provider: { url: `http://127.0.0.1:${port}/v1`, closed } }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ provider }) => provider))

class Upstream extends Effect.Tag("test/HardeningUpstream")<Upstream, Provider>() {}

const route = (name: string, provider: string, model: string) => ({ name, match: { model: name }, targets: [{ provider, model }] })

const Env = Layer.unwrapScoped(
  Effect.map(makeProvider, (upstream) =>
    Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        cache: { enabled: false, coalesce: false },
        providers: {
          up: { kind: "openai", baseUrl: upstream.url },
          tight: { kind: "openai", baseUrl: upstream.url, limits: TIGHT },
          brief: { kind: "openai", baseUrl: upstream.url, timeouts: { total: "300ms" } }
        },
        routes: [
          route("flood", "up", "flood"),
          route("big", "up", "big"),
          route("truncated", "up", "truncated"),
          route("tight-boundless", "tight", "boundless"),
          route("tight-bigjson", "tight", "bigjson"),
          route("tight-bigjson-chunked", "tight", "bigjson-chunked"),
          route("tight-bigjson-nousage", "tight", "bigjson-nousage"),
          route("tight-huge-error", "tight", "huge-error"),
          route("tight-huge-error-chunked", "tight", "huge-error-chunked"),
          route("brief-keepalive", "brief", "keepalive")
        ]
      }),
      Layer.succeed(Upstream, upstream)
    ))
)

const chat = (baseUrl: string, model: string, stream: boolean) =>
  fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "Say something long." }] })
  })

/** Reads a body to its end; keeps none of it unless asked, only its size, its hash and (when kept) its text. */
const drain = async (response: Response, keep = false) => {
  const hash = createHash("sha256")
  const decoder = new TextDecoder()
  let bytes = 0
  let text = ""
  const reader = response.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.byteLength
    hash.update(value)
    if (keep) text += decoder.decode(value, { stream: true })
  }
  return { bytes, hash: hash.digest("hex"), text }
}

/**
 * Runs `work` while sampling this process's memory (tollgate runs in it): the largest growth of
 * JS heap plus array buffers over the lowest point before it (garbage a collection frees during
 * the run does not hide growth).
 */
const peakGrowth = <A>(work: () => Promise<A>) =>
  Effect.promise(async () => {
    let low = Infinity
    let peak = 0
    const sample = () => {
      const m = process.memoryUsage()
      const used = m.heapUsed + m.arrayBuffers
      low = Math.min(low, used)
      peak = Math.max(peak, used - low)
    }
    sample()
    const sampler = setInterval(sample, 5)
    try {
      const result = await work()
      sample()
      return { result, peak }
    } finally {
      clearInterval(sampler)
    }
  })

const MB = 1024 * 1024

describe("What a provider can do to tollgate", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a 128 MB stream without usage or [DONE] passes in bounded memory; its row is booked with usage estimated", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { peak, result } = yield* peakGrowth(async () => {
          const response = await chat(baseUrl, "flood", true)
          return { id: response.headers.get("x-tollgate-request-id")!, ...(await drain(response)) }
        })
        assert.isAtLeast(result.bytes, FLOOD_BYTES)
        assert.isBelow(peak, 80 * MB, `memory grew ${Math.round(peak / MB)} MB for a ${FLOOD_BYTES / MB} MB stream`)
        const [row] = yield* Tollgate.awaitRequests([result.id])
        assert.deepInclude(row, { status: 200, stream: 1, error_type: "incomplete_stream", usage_source: "estimated" })
        // ~128 MB of "abcd " is ~26M tokens: the estimate is scaled from the text kept, not from 1 MB of it.
        assert.isAbove(row!.output_tokens as number, 15_000_000)
      }), { timeout: 30_000 })

    it.effect("a JSON answer of 100 MB is piped through in bounded memory, byte for byte, its usage read from its end", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const expected = hashOf(completionOf(BIG_JSON_BYTES, true))
        const { peak, result } = yield* peakGrowth(async () => {
          const response = await chat(baseUrl, "big", false)
          return { id: response.headers.get("x-tollgate-request-id")!, status: response.status, ...(await drain(response)) }
        })
        assert.strictEqual(result.status, 200)
        assert.strictEqual(result.hash, expected)
        assert.isBelow(peak, 80 * MB, `memory grew ${Math.round(peak / MB)} MB for a ${BIG_JSON_BYTES / MB} MB answer`)
        const [row] = yield* Tollgate.awaitRequests([result.id])
        assert.deepInclude(row, { status: 200, error_type: null, usage_source: "reported", output_tokens: 2222, served_model: "big-model-1" })
      }), { timeout: 30_000 })

    it.effect("past limits.bufferBytes, a JSON answer reaches the client intact, with or without a length; usage from its end, else estimated and marked", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        for (const [model, withUsage] of [["tight-bigjson", true], ["tight-bigjson-chunked", true], ["tight-bigjson-nousage", false]] as const) {
          const response = yield* Effect.promise(() => chat(baseUrl, model, false))
          const got = yield* Effect.promise(() => drain(response))
          assert.strictEqual(response.status, 200, model)
          assert.strictEqual(got.hash, hashOf(completionOf(5_000_000, withUsage)), model)
          const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
          if (withUsage) assert.deepInclude(row, { error_type: null, usage_source: "reported", output_tokens: 2222, input_tokens: 11 }, model)
          else {
            assert.deepInclude(row, { error_type: null, usage_source: "estimated" }, model)
            // 5 MB of text, counted from its first 256K characters and scaled.
            assert.isAbove(row!.output_tokens as number, 500_000, model)
          }
        }
      }))

    it.effect("past limits.bufferBytes, an answer that must be translated is refused: 502 in the client's dialect, booked", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const response = yield* Effect.promise(() =>
          fetch(`${baseUrl}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": "sk-test", "anthropic-version": "2023-06-01" },
            body: JSON.stringify({ model: "tight-bigjson", max_tokens: 100, messages: [{ role: "user", content: "hi" }] })
          })
        )
        assert.strictEqual(response.status, 502)
        const body = (yield* Effect.promise(() => response.json())) as { type: string; error: { message: string } }
        assert.strictEqual(body.type, "error")
        assert.include(body.error.message, "limits.bufferBytes")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { status: 502, error_type: "upstream_answer_too_large", usage_source: "estimated" })
      }))

    it.effect("an SSE body without event boundaries ends at limits.eventBytes: an error event, the row says so, the upstream is cut off", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const response = yield* Effect.promise(() => chat(baseUrl, "tight-boundless", true))
        const { text } = yield* Effect.promise(() => drain(response, true))
        const events = text.split("\n\n").filter((e) => e.trim() !== "")
        assert.include(events[events.length - 1]!, "larger than 1000000 bytes (limits.eventBytes)")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { status: 200, error_type: "stream_event_too_large" })
        assert.isFalse((yield* Deferred.await(upstream.closed("boundless"))).finished, "the provider's answer was cut off")
      }))

    it.effect("timeouts.total bounds a stream that keeps sending keepalives: an error event, the row says so, the upstream is cut off", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const response = yield* Effect.promise(() => chat(baseUrl, "brief-keepalive", true))
        assert.strictEqual(response.status, 200)
        const { text } = yield* Effect.promise(() => drain(response, true))
        assert.include(text, "\"Hi\"")
        const events = text.split("\n\n").filter((e) => e.trim() !== "")
        assert.include(events[events.length - 1]!, "longer than 300 ms in all (timeouts.total)")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { status: 200, stream: 1, error_type: "stream_upstream_timeout_total" })
        assert.isFalse((yield* Deferred.await(upstream.closed("keepalive"))).finished, "the provider's answer was cut off")
      }))

    it.effect("a 200 whose JSON is cut off is a 502 in the client's dialect, booked as invalid_upstream_json with estimated usage", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const response = yield* Effect.promise(() => chat(baseUrl, "truncated", false))
        assert.strictEqual(response.status, 502)
        const body = (yield* Effect.promise(() => response.json())) as { error: { code: string; message: string } }
        assert.strictEqual(body.error.code, "upstream_invalid_answer")
        assert.include(body.error.message, "not valid JSON")
        const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
        assert.deepInclude(row, { status: 502, error_type: "invalid_upstream_json", usage_source: "estimated" })
        assert.isAbove(row!.output_tokens as number, 0)
      }))

    it.effect("an error body past limits.errorBytes reaches the client cut to that size, with or without a length", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        for (const model of ["tight-huge-error", "tight-huge-error-chunked"]) {
          const response = yield* Effect.promise(() => chat(baseUrl, model, false))
          assert.strictEqual(response.status, 400, model)
          const { bytes, text } = yield* Effect.promise(() => drain(response, true))
          assert.strictEqual(bytes, TIGHT.errorBytes, model)
          assert.isTrue(text.startsWith("{\"error\":{\"message\":\"mmm"), model)
          const [row] = yield* Tollgate.awaitRequests([response.headers.get("x-tollgate-request-id")!])
          assert.deepInclude(row, { status: 400, error_type: "upstream_400" }, model)
        }
      }))
  })
})

/** The SSE splitting tollgate had before issue #29 (the whole buffer searched on every push), as the reference. */
class ReferenceEvents {
  private readonly decoder = new TextDecoder()
  private buffer = ""
  push(chunk: Uint8Array): Array<string> {
    this.buffer += this.decoder.decode(chunk, { stream: true })
    const out: Array<string> = []
    const boundary = /\r\n\r\n|\n\n|\r\r/g
    let start = 0
    for (let match = boundary.exec(this.buffer); match !== null; match = boundary.exec(this.buffer)) {
      const end = match.index + match[0].length
      out.push(this.buffer.slice(start, end))
      start = end
    }
    this.buffer = this.buffer.slice(start)
    return out
  }
  end(): Array<string> {
    const rest = this.buffer + this.decoder.decode()
    this.buffer = ""
    return rest.trim().length === 0 ? [] : [rest]
  }
}

/** A deterministic generator (mulberry32), so a failing chunking can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** `bytes` cut at random points (pieces of 1 to `max` bytes, mid-character and mid-`\r\n` included). */
const cut = (bytes: Uint8Array, next: () => number, max: number): Array<Uint8Array> => {
  const pieces: Array<Uint8Array> = []
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(next() * max)
    pieces.push(bytes.subarray(at, at + size))
    at += size
  }
  return pieces
}

const feedAll = (events: { push(c: Uint8Array): ReadonlyArray<string>; end(): ReadonlyArray<string> }, pieces: ReadonlyArray<Uint8Array>) => [
  ...pieces.flatMap((p) => events.push(p)),
  ...events.end()
]

/** Every framing SSE allows (LF, CRLF, CR, mixed), comments, multi-line data, multi-byte text, and no final boundary. */
const FIXTURE = [
  `data: ${JSON.stringify({ choices: [{ delta: { content: "héllo wörld 日本語 🎉" } }] })}\n\n`,
  `: keepalive\r\n\r\n`,
  `event: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\n`,
  `data: cr only\r\r`,
  `data: x\n\r\n\r\ndata: y\r\n\n\n`,
  `id: 7\nretry: 100\ndata: ${"long ".repeat(300)}\n\n`,
  `\n\n\r\n\r\n`,
  `data: [DONE]\n\ndata: trailing without boundary\r\n\r`
].join("")

describe("SseEvents: the same events as before, in time linear in the bytes", () => {
  it("splits every random chunking of the fixture exactly as the old splitter did", () => {
    const bytes = new TextEncoder().encode(FIXTURE)
    const expected = feedAll(new ReferenceEvents(), [bytes])
    assert.isAbove(expected.length, 10)
    const next = random(29)
    for (let round = 0; round < 500; round++) {
      const pieces = cut(bytes, next, round % 2 === 0 ? 5 : 200)
      assert.deepStrictEqual(feedAll(new SseEvents(), pieces), feedAll(new ReferenceEvents(), pieces), `round ${round}`)
      assert.deepStrictEqual(feedAll(new SseEvents(), pieces), expected, `round ${round}`)
    }
  })

  it("holds only the unterminated event, and says how much of it", () => {
    const events = new SseEvents()
    assert.deepStrictEqual(events.push(new TextEncoder().encode("data: a\n\ndata: bc")), ["data: a\n\n"])
    assert.strictEqual(events.pending, "data: bc".length)
    assert.deepStrictEqual(events.push(new TextEncoder().encode("d\r\n")), [])
    assert.deepStrictEqual(events.push(new TextEncoder().encode("\r\n")), ["data: bcd\r\n\r\n"])
    assert.strictEqual(events.pending, 0)
  })

  it("searches each character a bounded number of times, however long an event goes without a boundary", () => {
    // Counts the characters each boundary search can look at: the work, not the time.
    const exec = RegExp.prototype.exec
    let looked = 0
    RegExp.prototype.exec = function(this: RegExp, input: string) {
      looked += input.length - this.lastIndex
      return exec.call(this, input)
    }
    try {
      const piece = new TextEncoder().encode("x".repeat(1024))
      const count = (events: { push(c: Uint8Array): unknown }) => {
        looked = 0
        events.push(new TextEncoder().encode("data: "))
        for (let i = 0; i < 500; i++) events.push(piece)
        return looked
      }
      const bytes = 500 * 1024
      assert.isBelow(count(new SseEvents()), 2 * bytes)
      assert.isBelow(count(new SseTap(false)), 2 * bytes)
      // The old splitter looked at every held character again on every push.
      assert.isAbove(count(new ReferenceEvents()), 50 * bytes)
    } finally {
      RegExp.prototype.exec = exec
    }
  })

  it("the tap forwards exactly what it did, for every chunking, removing the usage chunk only", () => {
    const usage = `data: ${JSON.stringify({ model: "m", choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } })}\r\n\r\n`
    const text = FIXTURE.replace("data: [DONE]", `${usage}data: [DONE]`)
    const bytes = new TextEncoder().encode(text)
    const next = random(7)
    for (let round = 0; round < 200; round++) {
      const tap = new SseTap(true)
      const decoder = new TextDecoder()
      let out = ""
      for (const piece of cut(bytes, next, 40)) out += decoder.decode(tap.push(piece), { stream: true })
      out += decoder.decode(tap.end())
      assert.strictEqual(out, text.replace(usage, ""), `round ${round}`)
      assert.deepStrictEqual(tap.usage, { prompt_tokens: 1, completion_tokens: 2 })
      assert.isTrue(tap.done)
    }
  })
})

/** The same provider, with the cache and coalescing on for every request: answers go through shared flights. */
const SharedEnv = Layer.unwrapScoped(
  Effect.map(makeProvider, (upstream) =>
    Tollgate.layer({
      retry: { attempts: 0 },
      cache: { enabled: true, mode: "all", coalesce: true },
      providers: { up: { kind: "openai", baseUrl: upstream.url } },
      routes: [route("flood", "up", "flood"), route("big", "up", "big")]
    }))
)

describe("What a provider can do to a shared flight (cache and coalescing on)", () => {
  layer(SharedEnv, { excludeTestServices: true })((it) => {
    it.effect("a 128 MB stream through a flight passes in bounded memory: what every reader has read is let go", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const { peak, result } = yield* peakGrowth(async () => {
          const response = await chat(baseUrl, "flood", true)
          return { id: response.headers.get("x-tollgate-request-id")!, cache: response.headers.get("x-tollgate-cache"), ...(await drain(response)) }
        })
        assert.strictEqual(result.cache, "miss", "it went through a flight of its own")
        assert.isAtLeast(result.bytes, FLOOD_BYTES)
        assert.isBelow(peak, 80 * MB, `memory grew ${Math.round(peak / MB)} MB for a ${FLOOD_BYTES / MB} MB stream`)
        const [row] = yield* Tollgate.awaitRequests([result.id])
        assert.deepInclude(row, { status: 200, stream: 1, usage_source: "estimated" })
      }), { timeout: 120_000 })
  })
})

describe("Generated text kept for an estimate, within bounds", () => {
  it("a tap folds payloads into text past its bound and keeps at most COMPLETION_CAP characters, counting the rest", () => {
    const tap = new SseTap(false, 4096)
    const event = new TextEncoder().encode(chunkEvent("abcd ".repeat(100)))
    for (let i = 0; i < 2000; i++) tap.push(event)
    assert.isBelow(tap.payloads.length, 20, "payloads were folded as they came")
    assert.strictEqual(tap.completionChars(), 2000 * 500)
    assert.strictEqual(tap.completionText().length, Math.min(COMPLETION_CAP, 2000 * 500))
  })

  it("the Anthropic tap does the same with its deltas", () => {
    const tap = new AnthropicSseTap(4096)
    const delta = `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "abcd ".repeat(100) } })}\n\n`
    const bytes = new TextEncoder().encode(delta)
    for (let i = 0; i < 2000; i++) tap.push(bytes)
    assert.strictEqual(tap.completionChars(), 2000 * 500)
    assert.strictEqual(tap.completionText().length, Math.min(COMPLETION_CAP, 2000 * 500))
  })

  it("a whole answer's model and usage are read from its ends, only as keys of the outermost object", () => {
    const answer = JSON.stringify({
      id: "x",
      model: "m-1",
      choices: [{ message: { content: "\"usage\": {\"prompt_tokens\": 99}", tool: { usage: { prompt_tokens: 98 }, model: "no" } } }],
      usage: { prompt_tokens: 3, completion_tokens: 4 },
      extra: ["a\\\\", { b: "}" }]
    })
    assert.strictEqual(leadingValue(answer, "model"), "m-1")
    assert.deepStrictEqual(trailingValue(answer, "usage"), { prompt_tokens: 3, completion_tokens: 4 })
    assert.deepStrictEqual(trailingValue(answer.slice(answer.length - 120), "usage"), { prompt_tokens: 3, completion_tokens: 4 })
    assert.isUndefined(trailingValue(JSON.stringify({ choices: [{ usage: { a: 1 } }] }), "usage"))
    assert.isUndefined(trailingValue("{\"usage\": {\"a\": 1}, \"cut", "usage"))
  })
})
