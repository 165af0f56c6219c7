/**
 * An upstream call that no one waits for any more is cut off, before its provider has answered:
 * when the client leaves, and when the `total` limit runs out. Real sockets on both sides; the
 * mock upstream holds "gated" answers and says when their connections close.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

class Upstream extends Effect.Tag("test/AbortUpstream")<Upstream, MockUpstream.MockUpstream>() {}

const Env = Layer.unwrapScoped(
  Effect.map(MockUpstream.make, (upstream) =>
    Layer.merge(
      Tollgate.layer({
        retry: { attempts: 0 },
        cache: { enabled: false, coalesce: false },
        providers: {
          up: { kind: "openai", baseUrl: upstream.url },
          short: { kind: "openai", baseUrl: upstream.url, timeouts: { total: "500ms" } }
        },
        routes: [{ name: "short", match: { model: "gated-short" }, targets: [{ provider: "short", model: "gated" }] }]
      }),
      Layer.succeed(Upstream, upstream)
    ))
)

const post = (baseUrl: string, model: string, signal?: AbortSignal) =>
  fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model, messages: [{ role: "user", content: "wait for it" }] }),
    ...(signal === undefined ? {} : { signal })
  })

describe("Aborting an upstream call", () => {
  layer(Env, { excludeTestServices: true })((it) => {
    it.effect("a client that leaves before the provider answers closes the upstream request; the row says client_aborted", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const controller = new AbortController()
        const answered = post(baseUrl, "gated", controller.signal).then(() => "answered", () => "gone")
        yield* upstream.awaitHeld(1)
        controller.abort()
        assert.strictEqual(yield* Effect.promise(() => answered), "gone")
        // The held answer is dropped when its connection closes: tollgate hung up on the provider.
        yield* upstream.awaitHeldWhere((held) => held === 0)
        const rows = yield* Tollgate.awaitRows(1)
        assert.deepInclude(rows[0]!, { status: 499, aborted: 1, error_type: "client_aborted", requested_model: "gated" })
      }))

    it.effect("a provider that has not answered when `total` runs out is cut off: 504, and its request is closed", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        const upstream = yield* Upstream
        const response = yield* Effect.promise(() => post(baseUrl, "gated-short"))
        assert.strictEqual(response.status, 504)
        const body = yield* Effect.promise(() => response.json() as Promise<{ error: { code: string } }>)
        assert.strictEqual(body.error.code, "upstream_timeout")
        yield* upstream.awaitHeldWhere((held) => held === 0)
        const rows = yield* Tollgate.awaitRows(2)
        assert.deepInclude(rows[1]!, { status: 504, error_type: "upstream_timeout_total" })
      }))
  })
})
