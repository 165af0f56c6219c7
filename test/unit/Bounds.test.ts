/**
 * The bounds that keep a client from making tollgate's own work or memory grow without end
 * (issue #29): the tokenizer's work per text, breakers and latency averages per target, budget
 * counters per project, and the nesting depth of a request body. None of these is a speed
 * target: each bound is asserted as work or size, never as time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, HashMap } from "effect"
import * as FastCheck from "effect/FastCheck"
import { createRequire } from "node:module"
import * as Reservations from "../../src/Budget/Reservations.js"
import * as Circuit from "../../src/Circuit.js"
import { depthPast, MAX_JSON_DEPTH, parse } from "../../src/Domain/ChatRequest.js"
import { UpstreamUnavailable } from "../../src/Domain/Errors.js"
import * as RequestFacts from "../../src/Domain/RequestFacts.js"
import * as Latency from "../../src/Router/Latency.js"
import * as Tokens from "../../src/Tokens.js"
import { request } from "../support/Budget.js"

const exact = createRequire(import.meta.url)("gpt-tokenizer/cjs/encoding/o200k_base") as Tokens.Encoder

/** The encoder, watched: the longest run of one class it was ever given, and how many characters in all. */
const watched = () => {
  const seen = { calls: 0, chars: 0, longestRun: 0 }
  const encoder: Tokens.Encoder = {
    countTokens: (text) => {
      seen.calls++
      seen.chars += text.length
      for (const run of text.match(/\s+|\S+/g) ?? []) seen.longestRun = Math.max(seen.longestRun, run.length)
      return exact.countTokens(text)
    }
  }
  return { seen, encoder }
}

const PROSE = [
  "The quick brown fox jumps over the lazy dog.",
  "Summarise this contract in three bullet points; quote clause 4.2 verbatim.",
  "function add(a, b) {\n  return a + b\n}\n\nconsole.log(add(2, 3))",
  "Réponds en français : quelle est la capitale du Burkina Faso ?",
  "東京の天気を教えてください。明日は雨ですか？",
  "SELECT id, name FROM users WHERE created_at > now() - interval '7 days' ORDER BY id;"
]

describe("Tokens: bounded work for any text", () => {
  it("ordinary text is counted exactly as the tokenizer counts it", () => {
    for (const text of PROSE) assert.strictEqual(Tokens.count(text), exact.countTokens(text), text)
    const long = PROSE.join("\n").repeat(200) // ~50 KB... past EXACT_CHARS: estimated from the counted part
    const estimate = Tokens.count(long)
    const truth = exact.countTokens(long)
    assert.isAtMost(Math.abs(estimate - truth) / truth, 0.02, `estimate ${estimate} vs ${truth}`)
  })

  it.prop("any text below the exact bound without long runs counts as the tokenizer does; the upper bound is never below it", [
    FastCheck.string({ unit: "grapheme", maxLength: 400 })
  ], ([text]) => {
    const truth = exact.countTokens(text)
    assert.isAtLeast(Tokens.upperBound(text), truth)
    if (!/\S{65}|\s{65}/.test(text)) assert.strictEqual(Tokens.count(text), truth)
  })

  it("pathological texts: no run longer than RUN reaches the encoder, and at most EXACT_CHARS characters are tokenised", () => {
    for (
      const text of [
        " ".repeat(1_000_000),
        "a".repeat(1_000_000),
        "汉字測試".repeat(250_000),
        "😀".repeat(300_000),
        ("汉".repeat(64) + " ").repeat(10_000),
        "!?".repeat(400_000)
      ]
    ) {
      const { seen, encoder } = watched()
      const counted = Tokens.count(text, encoder)
      assert.isAbove(counted, 0)
      assert.isAtMost(seen.longestRun, Tokens.RUN, "runs are cut")
      assert.isAtMost(seen.chars, Tokens.EXACT_CHARS, "what is tokenised is bounded")
      const upper = watched()
      assert.isAtLeast(Tokens.upperBound(text, upper.encoder), counted)
      assert.isAtMost(upper.seen.chars, Tokens.EXACT_CHARS)
    }
  })

  it("a request's input bound is at least its estimate, and never above its byte length", () => {
    const body = { model: "m", messages: [{ role: "user", content: "word ".repeat(20_000) }] }
    const raw = new TextEncoder().encode(JSON.stringify(body))
    const facts = RequestFacts.fromOpenAiChat(body, raw, {})
    assert.isAtLeast(facts.inputTokensAtMost(), facts.estimatedInputTokens())
    assert.isAtMost(facts.inputTokensAtMost(), raw.byteLength)
  })

  it("the larger output cap is the one reserved, whichever field carries it", () => {
    const facts = (json: Record<string, unknown>) => RequestFacts.fromOpenAiChat({ model: "m", messages: [], ...json }, new Uint8Array(), {})
    assert.strictEqual(facts({ max_completion_tokens: 1, max_tokens: 500 }).maxTokens, 500)
    assert.strictEqual(facts({ max_completion_tokens: 700, max_tokens: 5 }).maxTokens, 700)
    assert.strictEqual(facts({ max_tokens: 9 }).maxTokens, 9)
    assert.isUndefined(facts({}).maxTokens)
  })
})

