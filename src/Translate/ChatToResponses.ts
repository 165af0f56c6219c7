/**
 * OpenAI `chat.completion` -> OpenAI Responses `response` object, and the pieces the stream
 * translator (`StreamToResponses.ts`) shares with it: the response envelope, item ids, usage.
 *
 * The first choice is used (tollgate never asks for more than one). Output items, in the order a
 * Responses model writes them: a `reasoning` item when the provider returned reasoning text
 * (`reasoning_content`, as DeepSeek does and as tollgate's Anthropic translation writes thinking),
 * a `message` item (its `output_text` part, and a `refusal` part if the model refused), then one
 * `function_call` item per tool call. `finish_reason` "length" makes the response `incomplete`
 * with `incomplete_details.reason: "max_output_tokens"` ("content_filter": reason
 * "content_filter"); anything else `completed`.
 *
 * The envelope echoes the request's settings the way OpenAI does (`instructions`, `tools`,
 * `tool_choice`, `text`, `parallel_tool_calls`, `temperature`, `top_p`, `max_output_tokens`,
 * `reasoning`, `metadata`, `user`), with OpenAI's defaults where the client set none, and
 * `store: false`: nothing is kept, so no later request can refer to this one.
 */
import { asArray, asRecord, isRecord, type Json, num, str } from "./Common.js"
import { nowSeconds } from "./MessageToOpenAi.js"

export interface ChatToResponsesOptions {
  /** The Responses request, whose settings the answer echoes. */
  readonly request?: unknown
  /** Reported when the provider names no model. */
  readonly requestedModel?: string
  /** Unix seconds for `created_at` when the provider gives none. Default: now. */
  readonly created?: number
}

/** Response ids start with `resp_`; the chat id is kept behind it for tracing. */
export const responseIdOf = (chatId: unknown): string => `resp_${str(chatId) ?? "tollgate"}`

/** The message item's id (`msg_`), the reasoning item's (`rs_`), a function call's (`fc_` + its call id). */
export const messageItemIdOf = (chatId: unknown): string => `msg_${str(chatId) ?? "tollgate"}`
export const reasoningItemIdOf = (chatId: unknown): string => `rs_${str(chatId) ?? "tollgate"}`
export const callItemIdOf = (callId: string): string => `fc_${callId}`

/** Chat usage -> Responses usage (both count cached tokens inside the input). */
export const responsesUsageOf = (usage: unknown): Json => {
  const u = asRecord(usage)
  const input = num(u.prompt_tokens) ?? 0
  const output = num(u.completion_tokens) ?? 0
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: num(asRecord(u.prompt_tokens_details).cached_tokens) ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: num(asRecord(u.completion_tokens_details).reasoning_tokens) ?? 0 },
    total_tokens: num(u.total_tokens) ?? input + output
  }
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed"

/** `status` and `incomplete_details` for a chat `finish_reason`. */
export const statusOf = (finishReason: unknown): { status: ResponseStatus; incomplete: Json | null } =>
  finishReason === "length"
    ? { status: "incomplete", incomplete: { reason: "max_output_tokens" } }
    : finishReason === "content_filter"
    ? { status: "incomplete", incomplete: { reason: "content_filter" } }
    : { status: "completed", incomplete: null }

export interface Envelope {
  readonly id: string
  readonly createdAt: number
  readonly model: string
  readonly status: ResponseStatus
  readonly output: ReadonlyArray<Json>
  readonly usage?: Json | undefined
  readonly incomplete?: Json | null
  readonly error?: Json | null
}

