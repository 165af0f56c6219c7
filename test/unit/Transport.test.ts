/**
 * The one reading of why a connection failed, shared by the upstream transport, cloud ingest and
 * the OTLP exporter: the socket's code wherever it sits in the causes, else the innermost message.
 */
import { assert, describe, it } from "@effect/vitest"
import { failureReasonOf } from "../../src/Upstream/Transport.js"

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code })

describe("failureReasonOf", () => {
  it("fetch's 'fetch failed' gives the socket's code from its cause", () => {
    const refused = new TypeError("fetch failed", { cause: withCode("connect ECONNREFUSED 127.0.0.1:9", "ECONNREFUSED") })
    assert.strictEqual(failureReasonOf(refused, "no answer"), "ECONNREFUSED")
  })

  it("undici's own code on the error itself (a timeout phase is read from it)", () => {
    assert.strictEqual(failureReasonOf(withCode("Headers Timeout Error", "UND_ERR_HEADERS_TIMEOUT"), "connection failed"), "UND_ERR_HEADERS_TIMEOUT")
  })

  it("no code anywhere: the innermost message; nothing at all: the fallback", () => {
    assert.strictEqual(failureReasonOf(new Error("outer", { cause: new Error("socket hang up") }), "x"), "socket hang up")
    assert.strictEqual(failureReasonOf(undefined, "connection reset"), "connection reset")
    assert.strictEqual(failureReasonOf("a string", "connection reset"), "connection reset")
  })
})
