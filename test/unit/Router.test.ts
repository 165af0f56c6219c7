/**
 * The routing decision, step by step (issue #5): suffixes, aliases, overrides, rules and their
 * matchers, tiers, cascade, capability skips with their reasons, weighted load balancing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as RequestFacts from "../../src/Domain/RequestFacts.js"
import * as Router from "../../src/Router.js"
import * as Latency from "../../src/Router/Latency.js"
import { chat, configFor, names, routerFor } from "../fixtures/route/helpers.js"

const mock = { kind: "mock" } as const
const right = <A, E>(e: Either.Either<A, E>): A => Either.getOrElse(e, (err) => assert.fail(`expected a decision, got ${String(err)}`))
const left = <A, E>(e: Either.Either<A, E>): E => Either.match(e, { onLeft: (x) => x, onRight: () => assert.fail("expected NoRoutableTarget") })

describe("Router: defaults, aliases, overrides, suffixes", () => {
  it.effect("no rule: the first provider serves the model as asked", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({ providers: { a: mock, b: mock } })
      const d = right(router.decide(chat({ model: "local-llama" }), {}))
      assert.deepStrictEqual(names(d.targets), ["a/local-llama"])
      assert.strictEqual(d.route, null)
      assert.strictEqual(d.rule, "default")
      assert.deepStrictEqual(d.skipped, [])
      // The model-only form Proxy.ts calls still works.
      assert.deepStrictEqual(names(router.decide({ model: "x" }).targets), ["a/x"])
    }))

  it.effect.each([
    ["fast", "gpt-4o-mini", "alias"],
    ["gpt-4o", "gpt-4o-mini", "override"],
    ["gpt-4o-2024-08-06", "gpt-4.1-nano", "override"],
    ["gpt-4.1", "gpt-4.1", undefined]
  ] as const)("%s resolves to %s (%s)", ([asked, resolved, step]) =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        models: { aliases: { fast: "gpt-4o-mini" }, overrides: { "gpt-4o": "gpt-4o-mini", "gpt-4o-20*": "gpt-4.1-nano" } }
      })
      const d = right(router.decide(chat({ model: asked }), {}))
      assert.strictEqual(d.requestedModel, asked)
      assert.strictEqual(d.resolvedModel, resolved)
      assert.deepStrictEqual(names(d.targets), [`a/${resolved}`])
      assert.strictEqual(d.trace.some((t) => t.step === step), step !== undefined)
    }))

  it.effect("an untraced decision (the proxy's) is the same decision, without the trace", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        models: { aliases: { fast: "gpt-4o-mini" } },
        routes: [{ name: "pool", match: { model: "gpt-4o-mini" }, targets: [{ provider: "a" }, { provider: "a", model: "o3" }] }]
      })
      const traced = right(router.decide(chat({ model: "fast:cost" }), { seed: 7 }))
      const untraced = right(router.decide(chat({ model: "fast:cost" }), { seed: 7, untraced: true }))
      assert.isAbove(traced.trace.length, 3)
      assert.deepStrictEqual(untraced.trace, [])
      assert.deepStrictEqual({ ...untraced, trace: traced.trace }, traced)
      // A request nothing can serve fails the same way, and says why, without a trace too.
      const refused = left(router.decide(chat({ model: "gpt-4o-mini", max_tokens: 10_000_000 }), { untraced: true }))
      assert.deepStrictEqual(refused.trace, [])
      assert.include(refused.message, "max_tokens")
    }))

  it.effect("built-in aliases resolve among the configured models", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        routes: [{ name: "pool", match: { model: "pool" }, targets: [{ provider: "a", model: "gpt-4o" }, { provider: "a", model: "gpt-4o-mini" }, { provider: "a", model: "o3" }] }]
      })
      const resolved = (model: string, context: Router.DecideContext = {}, body: Record<string, unknown> = {}) =>
        right(router.decide(chat({ model, ...body }), context)).resolvedModel
      assert.strictEqual(resolved("tollgate:cheap"), "gpt-4o-mini")
      assert.strictEqual(resolved("tollgate:best"), "o3")
      // Before anything is measured, fast is the cheapest; then the lowest TTFB average.
      assert.strictEqual(resolved("tollgate:fast"), "gpt-4o-mini")
      assert.strictEqual(resolved("tollgate:fast", { latency: new Map([["a/gpt-4o", 120], ["a/gpt-4o-mini", 300]]) }), "gpt-4o")
      assert.strictEqual(resolved("tollgate:auto"), "gpt-4o-mini")
      const hard = "Design the architecture, analyze the trade-offs, compare algorithms, prove the invariant and derive the complexity. " +
        "```ts\nconst a = 1\n```\n```ts\nconst b = 2\n```"
      const d = right(router.decide(chat({ model: "tollgate:auto", messages: [{ role: "user", content: hard }] }), {}))
      assert.strictEqual(d.tier, "complex")
      assert.strictEqual(d.resolvedModel, "o3")
      // A suffix after a built-in alias is still a suffix.
      assert.strictEqual(resolved("tollgate:cheap:quality"), "gpt-4o-mini")
    }))

  it.effect.each([
    // Blended (3 x input + output) / 4 per 1M: gpt-4o-mini 0.26, o3 3.5, gpt-4o 4.375, house-model unpriced.
    [":cost", ["a/gpt-4o-mini", "a/o3", "a/gpt-4o", "a/house-model"]],
    [":quality", ["a/o3", "a/gpt-4o", "a/gpt-4o-mini", "a/house-model"]],
    [":fast", ["a/o3", "a/gpt-4o-mini", "a/gpt-4o", "a/house-model"]],
    ["", ["a/gpt-4o", "a/o3", "a/gpt-4o-mini", "a/house-model"]]
  ] as const)("suffix %s orders the targets", ([suffix, expected]) =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        routes: [{
          name: "pool",
          match: { model: "pool" },
          targets: [{ provider: "a", model: "gpt-4o" }, { provider: "a", model: "o3" }, { provider: "a", model: "gpt-4o-mini" }, { provider: "a", model: "house-model" }]
        }]
      })
      const latency = new Map([["a/o3", 90], ["a/gpt-4o-mini", 150], ["a/gpt-4o", 400]])
      const d = right(router.decide(chat({ model: `pool${suffix}` }), { latency }))
      assert.strictEqual(d.resolvedModel, "pool")
      assert.deepStrictEqual(names(d.targets), [...expected])
    }))
})

describe("Router: rules", () => {
  const config = {
    providers: { a: mock, b: mock, c: mock },
    routes: [
      { name: "project", match: { headers: { "X-Tollgate-Project": "team-*" } }, targets: [{ provider: "c" }] },
      { name: "vip", match: { clientKey: ["sk-vip-*"] as [string] }, targets: [{ provider: "c", model: "o3" }] },
      { name: "images", match: { images: true }, targets: [{ provider: "b", model: "gpt-4o" }] },
      { name: "json", match: { responseFormat: true }, targets: [{ provider: "b", model: "gpt-4.1" }] },
      { name: "tools", match: { tools: true, stream: false }, targets: [{ provider: "b", model: "gpt-4.1-mini" }] },
      { name: "big-output", match: { maxTokens: { min: 8000 } }, targets: [{ provider: "b", model: "gpt-5" }] },
      { name: "long", match: { inputTokens: { min: 2000 } }, targets: [{ provider: "b", model: "gpt-4.1" }] },
      { name: "messages", match: { endpoint: "messages" as const }, targets: [{ provider: "c", model: "claude-sonnet-4-5" }] },
      { name: "gpt", match: { model: "gpt-*" }, targets: [{ provider: "a" }, { provider: "b" }] }
    ]
  }
  const tool = { type: "function", function: { name: "f", parameters: { type: "object" } } }
  const cases: ReadonlyArray<readonly [string, Record<string, unknown>, Record<string, string>, string | null, ReadonlyArray<string>]> = [
    ["a header glob", { model: "gpt-4o" }, { "x-tollgate-project": "team-red" }, "project", ["c/gpt-4o"]],
    ["a client key glob", { model: "gpt-4o" }, { authorization: "Bearer sk-vip-7" }, "vip", ["c/o3"]],
    ["images", { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:" } }] }] }, {}, "images", ["b/gpt-4o"]],
    ["response_format", { model: "m", response_format: { type: "json_object" } }, {}, "json", ["b/gpt-4.1"]],
    ["tools, not streamed", { model: "m", tools: [tool] }, {}, "tools", ["b/gpt-4.1-mini"]],
    ["tools, streamed: next rule", { model: "gpt-x", tools: [tool], stream: true }, {}, "gpt", ["a/gpt-x", "b/gpt-x"]],
    ["max_tokens range", { model: "m", max_tokens: 9000 }, {}, "big-output", ["b/gpt-5"]],
    ["max_completion_tokens counts too", { model: "m", max_completion_tokens: 8000 }, {}, "big-output", ["b/gpt-5"]],
    ["input tokens range", { model: "m", messages: [{ role: "user", content: "lorem ipsum dolor ".repeat(1000) }] }, {}, "long", ["b/gpt-4.1"]],
    ["model glob", { model: "gpt-4o" }, {}, "gpt", ["a/gpt-4o", "b/gpt-4o"]],
    ["nothing matches", { model: "claude-x" }, {}, null, ["a/claude-x"]]
  ]
  it.effect.each(cases)("%s", ([, body, headers, route, expected]) =>
    Effect.gen(function*() {
      const router = yield* routerFor(config)
      const d = right(router.decide(chat(body, headers), {}))
      assert.strictEqual(d.route, route)
      assert.deepStrictEqual(names(d.targets), expected)
    }))

  it.effect("endpoint matcher and Anthropic facts (system, blocks, tools, images)", () =>
    Effect.gen(function*() {
      const router = yield* routerFor(config)
      const body = {
        model: "m",
        system: "be brief",
        max_tokens: 100,
        tools: [{ name: "f", input_schema: { type: "object" } }],
        messages: [{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image", source: { type: "base64", data: "" } }] }]
      }
      const facts = RequestFacts.fromAnthropicMessages(body, new TextEncoder().encode(JSON.stringify(body)), {})
      assert.deepInclude(facts, { endpoint: "messages", toolCount: 1, hasImages: true, maxTokens: 100, messageCount: 1 })
      assert.include(facts.text(), "be brief")
      // images comes first in the file, so it wins: first match wins.
      assert.strictEqual(right(router.decide(facts, {})).route, "images")
      const plain = { model: "m", system: "x", messages: [{ role: "user", content: "hi" }] }
      const d = right(router.decide(RequestFacts.fromAnthropicMessages(plain, new TextEncoder().encode(JSON.stringify(plain)), {}), {}))
      assert.strictEqual(d.route, "messages")
      assert.strictEqual(d.rule, "endpoint:messages")
    }))

  it.effect("a small body proves an input-token range without tokenising", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({ providers: { a: mock }, routes: [{ name: "small", match: { inputTokens: { max: 500 } }, targets: [{ provider: "a", model: "gpt-4o-mini" }] }] })
      let counted = 0
      const base = chat({ model: "m" })
      const facts = { ...base, estimatedInputTokens: () => (counted++, base.estimatedInputTokens()) }
      assert.strictEqual(right(router.decide(facts, {})).route, "small")
      assert.strictEqual(counted, 0)
    }))

  it.effect("tiers: the classifier's tier picks the model, served by the rule's providers", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock, b: mock },
        routes: [{ name: "tiered", targets: [{ provider: "b" }], tiers: { simple: "gpt-4o-mini", moderate: "gpt-4.1", complex: [{ provider: "a", model: "o3" }] } }]
      })
      const simple = right(router.decide(chat({ model: "x", messages: [{ role: "user", content: "hi" }] }), {}))
      assert.strictEqual(simple.tier, "simple")
      assert.deepStrictEqual(names(simple.targets), ["b/gpt-4o-mini"])
      const moderate = right(router.decide(chat({ model: "x", messages: [{ role: "user", content: "Write a SQL query that returns the top customers by order value for each region, and explain it. ".repeat(3) }] }), {}))
      assert.strictEqual(moderate.tier, "moderate")
      assert.deepStrictEqual(names(moderate.targets), ["b/gpt-4.1"])
      const complex = right(router.decide(chat({ model: "x", messages: [{ role: "user", content: "Analyze, compare, refactor and prove the design; derive the complexity and assess the trade-offs. ".repeat(3) }] }), {}))
      assert.strictEqual(complex.tier, "complex")
      assert.deepStrictEqual(names(complex.targets), ["a/o3"])
      assert.isTrue(complex.trace.some((t) => t.step === "tier" && t.detail.startsWith("complex")))
    }))

  it.effect("cascade: a ladder for non-streaming requests, plain failover for streams", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        routes: [{ name: "ladder", cascade: { models: ["gpt-4o-mini", "gpt-4o", "o3"], maxEscalations: 1, signals: { uncertainty: ["not sure"] } } }]
      })
      const d = right(router.decide(chat({ model: "x" }), {}))
      assert.deepStrictEqual(names(d.targets), ["a/gpt-4o-mini"])
      assert.deepStrictEqual(names(d.cascade!.steps), ["a/gpt-4o-mini", "a/gpt-4o", "a/o3"])
      assert.strictEqual(d.cascade!.maxEscalations, 1)
      assert.deepStrictEqual(d.cascade!.signals.uncertainty, ["not sure"])
      assert.isTrue(d.cascade!.signals.truncated)
      const s = right(router.decide(chat({ model: "x", stream: true }), {}))
      assert.isUndefined(s.cascade)
      assert.deepStrictEqual(names(s.targets), ["a/gpt-4o-mini", "a/gpt-4o", "a/o3"])
    }))
})

describe("Router: capabilities and skip reasons", () => {
  const tool = { type: "function", function: { name: "f", parameters: { type: "object" } } }
  const cases: ReadonlyArray<readonly [string, string, Record<string, unknown>, Router.DecideContext]> = [
    ["no_key", "keyed", { model: "m" }, {}],
    ["circuit_open", "gpt-4o", { model: "m" }, { breakers: [{ target: "a/gpt-4o", state: "open", retryAfterMs: 5, consecutiveFailures: 3 }] }],
    ["tools", "o1-mini", { model: "m", tools: [tool] }, {}],
    ["vision", "gpt-4", { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, {}],
    ["json_mode", "claude-sonnet-4-5", { model: "m", response_format: { type: "json_schema", json_schema: {} } }, {}],
    ["max_output", "gpt-4o", { model: "m", max_tokens: 20_000 }, {}],
    ["context_window", "gpt-4", { model: "m", max_tokens: 8_000, messages: [{ role: "user", content: "word ".repeat(400) }] }, {}]
  ]
  it.effect.each(cases)("%s: %s is skipped, the next target serves", ([code, model, body, context]) =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { keyed: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "TEST_UNSET_KEY" }, a: mock, z: mock },
        routes: [{
          name: "r",
          targets: [code === "no_key" ? { provider: "keyed", model: "gpt-4o" } : { provider: "a", model }, { provider: "z", model: "house-model" }]
        }]
      })
      const d = right(router.decide(chat(body), context))
      assert.deepStrictEqual(names(d.targets), ["z/house-model"])
      assert.strictEqual(d.skipped.length, 1)
      assert.strictEqual(d.skipped[0]!.code, code)
      assert.isTrue(d.trace.some((t) => t.step === "target" && t.detail.includes("skipped")))
      assert.isTrue(d.trace.some((t) => t.detail.includes("house-model kept (model not in the catalogue")))
    }))

  it.effect("a 150k-token prompt never goes to a 128k model; all skipped is a typed error with every reason", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock, b: mock },
        routes: [{ name: "r", targets: [{ provider: "a", model: "gpt-4o" }, { provider: "b", model: "gpt-4o-mini" }] }]
      })
      const huge = chat({ model: "x", messages: [{ role: "user", content: "lorem ipsum ".repeat(75_000) }] })
      const error = left(router.decide(huge, {}))
      assert.strictEqual(error._tag, "NoRoutableTarget")
      assert.deepStrictEqual(error.skipped.map((s) => s.code), ["context_window", "context_window"])
      assert.match(error.message, /a\/gpt-4o: ~1\d\d,\d{3} input \+ 0 max output tokens > gpt-4o's context window 128,000/)
      // With the 1M-context model behind them, it goes there.
      const wide = yield* routerFor({
        providers: { a: mock },
        routes: [{ name: "r", targets: [{ provider: "a", model: "gpt-4o" }, { provider: "a", model: "gpt-4.1" }] }]
      })
      assert.deepStrictEqual(names(right(wide.decide(huge, {})).targets), ["a/gpt-4.1"])
    }))

  it.effect("keys: an unset apiKeyEnv skips, a passthrough or keyless local provider does not", () =>
    Effect.gen(function*() {
      const providers = {
        unset: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "K1" },
        set: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "K2" },
        pass: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "K3", passthroughAuth: true },
        local: { kind: "openai", baseUrl: "http://127.0.0.1:9/v1" }
      } as const
      const router = yield* routerFor({
        providers,
        routes: [{ name: "r", targets: [{ provider: "unset" }, { provider: "set" }, { provider: "pass" }, { provider: "local" }] }]
      }, { K2: "sk-x" })
      const d = right(router.decide(chat({ model: "m" }), {}))
      assert.deepStrictEqual(names(d.targets), ["set/m", "pass/m", "local/m"])
      assert.deepStrictEqual(d.skipped.map((s) => [s.code, s.reason]), [["no_key", "provider unset has no key (K1 is not set)"]])
    }))

  it.effect("half-open breakers are kept (the probe), the catalogue extends and overrides", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock },
        models: { catalogue: { "house-model": { contextWindow: 1_000, tools: false }, "gpt-4o": { contextWindow: 2_000_000 } } },
        routes: [{ name: "r", targets: [{ provider: "a", model: "house-model" }, { provider: "a", model: "gpt-4o" }] }]
      })
      const tool = { type: "function", function: { name: "f", parameters: {} } }
      const d = right(router.decide(chat({ model: "m", tools: [tool] }), { breakers: [{ target: "a/gpt-4o", state: "half-open", retryAfterMs: 0, consecutiveFailures: 3 }] }))
      assert.deepStrictEqual(names(d.targets), ["a/gpt-4o"])
      assert.strictEqual(d.skipped[0]!.code, "tools")
    }))

  it.effect("a model asked by name with catalogue providers is served by them", () =>
    Effect.gen(function*() {
      const router = yield* routerFor({
        providers: { a: mock, b: mock, c: mock },
        models: { catalogue: { "house-model": { providers: ["c", "b"] } } }
      })
      assert.deepStrictEqual(names(right(router.decide(chat({ model: "house-model" }), {})).targets), ["c/house-model", "b/house-model"])
    }))
})

describe("Router: weighted load balancing", () => {
  const weighted = {
    providers: { a: mock, b: mock, c: mock, d: mock },
    routes: [{ name: "lb", targets: [{ provider: "a", weight: 3 }, { provider: "b", weight: 1 }, { provider: "c" }, { provider: "d", weight: 1 }] }]
  }
  it.effect("deterministic under a seed; unweighted targets keep their place", () =>
    Effect.gen(function*() {
      const router = yield* routerFor(weighted)
      for (let seed = 0; seed < 50; seed++) {
        const one = names(right(router.decide(chat({ model: "m" }), { seed })).targets)
        const two = names(right(router.decide(chat({ model: "m" }), { seed })).targets)
        assert.deepStrictEqual(one, two)
        assert.sameMembers(one.slice(0, 2), ["a/m", "b/m"])
        assert.deepStrictEqual(one.slice(2), ["c/m", "d/m"])
      }
    }))

  it.effect("roughly proportional to weight over many draws", () =>
    Effect.gen(function*() {
      const router = yield* routerFor(weighted)
      const draws = 20_000
      let a = 0
      for (let seed = 0; seed < draws; seed++) {
        if (right(router.decide(chat({ model: "m" }), { seed: seed * 2654435761 })).targets[0].provider.name === "a") a++
      }
      // Expected 0.75; the binomial standard deviation over 20,000 draws is about 0.003.
      assert.closeTo(a / draws, 0.75, 0.02)
    }))
})

describe("Config: routing sections", () => {
  it.effect.each([
    [{ routes: [{ name: "r" }] }, "expected targets, tiers or cascade"],
    [{ routes: [{ name: "r", tiers: { simple: "a", moderate: "b", complex: [{ provider: "nope" }] } }] }, `routes.0.tiers.complex.0.provider: unknown provider "nope"`],
    [{ routes: [{ name: "r", cascade: { models: ["a"], targets: [{ provider: "p" }] } }] }, "expected exactly one of models or targets"],
    [{ routes: [{ name: "r", targets: [{ provider: "p", weight: 0 }] }] }, "expected a weight > 0"],
    [{ routes: [{ name: "r", match: { maxTokens: { min: 5, max: 1 } }, targets: [{ provider: "p" }] }] }, "expected min <= max"],
    [{ models: { catalogue: { m: { providers: ["ghost"] } } } }, `models.catalogue.m.providers: unknown provider "ghost"`]
  ] as const)("refuses %j", ([input, message]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(configFor({ providers: { p: { kind: "mock" } }, ...input } as never))
      assert.include(error.message, message)
    }))
})

describe("Latency", () => {
  it.effect("an EWMA per target, snapshots are immutable", () =>
    Effect.gen(function*() {
      const latency = yield* Latency.make
      yield* latency.observe("a/m", 100)
      const before = yield* latency.snapshot()
      yield* latency.observe("a/m", 200)
      yield* latency.observe("b/m", -1)
      const after = yield* latency.snapshot()
      assert.strictEqual(before.get("a/m"), 100)
      assert.closeTo(after.get("a/m")!, 100 + Latency.ALPHA * 100, 1e-9)
      assert.isFalse(after.has("b/m"))
    }))
})
