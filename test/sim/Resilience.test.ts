/**
 * Retries, Retry-After, breakers, failover and cancellation, simulated on TestClock with a
 * scripted upstream: the whole file runs in well under a second of real time.
 */
import { HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Duration, Effect, Exit, Fiber, Layer, Ref, Schedule, SubscriptionRef, TestClock } from "effect"
import * as Budget from "../../src/Budget.js"
import * as Circuit from "../../src/Circuit.js"

/**
 * Budgets are off here (their own suites test them): a stand-in without the real layer's
 * background refresh, which would run a query per simulated 5 s when the clock jumps an hour.
 */
const NoBudget = Layer.succeed(Budget.Budget, {
  admit: () => Effect.dieMessage("budgets are off in this suite"),
  active: () => false,
  enforceMidStream: false,
  status: Effect.succeed([]),
  blocks: Effect.succeed([]),
  unblock: () => Effect.succeed(false),
  refresh: Effect.void
})
import * as Store from "../../src/Store.js"
import * as Config from "../../src/Config.js"
import { CircuitOpen, fromStatus, UpstreamUnreachable, type UpstreamError } from "../../src/Domain/Errors.js"
import type { LedgerEvent } from "../../src/Domain/LedgerEvent.js"
import * as Failover from "../../src/Failover.js"
import * as Proxy from "../../src/Proxy.js"
import * as Services from "../../src/Services.js"
import * as Telemetry from "../../src/Telemetry.js"
import { Upstream, layer as UpstreamLayer, type UpstreamResponse } from "../../src/Upstream.js"
import { awaitCondition } from "../support/Budget.js"
import * as ScriptedServer from "../support/ScriptedServer.js"

/** One scripted answer: a status (with headers), a dropped connection, or a wait on a gate. */
type Step =
  | { readonly status: number; readonly headers?: Record<string, string> }
  | { readonly reset: true }
  | { readonly bug: string }
  | { readonly gate: Deferred.Deferred<void>; readonly then: Step }

interface Call {
  readonly provider: string
  readonly atMs: number
}

class Script extends Effect.Tag("test/Script")<Script, {
  readonly steps: Map<string, Array<Step>>
  readonly calls: Ref.Ref<ReadonlyArray<Call>>
  readonly events: Array<LedgerEvent>
}>() {}

const completion = new TextEncoder().encode(JSON.stringify({
  id: "x",
  object: "chat.completion",
  model: "m",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 2 }
}))

const answer = (provider: string, step: Step): Effect.Effect<UpstreamResponse, UpstreamError> => {
  if ("gate" in step) return Effect.zipRight(Deferred.await(step.gate), answer(provider, step.then))
  if ("reset" in step) return Effect.fail(new UpstreamUnreachable({ provider, reason: "ECONNRESET" }))
  if ("bug" in step) return Effect.dieMessage(step.bug)
  if (step.status === 200) {
    return Effect.succeed({ status: 200, headers: { "content-type": "application/json" }, body: { _tag: "Bytes", bytes: completion } })
  }
  const headers: Record<string, string> = { "content-type": "application/json", ...step.headers }
  return Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (now) => {
    const ms = headers["retry-after-ms"]
    const after = headers["retry-after"]
    const retryAfterMs = ms !== undefined
      ? Number(ms)
      : after === undefined
      ? undefined
      : Number.isFinite(Number(after))
      ? Number(after) * 1000
      : Date.parse(after) - now
    return Effect.fail(fromStatus({
      provider,
      status: step.status,
      headers,
      body: new TextEncoder().encode(`{"error":{"message":"scripted ${step.status}","type":"x","code":"s${step.status}"}}`),
      retryAfterMs
    }))
  })
}

const FakeUpstream = Layer.effect(
  Upstream,
  Effect.map(Script, (script) => ({
    send: (request) =>
      Effect.gen(function*() {
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        yield* Ref.update(script.calls, (calls) => [...calls, { provider: request.provider.name, atMs: now }])
        const step = script.steps.get(request.provider.name)?.shift() ?? { status: 200 }
        return yield* answer(request.provider.name, step)
      })
  }))
)

