/**
 * `follow`, how a provider's stream is passed on with no Effect between chunks: what is buffered
 * when it starts goes out at once, the rest as it comes, then the end, once; a pause from `data`
 * holds; the early stop destroys the source.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { PassThrough } from "node:stream"
import { follow } from "../../src/Node/Readable.js"

const text = (chunk: Uint8Array) => Buffer.from(chunk).toString("utf8")

/** Resolves once Node has run what is queued now (next ticks, microtasks and one check phase). */
const turn = () => new Promise((resolve) => setImmediate(resolve))

describe("follow (a Node stream passed on)", () => {
  it.live("what is buffered goes out before follow returns; the rest as it comes; then the end, once", () =>
    Effect.promise(async () => {
      const source = new PassThrough()
      source.write("first")
      const seen: Array<string> = []
      follow(source, { data: (chunk) => seen.push(text(chunk)), end: () => seen.push("END"), error: () => seen.push("ERROR") })
      assert.deepStrictEqual(seen, ["first"], "the buffered chunk is passed on in the caller's own step")
      source.write("second")
      source.end()
      await turn()
      await turn()
      assert.deepStrictEqual(seen, ["first", "second", "END"])
    }))

  it.live("a pause from data holds until the caller resumes", () =>
    Effect.promise(async () => {
      const source = new PassThrough()
      source.write("first")
      const seen: Array<string> = []
      follow(source, {
        data: (chunk) => {
          seen.push(text(chunk))
          source.pause()
        },
        end: () => seen.push("END"),
        error: () => seen.push("ERROR")
      })
      source.write("second")
      await turn()
      await turn()
      assert.deepStrictEqual(seen, ["first"], "paused after the first chunk")
      source.resume()
      await turn()
      assert.deepStrictEqual(seen, ["first", "second"])
    }))

  it.live("a source that ended or failed before it was followed is answered at once", () =>
    Effect.promise(async () => {
      const ended = new PassThrough()
      ended.end()
      ended.resume()
      await turn()
      const failed = new PassThrough()
      failed.on("error", () => {})
      failed.destroy(new Error("boom"))
      await turn()
      const seen: Array<string> = []
      follow(ended, { data: () => seen.push("data"), end: () => seen.push("ended: END"), error: () => seen.push("ended: ERROR") })
      follow(failed, { data: () => seen.push("data"), end: () => seen.push("failed: END"), error: (cause) => seen.push(`failed: ${String(cause)}`) })
      assert.deepStrictEqual(seen, ["ended: END", "failed: Error: boom"])
    }))

  it.live("the early stop destroys a source that is still open", () =>
    Effect.promise(async () => {
      const source = new PassThrough()
      const stop = follow(source, { data: () => {}, end: () => {}, error: () => {} })
      stop()
      await turn()
      assert.isTrue(source.destroyed)
    }))
})
