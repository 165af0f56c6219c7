/**
 * `tollgate route explain`, run in-process through `Cli.main`: the trace it prints, its JSON, and
 * a property that what it prints is what `Router.decide` returns for the same file and config.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Either, Exit, FastCheck as fc } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cli from "../../src/Cli.js"
import * as Config from "../../src/Config.js"
import * as RequestFacts from "../../src/Domain/RequestFacts.js"
import * as Router from "../../src/Router.js"
import * as Explain from "../../src/Router/Explain.js"

const FIXTURES = path.join(import.meta.dirname, "../fixtures/route")
const CONFIG = path.join(FIXTURES, "tollgate.yaml")

/** Runs the CLI with `args`; what it printed and how it ended. */
const cli = (...args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const current = yield* Effect.console
    const capture: Console.Console = {
      ...current,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.map(String).join(" "))),
      error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.map(String).join(" ")))
    }
    const exit = yield* Cli.main(["node", "tollgate", ...args]).pipe(Effect.withConsole(capture), Effect.provide(NodeContext.layer), Effect.exit)
    return { exit, out: out.join("\n") }
  })

const tempFile = (name: string, text: string) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-route-")), name)
  fs.writeFileSync(file, text)
  return file
}

describe("route explain", () => {
  it.effect("prints alias -> rule -> each target kept or skipped with its reason", () =>
    Effect.gen(function*() {
      const { exit, out } = yield* cli("route", "explain", "--file", path.join(FIXTURES, "tools.json"), "--config", CONFIG)
      assert.isTrue(Exit.isSuccess(exit), out)
      assert.include(out, "request: model fast (chat, stream no, 1 message(s), 1 tool(s)")
      assert.match(out, /alias\s+fast -> gpt-4o-mini/)
      assert.match(out, /rule\s+tools matched \(tools\)/)
      assert.match(out, /claude\/claude-sonnet-4-5 skipped: provider claude has no key \(TOLLGATE_TEST_ROUTE_UNSET_KEY is not set\)/)
      assert.match(out, /openai\/o1-mini skipped: o1-mini does not support tools/)
      assert.match(out, /openai\/gpt-4.1 kept/)
      assert.include(out, "decision: route tools, rule tools: gpt-4o-mini -> openai/gpt-4.1")
    }))

  it.effect("--model, --header and --json; the JSON is the decision", () =>
    Effect.gen(function*() {
      const file = tempFile("req.json", JSON.stringify({ model: "x", messages: [{ role: "user", content: "hello" }] }))
      const { exit, out } = yield* cli("route", "explain", "--file", file, "--config", CONFIG, "--model", "gpt-4", "--header", "x-tollgate-project=alpha", "--json")
      assert.isTrue(Exit.isSuccess(exit), out)
      const json = JSON.parse(out) as Explain.ExplainJson
      assert.deepInclude(json, { ok: true, route: "project", requestedModel: "gpt-4", resolvedModel: "gpt-4.1", targets: ["backup/gpt-4.1"] })
      assert.deepStrictEqual(json.trace.map((t) => t.step), ["override", "rule", "target"])
    }))

  it.effect("nothing can serve: the reasons are printed and the command fails", () =>
    Effect.gen(function*() {
      const file = tempFile("req.json", JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }))
      const config = tempFile("tollgate.yaml", `providers:\n  a: { kind: mock }\nroutes:\n  - { name: r, targets: [ { provider: a } ] }\n`)
      const { exit, out } = yield* cli("route", "explain", "--file", file, "--config", config, "--json")
      assert.isTrue(Exit.isSuccess(exit), out)
      const big = tempFile("big.json", JSON.stringify({ model: "gpt-4o", max_tokens: 100_000, messages: [{ role: "user", content: "hi" }] }))
      const failed = yield* cli("route", "explain", "--file", big, "--config", config)
      assert.isTrue(Exit.isFailure(failed.exit))
      assert.include(failed.out, "a/gpt-4o skipped: max_tokens 100,000 > gpt-4o's max output 16,384")
      assert.include(failed.out, "decision: no target can serve this request")
      assert.include(failed.out, "tollgate: no target can serve model \"gpt-4o\"")
    }))

  it.effect("bad input is a readable error", () =>
    Effect.gen(function*() {
      const file = tempFile("req.json", "{ nope")
      const { exit, out } = yield* cli("route", "explain", "--file", file, "--config", CONFIG)
      assert.isTrue(Exit.isFailure(exit))
      assert.include(out, "is not JSON")
    }))

  it.effect("help text on the command and every option", () =>
    Effect.gen(function*() {
      const { out } = yield* cli("route", "explain", "--help")
      assert.include(out, "Print the routing decision for a request file")
      for (const option of ["--file", "--config", "--model", "--endpoint", "--header", "--seed", "--json"]) assert.include(out, option)
      assert.include(out, "The request body to route")
      assert.include(out, "Seed for weighted load balancing")
    }))
})

