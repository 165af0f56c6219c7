import { assert, describe, it } from "@effect/vitest"
import { SseTap } from "../../src/Sse.js"

const enc = new TextEncoder()
const dec = new TextDecoder()
const chunk = (content: string) => JSON.stringify({ model: "gpt-4o-2024-08-06", choices: [{ index: 0, delta: { content } }] })
const usageChunk = JSON.stringify({ model: "gpt-4o-2024-08-06", choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } })
const body = [chunk("Hel"), chunk("lo"), usageChunk].map((d) => `data: ${d}\n\n`).join("") + "data: [DONE]\n\n"

/** Feeds `text` to the tap in pieces of `size` bytes; returns what the client would receive. */
const feed = (tap: SseTap, text: string, size: number) => {
  const bytes = enc.encode(text)
  let out = ""
  for (let i = 0; i < bytes.length; i += size) out += dec.decode(tap.push(bytes.slice(i, i + size)), { stream: true })
  return out + dec.decode(tap.end())
}

describe("SseTap", () => {
  it("passes bytes through untouched and reads usage, model and [DONE]", () => {
    for (const size of [1, 3, 7, 64, 10_000]) {
      const tap = new SseTap(false)
      assert.strictEqual(feed(tap, body, size), body, `piece size ${size}`)
      assert.deepStrictEqual(tap.usage, { prompt_tokens: 9, completion_tokens: 4 })
      assert.strictEqual(tap.model, "gpt-4o-2024-08-06")
      assert.isTrue(tap.done)
    }
  })

  it("removes only the usage-only chunk when the proxy asked for usage", () => {
    const expected = [chunk("Hel"), chunk("lo")].map((d) => `data: ${d}\n\n`).join("") + "data: [DONE]\n\n"
    for (const size of [1, 5, 64, 10_000]) {
      const tap = new SseTap(true)
      assert.strictEqual(feed(tap, body, size), expected, `piece size ${size}`)
      assert.deepStrictEqual(tap.usage, { prompt_tokens: 9, completion_tokens: 4 })
    }
  })

  it("never holds back a complete event", () => {
    const tap = new SseTap(true)
    const first = `data: ${chunk("Hel")}\n\n`
    assert.strictEqual(dec.decode(tap.push(enc.encode(first + "data: {\"partial"))), first)
  })

  it("understands CRLF framing and multi-line data", () => {
    const tap = new SseTap(true)
    const text = `event: message\r\ndata: ${usageChunk}\r\n\r\ndata: [DONE]\r\n\r\n`
    assert.strictEqual(feed(tap, text, 4), "data: [DONE]\r\n\r\n")
    assert.isTrue(tap.done)
  })

  it("keeps multi-byte characters intact across piece boundaries", () => {
    const text = `data: ${chunk("héllo wörld 日本語 🎉")}\n\n`
    const tap = new SseTap(true)
    assert.strictEqual(feed(tap, text, 1), text)
    assert.strictEqual(tap.completionText(), "héllo wörld 日本語 🎉")
  })

  it("collects content and tool-call arguments for estimates", () => {
    const tap = new SseTap(false)
    const tool = JSON.stringify({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: "get_weather", arguments: "{\"city\":" } }] } }] })
    feed(tap, `data: ${chunk("Hi ")}\n\ndata: ${tool}\n\n`, 9)
    assert.strictEqual(tap.completionText(), "Hi get_weather{\"city\":")
    assert.isUndefined(tap.usage)
    assert.isFalse(tap.done)
  })
})
