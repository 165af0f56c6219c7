/**
 * The listener itself, with a scripted request program behind it: a response Node refuses to write
 * still ends the exchange (500, not a hung client), a request's fiber runs on the listener's own
 * scheduler, and a client that goes away interrupts it. Its `HttpServer` gives the bound address
 * and refuses to serve a second app; a port already taken fails the layer with a `ServeError`.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { HttpServer } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, FiberId, Layer } from "effect"
import * as Circuit from "../../src/Circuit.js"
import * as Config from "../../src/Config.js"
import * as Http from "../../src/Http.js"
import { IoScheduler } from "../../src/Node/IoScheduler.js"
import * as Pricing from "../../src/Pricing.js"
import * as Models from "../../src/Models.js"
import * as Proxy from "../../src/Proxy.js"
import * as Store from "../../src/Store.js"
import * as Telemetry from "../../src/Telemetry.js"

const started = Deferred.unsafeMake<void>(FiberId.none)
const interrupted = Deferred.unsafeMake<void>(FiberId.none)

// A header value Node refuses (a line break): writing the head throws.
const chatCompletions = () => Effect.succeed(HttpServerResponse.text("never sent", { headers: { "x-bad": "a\nb" } }))
// Never answers; records its interruption.
const messages = () =>
  Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
    Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
  )

const ScriptedProxy = Layer.succeed(Proxy.Proxy, {
  serve: (dialect) => (dialect.id === "openai-chat" ? chatCompletions : messages),
  chatCompletions,
  messages,
  // Says which scheduler the request's fiber runs on.
  countTokens: () =>
    Effect.withFiberRuntime((fiber) =>
      Effect.succeed(HttpServerResponse.text(fiber.currentScheduler instanceof IoScheduler ? "IoScheduler" : fiber.currentScheduler.constructor.name))
    ),
  storedResponse: () => chatCompletions
})

const Env = Http.layerWithoutDependencies.pipe(
  Layer.provide(Layer.mergeAll(ScriptedProxy, Models.layer.pipe(Layer.provide(Pricing.layer)), Circuit.layer, Telemetry.layerWith({}).pipe(Layer.provide(Store.layerAt(":memory:"))))),
  Layer.provide(Config.layerFrom({ server: { port: 0 }, providers: { sim: { kind: "mock" } } }))
)

const urlOf = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
})

describe("the listener", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a response Node cannot write becomes a 500, not a hung request", () =>
      Effect.gen(function*() {
        const url = yield* urlOf
        const response = yield* Effect.promise(() =>
          fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
        )
        assert.strictEqual(response.status, 500)
        const body = (yield* Effect.promise(() => response.json())) as { error: { code: string } }
        assert.strictEqual(body.error.code, "internal_error")
      }))

    it.effect("a client that goes away interrupts its request's fiber", () =>
      Effect.gen(function*() {
        const url = yield* urlOf
        const controller = new AbortController()
        const pending = fetch(`${url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}", signal: controller.signal })
          .catch(() => undefined)
        // Abort once the program has the request, then wait for its own signal that it was interrupted.
        yield* Deferred.await(started).pipe(Effect.timeout("10 seconds"))
        controller.abort()
        yield* Deferred.await(interrupted).pipe(Effect.timeout("10 seconds"))
        yield* Effect.promise(() => pending)
      }))

    it.effect("a request's fiber runs on the listener's scheduler", () =>
      Effect.gen(function*() {
        const url = yield* urlOf
        const response = yield* Effect.promise(() =>
          fetch(`${url}/v1/messages/count_tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
        )
        assert.strictEqual(yield* Effect.promise(() => response.text()), "IoScheduler")
      }))

    it.scoped("its HttpServer refuses to serve another app beside tollgate's routes", () =>
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        const exit = yield* Effect.exit(server.serve(Effect.succeed(HttpServerResponse.text("other app"))))
        if (!Exit.isFailure(exit)) return assert.fail("serve succeeded")
        assert.isTrue(Cause.isDie(exit.cause))
        assert.include(String(Cause.squash(exit.cause)), "answers its own routes")
        // Still tollgate's listener only: an unknown path is its own 404.
        const url = yield* urlOf
        const response = yield* Effect.promise(() => fetch(`${url}/nowhere`))
        assert.strictEqual(response.status, 404)
      }))

    it.scoped("a port already taken fails the layer with a ServeError", () =>
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        const port = server.address._tag === "TcpAddress" ? server.address.port : 0
        const second = Http.layerWithoutDependencies.pipe(
          Layer.provide(Layer.mergeAll(ScriptedProxy, Models.layer.pipe(Layer.provide(Pricing.layer)), Circuit.layer, Telemetry.layerWith({}).pipe(Layer.provide(Store.layerAt(":memory:"))))),
          Layer.provide(Config.layerFrom({ server: { port }, providers: { sim: { kind: "mock" } } }))
        )
        const error = yield* Effect.flip(Layer.build(second))
        assert.strictEqual(error._tag, "ServeError")
        assert.include(String((error as { cause?: { code?: string } }).cause?.code), "EADDRINUSE")
      }))
  })
})
