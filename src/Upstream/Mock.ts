/**
 * The built-in simulated model: what `tollgate start` serves when no provider is configured, and
 * what demos and tests run against. Deterministic: the same request gets the same answer, token
 * counts and chunking. Configurable latency, chunk count, chunk gap and failure injection; streams
 * real SSE bytes, on `Clock`, so `TestClock` drives it, as a `ByteSource` like any provider's body.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as Bytes from "../Bytes.js"
import type { MockProvider } from "../Config/Schema.js"
import { fromStatus } from "../Domain/Errors.js"
import * as Sse from "../Sse.js"
import * as RequestFacts from "../Domain/RequestFacts.js"
import * as Tokens from "../Tokens.js"
import type { Adapter } from "./Exchange.js"

const encoder = new TextEncoder()

/** The text of the last user message, parts joined. */
const lastUserText = (messages: ReadonlyArray<unknown>): string => {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown }
    if (m?.role !== "user") continue
    if (typeof m.content === "string") return m.content
    if (Array.isArray(m.content)) {
      return m.content.map((p: { text?: unknown }) => (typeof p?.text === "string" ? p.text : "")).join("")
    }
  }
  return ""
}

/** Splits `text` into `n` nearly equal pieces (fewer if the text is short). */
export const split = (text: string, n: number): Array<string> => {
  if (text.length === 0) return [""]
  const size = Math.ceil(text.length / Math.min(n, text.length))
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

/** Stable id derived from the request, so repeats are byte-identical. */
const idOf = (seed: string): string => {
  let h = 2166136261
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619)
  return `chatcmpl-mock${(h >>> 0).toString(16).padStart(8, "0")}`
}

const CREATED = 1_700_000_000

export const make = (name: string, config: MockProvider) =>
  Effect.gen(function*() {
    const served = yield* Ref.make(0)
    // The simulated model counts tokens on every answer: load the encoder before the first one.
    yield* Tokens.warm

    const adapter: Adapter = (request) =>
      Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(served, (k) => k + 1)
        if (config.latencyMs > 0) yield* Effect.sleep(config.latencyMs)
        if (config.failStatus !== undefined && n % config.failEvery === 0) {
          return yield* fromStatus({
            provider: name,
            status: config.failStatus,
            headers: { "content-type": "application/json" },
            body: encoder.encode(JSON.stringify({
              error: { message: `simulated failure (${config.failStatus})`, type: "mock_error", code: "simulated_failure" }
            })),
            retryAfterMs: undefined
          })
        }
        const json = JSON.parse(new TextDecoder().decode(request.body)) as {
          model: string
          messages: ReadonlyArray<unknown>
          tools?: unknown
          stream?: boolean
          stream_options?: { include_usage?: boolean } | null
        }
        const text = config.reply ?? `You said: ${lastUserText(json.messages)}`
        // Counted as the proxy estimates a chat request, so a simulated answer and an estimate agree.
        const promptTokens = RequestFacts.fromOpenAiChat(json as unknown as Record<string, unknown>, request.body, {}).estimatedInputTokens()
        const completionTokens = yield* Tokens.countText(text)
        const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
        const id = idOf(`${json.model}\u0000${text}`)
        const base = { id, object: "chat.completion.chunk", created: CREATED, model: json.model, system_fingerprint: "fp_mock" }

        if (json.stream === true) {
          const events: Array<string> = [
            Sse.event(JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }))
          ]
          for (const piece of split(text, config.chunks)) {
            events.push(Sse.event(JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })))
          }
          events.push(Sse.event(JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })))
          if (json.stream_options?.include_usage === true) {
            events.push(Sse.event(JSON.stringify({ ...base, choices: [], usage })))
          }
          events.push(Sse.DONE)
          const bytes = Stream.fromIterable(events.map((e) => encoder.encode(e)))
          // A source like any provider's body, its stream run on this fiber's runtime (its Clock).
          const source = yield* Bytes.fromStream(
            config.chunkDelayMs > 0
              ? bytes.pipe(
                Stream.zipWithIndex,
                Stream.mapEffect(([chunk, i]) => (i === 0 ? Effect.succeed(chunk) : Effect.as(Effect.sleep(config.chunkDelayMs), chunk)))
              )
              : bytes
          )
          return {
            status: 200,
            headers: { "content-type": "text/event-stream; charset=utf-8" },
            body: { _tag: "Stream", source }
          } as const
        }
        const completion = {
          id,
          object: "chat.completion",
          created: CREATED,
          model: json.model,
          system_fingerprint: "fp_mock",
          choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
          usage
        }
        return {
          status: 200,
          headers: { "content-type": "application/json" },
          body: { _tag: "Bytes", bytes: encoder.encode(JSON.stringify(completion)) }
        } as const
      })
    return adapter
  })