describe("Circuit and Latency: bounded whatever model names clients send", () => {
  it.effect("at most MAX_BREAKERS breakers; closed ones are forgotten before open ones; a decision reads only the open", () =>
    Effect.gen(function*() {
      const circuit = yield* Circuit.make({ failureThreshold: 1, cooldown: 60_000, failureRate: undefined })
      const fail = (target: string) => Effect.either(circuit.guard(target, Effect.fail(new UpstreamUnavailable({ provider: "p", status: 503, headers: {}, body: new Uint8Array(), retryAfterMs: undefined }))))
      yield* fail("p/broken")
      for (let i = 0; i < Circuit.MAX_BREAKERS * 3; i++) yield* circuit.guard(`p/model-${i}`, Effect.void)
      const all = yield* circuit.snapshot()
      assert.strictEqual(all.length, Circuit.MAX_BREAKERS)
      assert.deepInclude(all.find((b) => b.target === "p/broken")!, { state: "open" }, "the open breaker was kept")
      assert.deepStrictEqual(circuit.unsafeOpen().map((b) => b.target), ["p/broken"])
      const named = yield* circuit.snapshot(["p/broken", "p/never-used"])
      assert.deepStrictEqual(named.map((b) => [b.target, b.state]), [["p/broken", "open"], ["p/never-used", "closed"]])
    }))

  it.effect("at most MAX_TARGETS latency averages", () =>
    Effect.gen(function*() {
      const latency = yield* Latency.make
      for (let i = 0; i < Latency.MAX_TARGETS * 4; i++) yield* latency.observe(`p/model-${i}`, 10)
      const snapshot = yield* latency.snapshot()
      assert.strictEqual(snapshot.size, Latency.MAX_TARGETS)
      assert.isTrue(snapshot.has(`p/model-${Latency.MAX_TARGETS * 4 - 1}`), "the newest is kept")
    }))
})

describe("Budget: counters per project are bounded, and never looser", () => {
  const bounds = () => ({ start: 0, end: 86_400_000 })
  const full = (): Reservations.State => {
    let counters = HashMap.empty<string, Reservations.Counter>()
    for (let i = 0; i < Reservations.MAX_COUNTERS; i++) {
      const key = Reservations.counterKey("project", "daily", `p${i}`, 0)
      counters = HashMap.set(counters, key, { scope: "project", window: "daily", value: `p${i}`, start: 0, end: 86_400_000, spent: 0.01, reserved: 0, touched: 0 })
    }
    return { ...Reservations.compile([{ scope: "project", window: "daily", usd: 0.02 }], "block"), counters, fired: HashMap.empty(), blocks: HashMap.empty() }
  }

  it("past MAX_COUNTERS a new project name is counted with every other new name; a known name keeps its counter", () => {
    const state = full()
    const fresh = Reservations.applicable(state, { request: request({ project: "fresh" }), now: 0, bounds })
    assert.strictEqual(fresh[0]!.counterKey, Reservations.counterKey("project", "daily", Reservations.OVERFLOW_VALUE, 0))
    const known = Reservations.applicable(state, { request: request({ project: "p7" }), now: 0, bounds })
    assert.strictEqual(known[0]!.counterKey, Reservations.counterKey("project", "daily", "p7", 0))
  })
})

describe("request bodies: nesting is bounded before anything walks them", () => {
  it("depthPast finds the depth through strings and escapes (brackets inside strings do not count)", () => {
    const enc = (s: string) => new TextEncoder().encode(s)
    assert.isFalse(depthPast(enc(`{"a":"${"[".repeat(1000)}"}`), MAX_JSON_DEPTH), "brackets in strings do not count")
    assert.isFalse(depthPast(enc(`{"a":"\\"${"[".repeat(1000)}"}`), MAX_JSON_DEPTH), "an escaped quote does not end the string")
    assert.isFalse(depthPast(enc("[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH)), MAX_JSON_DEPTH))
    assert.isTrue(depthPast(enc("[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH))
    assert.isTrue(depthPast(enc("[{".repeat(MAX_JSON_DEPTH)), MAX_JSON_DEPTH))
  })

  it("a body past the depth is a 400 json_too_deep", () => {
    const parsed = parse(new TextEncoder().encode(`{"model":"m","messages":[{"role":"user","content":${"[".repeat(5000)}${"]".repeat(5000)}}]}`))
    assert.isTrue(Either.isLeft(parsed))
    if (Either.isLeft(parsed)) assert.strictEqual(parsed.left.code, "json_too_deep")
  })
})
