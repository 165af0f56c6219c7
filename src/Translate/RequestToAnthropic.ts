/**
 * OpenAI chat request -> Anthropic Messages request.
 *
 * Mapped: system/developer messages -> `system` (joined with blank lines, wherever they stand);
 * text and image parts (http URL -> url source, `data:` URL -> base64 source); assistant
 * `tool_calls` -> `tool_use` blocks; `tool` messages -> `tool_result` blocks in a user turn;
 * consecutive turns of one role merged into one (Anthropic wants alternation); tools and
 * `tool_choice` (auto/none/required/named, `parallel_tool_calls: false` ->
 * `disable_parallel_tool_use`); `stop`; `temperature` (0..1 only); `top_p`;
 * `max_tokens`/`max_completion_tokens` (default `defaultMaxTokens`); `reasoning_effort` ->
 * extended thinking with a budget; `user` -> `metadata.user_id`; `stream`.
 *
 * `response_format` json_object / json_schema become a system instruction (with the schema):
 * Claude follows it reliably but it is not enforced the way OpenAI's strict mode is. A forced tool
 * would enforce the schema but changes the answer's shape, which would then need undoing per request.
 *
 * Ignored on purpose because they have no effect on the answer's content: `seed`, `store`,
 * `service_tier`, `metadata`, `prompt_cache_key`, `stream_options` (the stream translator adds
 * usage itself), message `name`. Everything else that Anthropic cannot do (`n > 1`, `logprobs`,
 * penalties, `logit_bias`, audio, files, legacy `functions`, ...) is refused with a 400.
 */
import type * as Either from "effect/Either"
import type { BadRequest } from "../Domain/Errors.js"
import { asArray, asRecord, attempt, invalid, isRecord, isUnsetOr, type Json, num, str, unsupported } from "./Common.js"

export interface ToAnthropicOptions {
  /** The model to ask for (a route may serve another than the client named). Default: the request's. */
  readonly model?: string
  /** `max_tokens` when the client sent none (Anthropic requires it). Default 4096. */
  readonly defaultMaxTokens?: number
}

/** Thinking budgets for OpenAI's `reasoning_effort`. */
const THINKING_BUDGET: Record<string, number> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 }

const HANDLED = new Set([
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "stream",
  "stream_options",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "user",
  "reasoning_effort",
  // accepted, no effect on the answer (see above)
  "seed",
  "store",
  "service_tier",
  "metadata",
  "prompt_cache_key",
  // checked below: only their neutral values are accepted
  "n",
  "logprobs",
  "top_logprobs",
  "presence_penalty",
  "frequency_penalty",
  "logit_bias",
  "modalities"
])

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s