const FakeTelemetry = Layer.effect(
  Telemetry.Telemetry,
  Effect.gen(function*() {
    const script = yield* Script
    return Telemetry.Telemetry.of({
      record: (event) => Effect.sync(() => void script.events.push(event)),
      flush: Effect.void,
      written: yield* SubscriptionRef.make(0),
      hashClient: () => "h",
      health: yield* SubscriptionRef.make(Telemetry.writable("continue")),
      refusing: () => false
    })
  })
)

/** The proxy over the scripted upstream, or over `upstream` (the real adapters, for a test over a socket). */
const env = (config: Config.FileConfigInput, upstream: Layer.Layer<Upstream, never, Config.TollgateConfig | Script> = FakeUpstream) => {
  const ConfigLive = Config.layerFrom(config)
  const ScriptLive = Layer.sync(Script, () => ({ steps: new Map(), calls: Ref.unsafeMake<ReadonlyArray<Call>>([]), events: [] }))
  // The composition root with the upstream, the writer, the budget and the ledger swapped.
  return Services.make({ upstream, telemetry: FakeTelemetry, budget: NoBudget, store: Store.layerAt(":memory:") }).pipe(
    Layer.provideMerge(ScriptLive),
    Layer.provideMerge(ConfigLive)
  )
}

const twoTargets = (extra: Config.FileConfigInput = {}): Config.FileConfigInput => ({
  providers: { a: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1" }, b: { kind: "openai", baseUrl: "http://127.0.0.1:2/v1" } },
  routes: [{ name: "chat", targets: [{ provider: "a" }, { provider: "b" }] }],
  ...extra
})
const oneTarget: Config.FileConfigInput = {
  providers: { a: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1" } },
  routes: [{ name: "chat", targets: [{ provider: "a" }] }]
}

const script = (provider: string, ...steps: Array<Step>) => Effect.map(Script, (s) => void s.steps.set(provider, steps))
const calls = Effect.flatMap(Script, (s) => Ref.get(s.calls))
const callsTo = (provider: string) => Effect.map(calls, (all) => all.filter((c) => c.provider === provider))
const lastEvent = Effect.map(Script, (s) => s.events[s.events.length - 1]!)

const chat = Effect.flatMap(Proxy.Proxy, (proxy) =>
  proxy.chatCompletions({
    requestId: "req_test",
    raw: new TextEncoder().encode(JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] })),
    headers: {} as Proxy.Call["headers"]
  }))

const bodyText = (response: HttpServerResponse.HttpServerResponse) =>
  response.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : ""