/** The request's settings as a response echoes them: what the client sent, else OpenAI's default. */
export const echoOf = (request: unknown): Json => {
  const r = asRecord(request)
  const reasoning = asRecord(r.reasoning)
  const text = isRecord(r.text) ? r.text : {}
  return {
    instructions: str(r.instructions) ?? null,
    max_output_tokens: num(r.max_output_tokens) ?? null,
    parallel_tool_calls: typeof r.parallel_tool_calls === "boolean" ? r.parallel_tool_calls : true,
    previous_response_id: null,
    reasoning: { effort: str(reasoning.effort) ?? null, summary: str(reasoning.summary) ?? null },
    store: false,
    temperature: num(r.temperature) ?? null,
    text: { ...text, format: isRecord(text.format) ? text.format : { type: "text" } },
    tool_choice: r.tool_choice ?? "auto",
    tools: Array.isArray(r.tools) ? r.tools : [],
    top_p: num(r.top_p) ?? null,
    truncation: str(r.truncation) ?? "disabled",
    metadata: isRecord(r.metadata) ? r.metadata : {},
    user: str(r.user) ?? null,
    background: false
  }
}

/** A whole `response` object: its own fields, then the echoed settings (computed once per request by `echoOf`). */
export const envelope = (e: Envelope, echo: Json): Json => ({
  id: e.id,
  object: "response",
  created_at: e.createdAt,
  status: e.status,
  error: e.error ?? null,
  incomplete_details: e.incomplete ?? null,
  model: e.model,
  output: e.output,
  ...echo,
  usage: e.usage ?? null
})

export const outputText = (text: string): Json => ({ type: "output_text", text, annotations: [] })

/** A function call output item. */
export const callItem = (callId: string, name: string, args: string, status: string): Json => ({
  id: callItemIdOf(callId),
  type: "function_call",
  status,
  arguments: args,
  call_id: callId,
  name
})

/** A reasoning item with its text (no summary: a chat provider writes none). */
export const reasoningItem = (id: string, text: string, status: string): Json => ({
  id,
  type: "reasoning",
  summary: [],
  content: [{ type: "reasoning_text", text }],
  status
})

/** A chat completion as a Responses `response`. `model` is the served one, else `requestedModel`. */
export const fromChatCompletion = (json: unknown, options: ChatToResponsesOptions = {}): Json => {
  const completion = asRecord(json)
  const choice = asRecord(asArray(completion.choices)[0])
  const message = asRecord(choice.message)
  const { incomplete, status } = statusOf(choice.finish_reason)
  const itemStatus = status === "incomplete" ? "incomplete" : "completed"
  const output: Array<Json> = []
  const reasoning = str(message.reasoning_content) ?? str(message.reasoning)
  if (reasoning !== undefined && reasoning.length > 0) output.push(reasoningItem(reasoningItemIdOf(completion.id), reasoning, itemStatus))
  const text = typeof message.content === "string"
    ? message.content
    : asArray(message.content).map((p) => str(asRecord(p).text) ?? "").join("")
  const content: Array<Json> = []
  if (text.length > 0) content.push(outputText(text))
  if (typeof message.refusal === "string" && message.refusal.length > 0) content.push({ type: "refusal", refusal: message.refusal })
  const calls = asArray(message.tool_calls)
  // An answer with neither text nor calls still has its (empty) message, as OpenAI writes it.
  if (content.length > 0 || calls.length === 0) {
    output.push({ id: messageItemIdOf(completion.id), type: "message", status: itemStatus, role: "assistant", content })
  }
  calls.forEach((raw, i) => {
    const call = asRecord(raw)
    const fn = asRecord(call.function)
    output.push(callItem(str(call.id) ?? `call_${i}`, str(fn.name) ?? "", str(fn.arguments) ?? "", "completed"))
  })
  // A length limit cuts the last item; those before it were finished.
  for (let i = 0; i < output.length - 1; i++) output[i]!.status = "completed"
  if (output.length > 0) output[output.length - 1]!.status = itemStatus
  return envelope(
    {
      id: responseIdOf(completion.id),
      createdAt: num(completion.created) ?? options.created ?? nowSeconds(),
      model: str(completion.model) ?? options.requestedModel ?? "unknown",
      status,
      output,
      usage: isRecord(completion.usage) ? responsesUsageOf(completion.usage) : undefined,
      incomplete
    },
    echoOf(options.request)
  )
}
