/**
 * A cached answer, and the conversions that let one answer serve both kinds of request: a JSON
 * completion assembled from a cached stream's chunks, or a stream synthesised from a cached JSON
 * completion. Both shapes are what the official `openai` SDK accepts.
 */
import * as Data from "effect/Data"
import type { Usage } from "../Domain/Usage.js"

export interface CachedAnswer {
  /** What was cached: a JSON completion, or the `data:` payloads of a stream ([DONE] excluded). */
  readonly kind: "json" | "stream"
  readonly json: string
  readonly events: ReadonlyArray<string>
  readonly provider: string
  /** The model the provider reported. */
  readonly model: string
  readonly usage: Usage
  /** What the answer cost when it was bought (USD), or null if unpriced. */
  readonly costUsd: number | null
}

/**
 * A flight that was about to call upstream found its answer stored by another replica's identical
 * call (the shared tier, `Cache/Redis.ts`): every request of the flight is served it as a hit.
 */
export class AnsweredElsewhere extends Data.TaggedError("AnsweredElsewhere")<{
  readonly answer: CachedAnswer
  /** When it expires (Unix ms), for the tiers it fills. */
  readonly expiresAt: number
}> {}

/** Rough memory footprint, for the LRU's byte budget. */
export const sizeOf = (answer: CachedAnswer): number =>
  256 + answer.json.length * 2 + answer.events.reduce((n, e) => n + e.length * 2 + 16, 0)

type Json = Record<string, unknown>

const isUsageOnly = (chunk: Json) => Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage != null

/** The chat.completion a stream of chunks adds up to. */
export const assemble = (events: ReadonlyArray<string>): Json => {
  const chunks = events.map((e) => JSON.parse(e) as Json)
  const first = chunks[0] ?? {}
  const choices = new Map<number, { role: string; content: string | null; refusal: string | null; tool_calls: Array<Json>; finish_reason: unknown }>()
  let usage: unknown = undefined
  for (const chunk of chunks) {
    if (chunk.usage != null) usage = chunk.usage
    for (const c of (chunk.choices as Array<Json> | undefined) ?? []) {
      const index = typeof c.index === "number" ? c.index : 0
      const choice = choices.get(index) ?? { role: "assistant", content: null, refusal: null, tool_calls: [], finish_reason: null }
      const delta = (c.delta ?? {}) as Json
      if (typeof delta.role === "string") choice.role = delta.role
      if (typeof delta.content === "string") choice.content = (choice.content ?? "") + delta.content
      if (typeof delta.refusal === "string") choice.refusal = (choice.refusal ?? "") + delta.refusal
      for (const call of (delta.tool_calls as Array<Json> | undefined) ?? []) {
        const i = typeof call.index === "number" ? call.index : 0
        const fn = (call.function ?? {}) as Json
        const existing = choice.tool_calls[i] as { id?: unknown; type?: unknown; function: { name: string; arguments: string } } | undefined
        if (existing === undefined) {
          choice.tool_calls[i] = {
            id: call.id,
            type: call.type ?? "function",
            function: { name: typeof fn.name === "string" ? fn.name : "", arguments: typeof fn.arguments === "string" ? fn.arguments : "" }
          }
        } else {
          if (call.id !== undefined) existing.id = call.id
          if (typeof fn.name === "string") existing.function.name += fn.name
          if (typeof fn.arguments === "string") existing.function.arguments += fn.arguments
        }
      }
      if (c.finish_reason != null) choice.finish_reason = c.finish_reason
      choices.set(index, choice)
    }
  }
  return {
    id: first.id,
    object: "chat.completion",
    created: first.created,
    model: first.model,
    ...(first.system_fingerprint === undefined ? {} : { system_fingerprint: first.system_fingerprint }),
    choices: [...choices.entries()].sort(([a], [b]) => a - b).map(([index, c]) => ({
      index,
      message: {
        role: c.role,
        content: c.content,
        refusal: c.refusal,
        ...(c.tool_calls.length === 0 ? {} : { tool_calls: c.tool_calls.filter((t) => t !== undefined) })
      },
      logprobs: null,
      finish_reason: c.finish_reason
    })),
    ...(usage === undefined ? {} : { usage })
  }
}

/** The chunks a JSON completion would have streamed as (usage chunk last, as with include_usage). */
export const synthesize = (completion: Json): Array<string> => {
  const base = {
    id: completion.id,
    object: "chat.completion.chunk",
    created: completion.created,
    model: completion.model,
    ...(completion.system_fingerprint === undefined ? {} : { system_fingerprint: completion.system_fingerprint })
  }
  const events: Array<string> = []
  for (const choice of (completion.choices as Array<Json> | undefined) ?? []) {
    const index = choice.index ?? 0
    const message = (choice.message ?? {}) as Json
    events.push(JSON.stringify({ ...base, choices: [{ index, delta: { role: message.role ?? "assistant", content: "" }, finish_reason: null }] }))
    if (typeof message.content === "string" && message.content.length > 0) {
      events.push(JSON.stringify({ ...base, choices: [{ index, delta: { content: message.content }, finish_reason: null }] }))
    }
    if (typeof message.refusal === "string" && message.refusal.length > 0) {
      events.push(JSON.stringify({ ...base, choices: [{ index, delta: { refusal: message.refusal }, finish_reason: null }] }))
    }
    const calls = (message.tool_calls as Array<Json> | undefined) ?? []
    calls.forEach((call, i) => {
      events.push(JSON.stringify({ ...base, choices: [{ index, delta: { tool_calls: [{ index: i, ...call }] }, finish_reason: null }] }))
    })
    events.push(JSON.stringify({ ...base, choices: [{ index, delta: {}, finish_reason: choice.finish_reason ?? "stop" }] }))
  }
  if (completion.usage != null) events.push(JSON.stringify({ ...base, choices: [], usage: completion.usage }))
  return events
}

/** The body of a JSON answer. */
export const jsonBody = (answer: CachedAnswer): string =>
  answer.kind === "json" ? answer.json : JSON.stringify(assemble(answer.events))

/** The SSE body of a streamed answer; the usage chunk only for clients that asked for it. */
export const sseEvents = (answer: CachedAnswer, includeUsage: boolean): Array<string> => {
  const events = answer.kind === "stream" ? [...answer.events] : synthesize(JSON.parse(answer.json) as Json)
  const kept = includeUsage ? events : events.filter((e) => !(e.includes("\"usage\"") && isUsageOnly(JSON.parse(e) as Json)))
  return [...kept.map((e) => `data: ${e}\n\n`), "data: [DONE]\n\n"]
}

/** Whether an answer may be stored under `deterministic` mode: no tool calls in it. */
export const hasToolCalls = (answer: Pick<CachedAnswer, "kind" | "json" | "events">): boolean =>
  answer.kind === "json"
    ? answer.json.includes("\"tool_calls\"") && /"tool_calls"\s*:\s*\[\s*\{/.test(answer.json)
    : answer.events.some((e) => e.includes("\"tool_calls\""))