describe("retries honour Retry-After", () => {
  it.effect("429 with Retry-After: 7 is retried at exactly t = 7 s", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 429, headers: { "retry-after": "7" } }, { status: 200 })
      const fiber = yield* Effect.fork(chat)
      yield* TestClock.adjust("6999 millis")
      assert.deepStrictEqual((yield* calls).map((c) => c.atMs), [0])
      yield* TestClock.adjust("1 millis")
      const response = yield* Fiber.join(fiber)
      assert.deepStrictEqual((yield* calls).map((c) => c.atMs), [0, 7000])
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers["x-tollgate-attempts"], "2")
      assert.deepInclude(yield* lastEvent, { attempts: 2, failover: false, attemptErrors: "a/m:upstream_429", status: 200 })
    }).pipe(Effect.provide(env(twoTargets()))))

  it.effect("Retry-After as an HTTP date, and retry-after-ms", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 503, headers: { "retry-after": new Date(5_000).toUTCString() } }, {
        status: 503,
        headers: { "retry-after-ms": "1500" }
      }, { status: 200 })
      const fiber = yield* Effect.fork(chat)
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual((yield* calls).length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* calls).length, 2)
      yield* TestClock.adjust("1499 millis")
      assert.strictEqual((yield* calls).length, 2)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).status, 200)
      assert.deepStrictEqual((yield* calls).map((c) => c.atMs), [0, 5000, 6500])
    }).pipe(Effect.provide(env(twoTargets()))))

  it.effect("a Retry-After beyond maxDelay fails over at once instead of waiting", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 429, headers: { "retry-after": "3600" } })
      const response = yield* chat
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(yield* calls, [{ provider: "a", atMs: 0 }, { provider: "b", atMs: 0 }])
      assert.strictEqual(response.headers["x-tollgate-failover"], "b/m")
      assert.strictEqual(response.headers["x-tollgate-route"], "chat")
      assert.deepInclude(yield* lastEvent, { attempts: 2, failover: true, provider: "b" })
    }).pipe(Effect.provide(env(twoTargets({ retry: { maxDelay: "20s" } })))))

  it.effect("when every target fails, the client gets the last provider answer (429 stays 429)", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 500 })
      yield* script("b", { status: 429, headers: { "retry-after": "3600" } })
      const response = yield* chat
      assert.strictEqual(response.status, 429)
      assert.strictEqual(response.headers["retry-after"], "3600")
      assert.include(bodyText(response), "scripted 429")
    }).pipe(Effect.provide(env(twoTargets({ retry: { attempts: 0 } })))))

  it.effect("backoff with jitter stays inside [d/2, d], d = min(maxDelay, base * 2^n); Retry-After is a floor", () =>
    Effect.gen(function*() {
      const retry = { attempts: 8, baseDelay: 100, maxDelay: 5_000 }
      const error = new UpstreamUnreachable({ provider: "a", reason: "ECONNRESET" })
      const floored = fromStatus({ provider: "a", status: 429, headers: {}, body: new Uint8Array(), retryAfterMs: 3_000 })
      for (let draw = 0; draw < 50; draw++) {
        const delays = Chunk.toReadonlyArray(
          yield* Schedule.run(Schedule.delays(Failover.retrySchedule(retry)), 0, Array.from({ length: 8 }, () => error))
        ).map(Duration.toMillis)
        assert.strictEqual(delays.length, 8)
        delays.forEach((ms, n) => {
          const d = Math.min(5_000, 100 * 2 ** n)
          assert.isAtLeast(ms, d / 2)
          assert.isAtMost(ms, d)
        })
        const withFloor = Chunk.toReadonlyArray(
          yield* Schedule.run(Schedule.delays(Failover.retrySchedule(retry)), 0, Array.from({ length: 8 }, () => floored))
        ).map(Duration.toMillis)
        withFloor.forEach((ms, n) => assert.isAtLeast(ms, Math.max(3_000, Math.min(5_000, 100 * 2 ** n) / 2)))
      }
      // Not retried: a rejection, or an open breaker.
      const rejected = fromStatus({ provider: "a", status: 400, headers: {}, body: new Uint8Array(), retryAfterMs: undefined })
      const open = new CircuitOpen({ target: "a/m", retryAfterMs: 1 })
      for (const error of [rejected, open]) {
        let tries = 0
        yield* Effect.retry(Effect.suspend(() => (tries++, Effect.fail(error))), Failover.retrySchedule(retry)).pipe(Effect.ignore)
        assert.strictEqual(tries, 1, error._tag)
      }
    }))

  it.effect("a client that goes away during a retry sleep: no further upstream call, ever", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 429, headers: { "retry-after": "7" } }, { status: 200 })
      const fiber = yield* Effect.fork(chat)
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* calls, [{ provider: "a", atMs: 0 }])
      assert.deepInclude(yield* lastEvent, { aborted: true, errorType: "client_aborted", attempts: 1 })
    }).pipe(Effect.provide(env(twoTargets()))))

  it.scoped("a real provider's Retry-After HTTP date is measured on the Clock: the retry waits exactly until that date", () =>
    Effect.gen(function*() {
      // The real adapter over a socket; the date is years from the wall clock, so measuring it
      // against Date.now() would make the wait years long (a failover) instead of 7 s.
      const start = Date.UTC(2031, 0, 1)
      yield* TestClock.setTime(start)
      const server = yield* ScriptedServer.make
      server.answer({
        status: 429,
        contentType: "application/json",
        headers: { "retry-after": new Date(start + 7_000).toUTCString() },
        body: `{"error":{"message":"slow down","type":"rate_limit","code":"r"}}`
      })
      server.answer({ status: 200, contentType: "application/json", body: new TextDecoder().decode(completion) })
      const provider = { kind: "openai", baseUrl: `${server.url}/v1` } as const
      yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(chat)
        // The 429 has been read when the retry's sleep is queued on the TestClock.
        const retryAt = Effect.map(TestClock.sleeps(), (sleeps) => Chunk.toReadonlyArray(sleeps).includes(start + 7_000))
        yield* awaitCondition(retryAt)
        assert.strictEqual(server.requests.length, 1)
        yield* TestClock.adjust("6999 millis")
        assert.isTrue(yield* retryAt)
        assert.strictEqual(server.requests.length, 1)
        yield* TestClock.adjust("1 millis")
        const response = yield* Fiber.join(fiber)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(server.requests.length, 2)
        assert.strictEqual(response.headers["x-tollgate-attempts"], "2")
      }).pipe(Effect.provide(env({
        providers: { a: provider, b: provider },
        routes: [{ name: "chat", targets: [{ provider: "a" }, { provider: "b" }] }]
      }, UpstreamLayer)))
    }))

  it.effect("400, 401 and 404 come back unchanged: no retry, no failover", () =>
    Effect.gen(function*() {
      for (const status of [400, 401, 404]) {
        yield* script("a", { status })
        const before = (yield* calls).length
        const response = yield* chat
        assert.strictEqual(response.status, status)
        assert.strictEqual(bodyText(response), `{"error":{"message":"scripted ${status}","type":"x","code":"s${status}"}}`)
        assert.deepStrictEqual((yield* calls).slice(before), [{ provider: "a", atMs: 0 }])
      }
    }).pipe(Effect.provide(env(twoTargets()))))
})

