/**
 * The event log lines, captured with a test Logger installed where the listener is built (its
 * request fibers run on that runtime): a retry and a breaker opening each make one line with
 * their fields, a request that goes well makes none, and `--log-format json` is Effect's JSON logger.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, FiberRef, HashMap, HashSet, Layer, Logger, LogLevel } from "effect"
import * as Admin from "../../src/Admin.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import * as Logging from "../../src/Logging.js"
import * as Tollgate from "../support/Tollgate.js"
import { HttpServer } from "@effect/platform"

interface Line {
  readonly level: string
  readonly message: string
  readonly fields: Record<string, unknown>
}

const capture = () => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    lines.push({ level: logLevel.label, message: text, fields: Object.fromEntries(HashMap.toEntries(annotations)) })
  })
  return { lines, logger }
}

const chat = (baseUrl: string, model: string) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] })
    }).then(async (r) => ({ status: r.status, body: await r.text() }))
  )

describe("event log lines", () => {
  it.scopedLive("a retry and a breaker opening each log one line with their fields; a good request logs none", () => {
    const { lines, logger } = capture()
    return Effect.gen(function*() {
      const config = Config.layerFrom({
        server: { port: 0, admin: false },
        database: { path: Tollgate.tempDbPath() },
        providers: {
          flaky: { kind: "mock", failStatus: 503 },
          fine: { kind: "mock" }
        },
        retry: { attempts: 1, baseDelay: "1ms", maxDelay: "5ms" },
        circuit: { failureThreshold: 2, cooldown: "1h" },
        routes: [
          { name: "bad", match: { model: "broken" }, targets: [{ provider: "flaky", model: "broken" }] },
          { name: "good", targets: [{ provider: "fine" }] }
        ]
      })
      const context = yield* Layer.build(Admin.layerWithoutDependencies.pipe(Layer.provideMerge(Http.layer), Layer.provide(config)))
      const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
      const baseUrl = `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`

      assert.strictEqual((yield* chat(baseUrl, "gpt-4o-mini")).status, 200)
      assert.deepStrictEqual(lines.filter((l) => l.fields.event !== undefined), [])

      // The first try fails (503), the one retry fails too: two failures in a row open the breaker.
      assert.strictEqual((yield* chat(baseUrl, "broken")).status, 503)
      const retries = lines.filter((l) => l.fields.event === "retry")
      assert.strictEqual(retries.length, 1)
      assert.strictEqual(retries[0]!.level, "WARN")
      assert.strictEqual(retries[0]!.fields.target, "flaky/broken")
      assert.strictEqual(retries[0]!.fields.status, 503)
      assert.strictEqual(retries[0]!.fields.error, "upstream_503")
      assert.strictEqual(retries[0]!.fields.retry, 1)
      assert.isAtLeast(retries[0]!.fields.waitMs as number, 0)
      assert.isAtMost(retries[0]!.fields.waitMs as number, 5)
      const breakers = lines.filter((l) => l.fields.event === "breaker")
      assert.strictEqual(breakers.length, 1)
      assert.deepInclude(breakers[0]!.fields, { target: "flaky/broken", state: "open", from: "closed", cooldownMs: 3_600_000 })
      assert.include(breakers[0]!.message, "2 consecutive failures")

      // The next request finds it open: skipped, no new retry or breaker line.
      assert.strictEqual((yield* chat(baseUrl, "broken")).status, 503)
      assert.strictEqual(lines.filter((l) => l.fields.event === "retry" || l.fields.event === "breaker").length, 2)
    }).pipe(Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)))
  })

  it.effect("--log-format json prints one JSON object per line with the event's fields", () =>
    Effect.gen(function*() {
      const printed: Array<string> = []
      const console = {
        log: (...args: Array<unknown>) => void printed.push(args.map(String).join(" ")),
        info: (...args: Array<unknown>) => void printed.push(args.map(String).join(" ")),
        warn: (...args: Array<unknown>) => void printed.push(args.map(String).join(" ")),
        error: (...args: Array<unknown>) => void printed.push(args.map(String).join(" ")),
        debug: (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
      }
      // Effect's console logger writes through the Console service's `unsafe` console.
      yield* Logging.withFormat(Logging.event("warning", "retry", "retrying", { target: "a/b", waitMs: 12 }), "json").pipe(
        Effect.withConsole({ unsafe: console } as never),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      assert.strictEqual(printed.length, 1)
      const line = JSON.parse(printed[0]!) as { message: string; logLevel: string; annotations: Record<string, unknown> }
      assert.strictEqual(line.message, "retrying")
      assert.strictEqual(line.logLevel, "WARN")
      assert.deepStrictEqual(line.annotations, { event: "retry", target: "a/b", waitMs: 12 })
    }))
})
