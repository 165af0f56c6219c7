/**
 * The Redis connection at start: a server that cannot be reached stops the start with one line
 * naming the server and the reason (not ioredis's own "unhandled error event" on stderr).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createServer } from "node:net"
import * as Config from "../../src/Config.js"
import * as RedisStore from "../../src/Redis.js"

describe("the Redis connection", () => {
  it.scoped("a server nobody listens on: a StoreError naming the URL and the refusal", () =>
    Effect.gen(function*() {
      // A port that was free a moment ago: nothing listens there.
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const server = createServer().listen(0, "127.0.0.1", () => {
            const { port } = server.address() as { port: number }
            server.close(() => resolve(port))
          })
        })
      )
      const errors: Array<unknown> = []
      const listener = (...args: Array<unknown>) => errors.push(args)
      const original = console.error
      console.error = listener
      const exit = yield* Layer.build(RedisStore.layer.pipe(Layer.provide(Config.layerFrom({ redis: `redis://127.0.0.1:${port}` })))).pipe(
        Effect.exit,
        Effect.ensuring(Effect.sync(() => {
          console.error = original
        }))
      )
      assert.isTrue(exit._tag === "Failure")
      if (exit._tag === "Failure") {
        const message = String((exit.cause as { error?: { message?: string } }).error?.message ?? exit.cause)
        assert.include(message, `cannot reach Redis at redis://127.0.0.1:${port}`)
        assert.include(message, "ECONNREFUSED")
      }
      assert.deepStrictEqual(errors, [])
    }))
})