describe("the ledger row, whatever happened", () => {
  it.effect("a defect in the request program still leaves its row: 500, internal_error", () =>
    Effect.gen(function*() {
      yield* script("a", { bug: "a bug in an adapter" })
      const exit = yield* Effect.exit(chat)
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), "the defect goes on to the routes, which log it and answer 500")
      assert.deepInclude(yield* lastEvent, { status: 500, errorType: "internal_error", requestId: "req_test" })
    }).pipe(Effect.provide(env(oneTarget))))
})

describe("circuit breakers", () => {
  const breaker = { retry: { attempts: 0 }, circuit: { failureThreshold: 3, cooldown: "30s" } }

  it.effect("three 500s open the breaker; during cooldown the target is skipped and counted", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 500 }, { status: 500 }, { status: 500 })
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* chat).status, 200) // served by b
      assert.strictEqual((yield* callsTo("a")).length, 3)
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("5 seconds")
        const response = yield* chat
        assert.strictEqual(response.headers["x-tollgate-failover"], "b/m")
        assert.deepInclude(yield* lastEvent, { skipped: "a/m:circuit_open", attempts: 1, failover: true })
      }
      assert.strictEqual((yield* callsTo("a")).length, 3, "no call reaches a while its breaker is open")
    }).pipe(Effect.provide(env(twoTargets(breaker)))))

  it.effect("after cooldown exactly one probe goes through, even with 20 concurrent requests; success closes", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      yield* script("a", { status: 500 }, { status: 500 }, { status: 500 }, { gate, then: { status: 200 } })
      for (let i = 0; i < 3; i++) yield* chat
      yield* TestClock.adjust("30 seconds")
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(chat))
      // The probe is held at the gate; everyone else has been served by b meanwhile.
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* callsTo("a")).length, 4, "one probe")
      assert.strictEqual((yield* callsTo("b")).length, 3 + 19)
      yield* Deferred.succeed(gate, undefined)
      const responses = yield* Fiber.joinAll(fibers)
      assert.isTrue(responses.every((r) => r.status === 200))
      // Closed again: the next request goes to a.
      yield* chat
      assert.strictEqual((yield* callsTo("a")).length, 5)
      const [status] = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.deepInclude(status!, { target: "a/m", state: "closed" })
    }).pipe(Effect.provide(env(twoTargets(breaker)))))

  it.effect("a failed probe opens the breaker again for a full cooldown", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }, { status: 200 })
      for (let i = 0; i < 3; i++) yield* chat
      yield* TestClock.adjust("30 seconds")
      yield* chat // the probe fails
      assert.strictEqual((yield* callsTo("a")).length, 4)
      yield* TestClock.adjust("29999 millis")
      yield* chat
      assert.strictEqual((yield* callsTo("a")).length, 4, "still open")
      yield* TestClock.adjust("1 millis")
      yield* chat
      assert.strictEqual((yield* callsTo("a")).length, 5, "next probe")
    }).pipe(Effect.provide(env(twoTargets(breaker)))))

  it.effect("an interrupted probe gives its slot back: the next request probes at once", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      yield* script("a", { status: 500 }, { status: 500 }, { status: 500 }, { gate, then: { status: 200 } }, { status: 200 })
      for (let i = 0; i < 3; i++) yield* chat
      yield* TestClock.adjust("30 seconds")
      const probe = yield* Effect.fork(chat)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* callsTo("a")).length, 4, "the probe is held at the gate")
      yield* Fiber.interrupt(probe)
      yield* chat
      assert.strictEqual((yield* callsTo("a")).length, 5, "a new probe, without waiting another cooldown")
      const [status] = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.deepInclude(status!, { target: "a/m", state: "closed" })
    }).pipe(Effect.provide(env(twoTargets(breaker)))))

  it.effect("an interrupted attempt counts for nothing: two failures, an interrupted call, one failure open it", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      yield* script("a", { status: 500 }, { status: 500 }, { gate, then: { status: 200 } }, { status: 500 })
      for (let i = 0; i < 2; i++) yield* chat
      const held = yield* Effect.fork(chat)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* callsTo("a")).length, 3)
      yield* Fiber.interrupt(held)
      const [before] = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.deepInclude(before!, { target: "a/m", state: "closed", consecutiveFailures: 2 }, "not reset by the interrupted call")
      yield* chat // the third failure in a row
      const [after] = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.deepInclude(after!, { target: "a/m", state: "open" })
    }).pipe(Effect.provide(env(twoTargets(breaker)))))

  it.effect("every target open: 503 with Retry-After until the earliest half-open", () =>
    Effect.gen(function*() {
      yield* script("a", { status: 500 })
      yield* script("b", { reset: true })
      const first = yield* chat
      assert.strictEqual(first.status, 502, "the last upstream error: b's reset")
      yield* TestClock.adjust("10 seconds")
      const response = yield* chat
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers["retry-after"], "20")
      assert.include(bodyText(response), "no_target_available")
      assert.deepInclude(yield* lastEvent, { attempts: 0, skipped: "a/m:circuit_open,b/m:circuit_open", errorType: "no_target_available" })
      const states = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.deepStrictEqual(states.map((s) => [s.target, s.state, s.retryAfterMs]), [["a/m", "open", 20_000], ["b/m", "open", 20_000]])
    }).pipe(Effect.provide(env(twoTargets({ retry: { attempts: 0 }, circuit: { failureThreshold: 1, cooldown: "30s" } })))))

  it.effect("the breaker also opens on a failure rate over its window", () =>
    Effect.gen(function*() {
      // Alternating failures never make 3 in a row, but 50% of 10 in the window is enough.
      yield* script("a", ...Array.from({ length: 10 }, (_, i): Step => ({ status: i % 2 === 0 ? 500 : 200 })))
      for (let i = 0; i < 10; i++) yield* chat
      yield* chat
      assert.strictEqual((yield* callsTo("a")).length, 10, "open after 10 with half failed")
      const [status] = yield* Effect.flatMap(Circuit.Circuit, (c) => c.snapshot())
      assert.strictEqual(status!.state, "open")
    }).pipe(Effect.provide(env(twoTargets({
      retry: { attempts: 0 },
      circuit: { failureThreshold: 3, cooldown: "30s", failureRate: { threshold: 0.5, window: "60s", minRequests: 10 } }
    })))))

  it.effect("a single target that keeps failing: retries then the last error; then 503 while open", () =>
    Effect.gen(function*() {
      yield* script("a", { reset: true }, { reset: true }, { reset: true })
      const fiber = yield* Effect.fork(chat)
      yield* TestClock.adjust("2 seconds") // two backoffs of at most 200 ms and 400 ms
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.status, 502)
      assert.strictEqual(response.headers["x-tollgate-attempts"], "3")
      assert.strictEqual((yield* chat).status, 503)
      assert.strictEqual((yield* lastEvent).skipped, "a/m:circuit_open")
    }).pipe(Effect.provide(env(oneTarget))))
})
