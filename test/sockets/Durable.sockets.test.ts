/**
 * `database.durable`: a client has its whole answer only once the answer's ledger row is
 * committed, streamed (the terminal event and what follows are held until then) or not. Read
 * straight after the client's last byte, without waiting on the writer, the row is there.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as MockUpstream from "../support/MockUpstream.js"
import * as Tollgate from "../support/Tollgate.js"

const envOf = (durable: boolean) =>
  Layer.unwrapScoped(
    Effect.map(MockUpstream.make, (upstream) =>
      Tollgate.layer({
        retry: { attempts: 0 },
        cache: { enabled: false, coalesce: false },
        providers: { up: { kind: "openai", baseUrl: upstream.url } },
        database: { durable }
      }))
  )

const rowsOf = (requestId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests WHERE request_id = ${requestId}`).pipe(
    Effect.map((rows) => rows[0]!.n)
  )

/** Sends one request and reads its answer to the end; its request id. */
const send = (baseUrl: string, stream: boolean) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "hi" }] })
    })
    const text = await response.text()
    if (stream) assert.include(text, "data: [DONE]")
    return response.headers.get("x-tollgate-request-id")!
  })

describe("database.durable", () => {
  layer(envOf(true), { excludeTestServices: true })((it) => {
    it.effect("on: the row of a stream and of a JSON answer is committed before the client has the answer's end", () =>
      Effect.gen(function*() {
        const { baseUrl } = yield* Tollgate.TestInfo
        for (let i = 0; i < 5; i++) {
          for (const stream of [true, false]) {
            const id = yield* send(baseUrl, stream)
            assert.strictEqual(yield* rowsOf(id), 1, `${stream ? "stream" : "JSON"} ${i}`)
          }
        }
        // One row each: the end and the exchange's close do not book twice.
        const all = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT COUNT(*) AS n FROM requests`)
        assert.strictEqual(all[0]!.n, 10)
      }))
  })
})
