/**
 * `tollgate request --file req.json`: one request through the configured routes, as a client would
 * send it: a listener is started on a free port of 127.0.0.1 in this process, the body is POSTed to
 * it, and what tollgate added (its `x-tollgate-*` headers) and what the request cost (its ledger
 * row, in the configured ledger) are printed beside the answer.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as Config from "../Config.js"
import { describeLedger } from "../Store/Url.js"
import * as Money from "../Domain/Money.js"
import * as Http from "../Http.js"
import * as Ledger from "../Ledger.js"
import * as Telemetry from "../Telemetry.js"
import { UsageError } from "./Shared.js"

export interface RequestFlags {
  readonly file: string
  readonly endpoint: "chat" | "messages" | "responses" | "embeddings" | "completions"
  readonly json: boolean
  readonly config: Option.Option<string>
}

const PATHS = {
  chat: "/v1/chat/completions",
  messages: "/v1/messages",
  responses: "/v1/responses",
  embeddings: "/v1/embeddings",
  completions: "/v1/completions"
} as const

/** The ledger row of this request, once written (none if it is not there within a few seconds). */
const rowOf = (id: string) =>
  Effect.flatMap(Telemetry.Telemetry, (telemetry) =>
    telemetry.written.changes.pipe(
      Stream.mapEffect(() => Effect.zipRight(telemetry.flush, Ledger.findRequest(id))),
      Stream.filter(Option.isSome),
      Stream.runHead,
      Effect.map(Option.flatten),
      Effect.timeoutTo({ duration: "5 seconds", onTimeout: () => Option.none(), onSuccess: (row) => row })
    ))

export const run = (flags: RequestFlags) =>
  Effect.gen(function*() {
    const body = yield* Effect.try({
      try: () => fs.readFileSync(flags.file),
      catch: (error) => new UsageError({ message: `cannot read ${flags.file}: ${error instanceof Error ? error.message : String(error)}` })
    })
    const config = yield* Config.load({ configPath: Option.getOrUndefined(flags.config), port: 0, host: "127.0.0.1" })
    const send = Effect.gen(function*() {
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("the listener has no TCP address")
      const key = config.server.apiKeys[0]
      const response = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${address.port}${PATHS[flags.endpoint]}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
          body
        })
      )
      const text = yield* Effect.promise(() => response.text())
      const added: Record<string, string> = {}
      response.headers.forEach((value, name) => {
        if (name.startsWith("x-tollgate-")) added[name] = value
      })
      // The row is booked when the answer is over, which can be just after its last byte reached
      // this client, and written by the ledger's writer: read back once it has been written (on
      // the writer's own signal), flushed meanwhile so that it does not linger.
      const id = added["x-tollgate-request-id"]
      const row = id === undefined ? Option.none() : yield* rowOf(id)
      const cost = Option.match(row, {
        onNone: () => null,
        onSome: (r) => ({ usd: r.cost_usd, priced: r.priced === 1, inputTokens: r.input_tokens, outputTokens: r.output_tokens })
      })
      if (flags.json) {
        return yield* Console.log(JSON.stringify({
          status: response.status,
          headers: added,
          body: text,
          cost: cost === null ? null : { ...cost, usd: Money.jsonOrNull(cost.usd) },
          ledger: describeLedger(config)
        }, null, 2))
      }
      yield* Console.log(`HTTP ${response.status}`)
      for (const [name, value] of Object.entries(added)) yield* Console.log(`${name}: ${value}`)
      yield* Console.log(`\n${text}${text.endsWith("\n") ? "" : "\n"}`)
      yield* Console.log(
        cost === null
          ? "cost: no ledger row"
          : `cost: ${cost.usd === null ? "unpriced" : Money.usd(cost.usd)}${cost.priced || cost.usd === null ? "" : " (estimated)"}` +
            ` (${cost.inputTokens ?? 0} input, ${cost.outputTokens ?? 0} output tokens; row ${id} in ${describeLedger(config)})`
      )
    })
    return yield* send.pipe(
      Effect.provide(Http.layer.pipe(Layer.provide(Layer.succeed(Config.TollgateConfig, config))))
    )
  })
