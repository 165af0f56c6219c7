/** The items of translated Responses answers: per tenant, bounded, the oldest forgotten first. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Items from "../../src/Dialect/Items.js"

describe("ResponseItems", () => {
  it.effect("resolves an item only for the tenant it was given to, and forgets the oldest past its bound", () =>
    Effect.gen(function*() {
      const items = yield* Items.make(3)
      const a = items.scope("project|alice")
      const b = items.scope("project|bob")
      a.remember({ output: [{ id: "fc_1", type: "function_call", name: "f", arguments: "{}", call_id: "c1" }, { id: "msg_1", type: "message" }] })
      assert.deepInclude(a.resolve("fc_1"), { type: "function_call", name: "f" })
      assert.isUndefined(b.resolve("fc_1"), "another tenant sees nothing")
      a.remember({ output: [{ id: "msg_2", type: "message" }, { id: "msg_3", type: "message" }] })
      assert.isUndefined(a.resolve("fc_1"), "the oldest is forgotten past the bound")
      assert.isDefined(a.resolve("msg_3"))
      a.remember({ output: "not a list" })
      a.remember(null)
      assert.isDefined(a.resolve("msg_2"))
    }))
})