const imageBlock = (part: Json, where: string): Json => {
  const url = str(asRecord(part.image_url).url) ?? str(part.image_url)
  if (url === undefined) return invalid(`${where}: image_url.url is missing`, where)
  const data = DATA_URL.exec(url)
  if (data !== null) return { type: "image", source: { type: "base64", media_type: data[1], data: data[2] } }
  if (/^https?:\/\//.test(url)) return { type: "image", source: { type: "url", url } }
  return unsupported(`${where}: only http(s) and base64 data: image URLs can be sent to Anthropic`, where)
}

/** OpenAI content (string or parts) -> Anthropic blocks. */
const contentBlocks = (content: unknown, where: string, allowImages: boolean): Array<Json> => {
  if (typeof content === "string") return content.length === 0 ? [] : [{ type: "text", text: content }]
  if (content === null || content === undefined) return []
  if (!Array.isArray(content)) return invalid(`${where}: content must be a string or an array of parts`, where)
  return content.map((raw, i) => {
    const part = asRecord(raw)
    const at = `${where}[${i}]`
    switch (part.type) {
      case "text":
        return { type: "text", text: str(part.text) ?? "" }
      case "refusal":
        return { type: "text", text: str(part.refusal) ?? "" }
      case "image_url":
        return allowImages ? imageBlock(part, at) : unsupported(`${at}: images are not allowed here`, at)
      default:
        return unsupported(`${at}: content part type "${String(part.type)}" cannot be sent to Anthropic`, at)
    }
  })
}

const textOf = (content: unknown, where: string): string =>
  contentBlocks(content, where, false).map((b) => str(b.text) ?? "").join("\n")

const parseArguments = (value: unknown, where: string): unknown => {
  if (typeof value !== "string" || value.trim() === "") return {}
  try {
    const parsed = JSON.parse(value) as unknown
    return isRecord(parsed) ? parsed : invalid(`${where}: tool call arguments must be a JSON object`, where)
  } catch {
    return invalid(`${where}: tool call arguments are not valid JSON`, where)
  }
}

interface Turn {
  readonly role: "user" | "assistant"
  readonly content: Array<Json>
}

const convertMessages = (messages: ReadonlyArray<unknown>) => {
  const system: Array<string> = []
  const turns: Array<Turn> = []
  const push = (role: "user" | "assistant", blocks: Array<Json>) => {
    if (blocks.length === 0) return
    const last = turns[turns.length - 1]
    if (last !== undefined && last.role === role) last.content.push(...blocks)
    else turns.push({ role, content: blocks })
  }
  messages.forEach((raw, i) => {
    const m = asRecord(raw)
    const where = `messages[${i}]`
    switch (m.role) {
      case "system":
      case "developer": {
        const text = textOf(m.content, `${where}.content`)
        if (text.length > 0) system.push(text)
        break
      }
      case "user":
        push("user", contentBlocks(m.content, `${where}.content`, true))
        break
      case "assistant": {
        if (m.function_call !== undefined && m.function_call !== null) {
          unsupported(`${where}.function_call: legacy function calls are not supported; use tool_calls`, where)
        }
        if (m.audio !== undefined && m.audio !== null) unsupported(`${where}.audio: audio cannot be sent to Anthropic`, where)
        const blocks = contentBlocks(m.content, `${where}.content`, false)
        asArray(m.tool_calls).forEach((rawCall, j) => {
          const call = asRecord(rawCall)
          const at = `${where}.tool_calls[${j}]`
          if (call.type !== undefined && call.type !== "function") {
            unsupported(`${at}: tool call type "${String(call.type)}" cannot be sent to Anthropic`, at)
          }
          const fn = asRecord(call.function)
          blocks.push({
            type: "tool_use",
            id: str(call.id) ?? invalid(`${at}.id is missing`, at),
            name: str(fn.name) ?? invalid(`${at}.function.name is missing`, at),
            input: parseArguments(fn.arguments, `${at}.function.arguments`)
          })
        })
        push("assistant", blocks)
        break
      }
      case "tool": {
        const id = str(m.tool_call_id) ?? invalid(`${where}.tool_call_id is missing`, where)
        const content = typeof m.content === "string" ? m.content : contentBlocks(m.content, `${where}.content`, false)
        push("user", [{ type: "tool_result", tool_use_id: id, content }])
        break
      }
      case "function":
        unsupported(`${where}: the legacy "function" role is not supported; use tool messages`, where)
        break
      default:
        invalid(`${where}.role: unknown role "${String(m.role)}"`, where)
    }
  })
  return { system, turns }
}

const convertTools = (tools: unknown): Array<Json> | undefined => {
  if (tools === undefined || tools === null) return undefined
  return asArray(tools).map((raw, i) => {
    const tool = asRecord(raw)
    const at = `tools[${i}]`
    if (tool.type !== "function") return unsupported(`${at}: tool type "${String(tool.type)}" cannot be sent to Anthropic`, at)
    const fn = asRecord(tool.function)
    const out: Json = {
      name: str(fn.name) ?? invalid(`${at}.function.name is missing`, at),
      input_schema: isRecord(fn.parameters) ? fn.parameters : { type: "object", properties: {} }
    }
    if (typeof fn.description === "string") out.description = fn.description
    return out
  })
}

const convertToolChoice = (choice: unknown, parallel: unknown): Json | undefined => {
  let out: Json | undefined
  if (choice === "auto") out = { type: "auto" }
  else if (choice === "none") out = { type: "none" }
  else if (choice === "required") out = { type: "any" }
  else if (isRecord(choice)) {
    const name = str(asRecord(choice.function).name)
    if (choice.type !== "function" || name === undefined) {
      return unsupported("tool_choice: only auto, none, required or a named function can be sent to Anthropic", "tool_choice")
    }
    out = { type: "tool", name }
  } else if (choice !== undefined && choice !== null) {
    return invalid("tool_choice: expected auto, none, required or a named function", "tool_choice")
  }
  if (parallel === false) {
    out = { ...(out ?? { type: "auto" }), disable_parallel_tool_use: true }
  }
  return out
}

/** The instruction standing in for `response_format` (see the module comment). */
const formatInstruction = (format: unknown): string | undefined => {
  if (format === undefined || format === null) return undefined
  const f = asRecord(format)
  switch (f.type) {
    case "text":
      return undefined
    case "json_object":
      return "Respond with a single valid JSON object and nothing else: no prose, no code fences."
    case "json_schema": {
      const spec = asRecord(f.json_schema)
      const schema = JSON.stringify(spec.schema ?? {})
      return `Respond with a single valid JSON value that conforms to this JSON Schema${
        typeof spec.name === "string" ? ` (named "${spec.name}")` : ""
      }, and nothing else: no prose, no code fences.\nSchema: ${schema}`
    }
    default:
      return unsupported(`response_format: type "${String(f.type)}" cannot be sent to Anthropic`, "response_format")
  }
}

const checkNeutral = (body: Json) => {
  for (const key of Object.keys(body)) {
    if (!HANDLED.has(key) && body[key] !== undefined && body[key] !== null) {
      unsupported(`${key}: this parameter cannot be sent to Anthropic`, key)
    }
  }
  if (!isUnsetOr(body.n, 1)) unsupported("n: Anthropic returns one choice per request; n must be 1", "n")
  if (!isUnsetOr(body.logprobs, false)) unsupported("logprobs: Anthropic does not return log probabilities", "logprobs")
  if (!isUnsetOr(body.top_logprobs, 0)) unsupported("top_logprobs: Anthropic does not return log probabilities", "top_logprobs")
  if (!isUnsetOr(body.presence_penalty, 0)) unsupported("presence_penalty: not supported by Anthropic", "presence_penalty")
  if (!isUnsetOr(body.frequency_penalty, 0)) unsupported("frequency_penalty: not supported by Anthropic", "frequency_penalty")
  if (isRecord(body.logit_bias) && Object.keys(body.logit_bias).length > 0) {
    unsupported("logit_bias: not supported by Anthropic", "logit_bias")
  }
  const modalities = asArray(body.modalities)
  if (modalities.some((m) => m !== "text")) unsupported("modalities: Anthropic answers with text only", "modalities")
}

const translate = (input: unknown, options: ToAnthropicOptions): Json => {
  if (!isRecord(input)) return invalid("the request body must be a JSON object")
  const body = input
  checkNeutral(body)
  const model = options.model ?? str(body.model) ?? invalid("model is missing", "model")
  const { system, turns } = convertMessages(asArray(body.messages))
  if (turns.length === 0) invalid("messages: at least one user or assistant message is required", "messages")
  const instruction = formatInstruction(body.response_format)
  if (instruction !== undefined) system.push(instruction)

  const out: Json = { model }
  const requested = num(body.max_completion_tokens) ?? num(body.max_tokens)
  const effort = str(body.reasoning_effort)
  let maxTokens = requested ?? options.defaultMaxTokens ?? 4096
  if (effort !== undefined && effort !== "none") {
    const budget = THINKING_BUDGET[effort] ?? unsupported(`reasoning_effort: "${effort}" is not supported`, "reasoning_effort")
    // Anthropic counts thinking inside max_tokens and requires room for an answer after it.
    if (requested === undefined) maxTokens = budget + maxTokens
    else if (requested <= budget) {
      unsupported(`max_tokens must exceed the thinking budget (${budget}) for reasoning_effort "${effort}"`, "max_tokens")
    }
    out.thinking = { type: "enabled", budget_tokens: budget }
  }
  out.max_tokens = maxTokens
  if (system.length > 0) out.system = system.join("\n\n")
  out.messages = turns
  const temperature = num(body.temperature)
  if (temperature !== undefined) {
    if (temperature > 1) unsupported("temperature: Anthropic accepts 0 to 1", "temperature")
    out.temperature = temperature
  }
  const topP = num(body.top_p)
  if (topP !== undefined) out.top_p = topP
  if (typeof body.stop === "string") out.stop_sequences = [body.stop]
  else if (Array.isArray(body.stop) && body.stop.length > 0) out.stop_sequences = body.stop
  const tools = convertTools(body.tools)
  if (tools !== undefined && tools.length > 0) out.tools = tools
  const toolChoice = convertToolChoice(body.tool_choice, body.parallel_tool_calls)
  if (toolChoice !== undefined) out.tool_choice = toolChoice
  if (typeof body.user === "string") out.metadata = { user_id: body.user }
  if (body.stream === true) out.stream = true
  return out
}

/** An OpenAI chat request as an Anthropic Messages request, or a 400 saying what cannot be sent. */
export const toAnthropicRequest = (json: unknown, options: ToAnthropicOptions = {}): Either.Either<Json, BadRequest> =>
  attempt(() => translate(json, options))