/** Random routing configs and requests over a small pool, so rules, skips and LB all happen. */
const MODELS = ["gpt-4o", "gpt-4o-mini", "o1-mini", "gpt-4", "claude-sonnet-4-5", "gpt-4.1", "house-model"] as const
const PROVIDERS = ["p0", "p1", "nokey", "local"] as const
const targetArb = fc.record({
  provider: fc.constantFrom(...PROVIDERS),
  model: fc.option(fc.constantFrom(...MODELS), { nil: undefined }),
  weight: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined })
}).map(({ model, provider, weight }) => ({ provider, ...(model === undefined ? {} : { model }), ...(weight === undefined ? {} : { weight }) }))
const matchArb = fc.record({
  model: fc.constantFrom("gpt-*", "*", "*-mini", "claude-*"),
  stream: fc.boolean(),
  tools: fc.boolean(),
  images: fc.boolean()
}, { requiredKeys: [] })
const configArb = fc.record({
  routes: fc.array(fc.record({ match: matchArb, targets: fc.array(targetArb, { minLength: 1, maxLength: 4 }) }), { maxLength: 3 }),
  alias: fc.boolean(),
  override: fc.boolean()
}).map(({ alias, override, routes }) => ({
  providers: {
    p0: { kind: "mock" as const },
    p1: { kind: "mock" as const },
    nokey: { kind: "openai" as const, baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "TOLLGATE_TEST_PROP_UNSET_KEY" },
    local: { kind: "openai" as const, baseUrl: "http://127.0.0.1:9/v1" }
  },
  models: { aliases: alias ? { fast: "gpt-4o-mini" } : {}, overrides: override ? { "gpt-4": "gpt-4.1" } : {} },
  routes: routes.map((r, i) => ({ name: `r${i}`, ...r }))
}))
const requestArb = fc.record({
  model: fc.constantFrom(...MODELS, "fast", "tollgate:cheap", "tollgate:auto", "gpt-4o:cost", "house-model:quality"),
  stream: fc.boolean(),
  tools: fc.integer({ min: 0, max: 2 }),
  image: fc.boolean(),
  json: fc.boolean(),
  maxTokens: fc.option(fc.constantFrom(100, 10_000, 50_000), { nil: undefined }),
  words: fc.constantFrom(1, 50, 3_000, 140_000)
}).map((r) => ({
  model: r.model,
  stream: r.stream,
  messages: [{ role: "user", content: r.image ? [{ type: "text", text: "look ".repeat(r.words) }, { type: "image_url", image_url: { url: "data:x" } }] : "look ".repeat(r.words) }],
  ...(r.tools > 0 ? { tools: Array.from({ length: r.tools }, (_, i) => ({ type: "function", function: { name: `f${i}`, parameters: {} } })) } : {}),
  ...(r.json ? { response_format: { type: "json_object" } } : {}),
  ...(r.maxTokens === undefined ? {} : { max_tokens: r.maxTokens })
}))
const breakersArb = fc.subarray(PROVIDERS.flatMap((p) => MODELS.map((m) => `${p}/${m}`)), { maxLength: 6 })

const encoder = new TextEncoder()
const factsOf = (body: Record<string, unknown>) => RequestFacts.fromOpenAiChat(body, encoder.encode(JSON.stringify(body)), {})
const configOf = (input: Config.FileConfigInput) => Effect.flatMap(Config.decode(input, "prop"), (file) => Config.resolve(file, undefined))

describe("Router properties", () => {
  it.effect.prop(
    "deterministic, never selects a skipped target, explain renders the same decision",
    { input: configArb, body: requestArb, open: breakersArb, seed: fc.integer() },
    ({ body, input, open, seed }) =>
      Effect.gen(function*() {
        const router = Router.make(yield* configOf(input))
        const context: Router.DecideContext = {
          seed,
          breakers: open.map((target) => ({ target, state: "open" as const, retryAfterMs: 1_000, consecutiveFailures: 3 }))
        }
        const first = router.decide(factsOf(body), context)
        const again = router.decide(factsOf(body), context)
        assert.deepStrictEqual(Explain.toJson(first), Explain.toJson(again))

        const skipped = Either.match(first, { onLeft: (e) => e.skipped, onRight: (d) => d.skipped })
        const skippedNames = new Set(skipped.map((s) => Router.targetName(s.target)))
        if (Either.isRight(first)) {
          const d = first.right
          assert.isAbove(d.targets.length, 0)
          for (const t of d.targets) {
            const name = Router.targetName(t)
            assert.isFalse(skippedNames.has(name), `${name} both kept and skipped`)
            assert.notInclude(open, name)
            assert.notStrictEqual(t.provider.name, "nokey")
          }
        } else {
          assert.isAbove(skipped.length, 0)
        }
        const text = Explain.toText(factsOf(body), first)
        for (const s of skipped) assert.include(text, `${Router.targetName(s.target)} skipped: ${s.reason}`)
      }),
    // CPU-bound (prompts up to 140k words are tokenised), so more time than the default 5 s.
    { timeout: 30_000, fastCheck: { numRuns: 100 } }
  )

  it.effect.prop(
    "what route explain prints is what decide returns",
    { input: configArb, body: requestArb, seed: fc.integer({ min: 0, max: 1_000_000 }) },
    ({ body, input, seed }) =>
      Effect.gen(function*() {
        const config = tempFile("tollgate.yaml", JSON.stringify(input))
        const file = tempFile("req.json", JSON.stringify(body))
        const { out } = yield* cli("route", "explain", "--file", file, "--config", config, "--json", "--seed", String(seed))
        const printed = JSON.parse(out.split("\ntollgate: ")[0]!) as Explain.ExplainJson
        const expected = Explain.toJson(Router.make(yield* configOf(input)).decide(factsOf(body), { seed }))
        assert.deepStrictEqual(printed, JSON.parse(JSON.stringify(expected)))
      }),
    { timeout: 30_000, fastCheck: { numRuns: 25 } }
  )
})
