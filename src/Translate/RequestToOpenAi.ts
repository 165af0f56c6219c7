/**
 * Anthropic Messages request -> OpenAI chat request (a `/v1/messages` client routed to an
 * OpenAI-compatible provider).
 *
 * Mapped: `system` (string or text blocks) -> a system message; text and image blocks (a lone text
 * block as a plain string; base64 ->
 * `data:` URL, url source -> URL); `tool_use` -> assistant `tool_calls`; `tool_result` -> `tool`
 * messages placed before the rest of that user turn (OpenAI wants them right after the call);
 * `is_error` results are prefixed with "[tool error] " since OpenAI has no flag for it; tools and
 * `tool_choice` (auto/any/tool/none, `disable_parallel_tool_use` -> `parallel_tool_calls: false`);
 * `stop_sequences`; `temperature`; `top_p`; `max_tokens`; `metadata.user_id` -> `user`;
 * `thinking` -> `reasoning_effort` by budget; `stream` (with `include_usage`, so the translated
 * stream can report usage).
 *
 * Dropped on purpose: `service_tier` (a scheduling hint), `cache_control` marks (OpenAI caches prompts by itself) and thinking blocks
 * in earlier assistant turns (chat completions have no input slot for them; Anthropic itself
 * ignores thinking from earlier turns). Refused with a 400: `top_k`, server tools (web search,
 * code execution, ...), documents, images inside tool results, MCP servers, containers.
 */
import type * as Either from "effect/Either"
import type { BadRequest } from "../Domain/Errors.js"
import { asArray, asRecord, attempt, invalid, isRecord, type Json, num, str, unsupported } from "./Common.js"

export interface ToOpenAiOptions {
  /** The model to ask for. Default: the request's. */
  readonly model?: string
  /** Field for the output limit: `max_tokens` (most compatible APIs) or `max_completion_tokens` (OpenAI o-series, gpt-5). */
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens"
}

const HANDLED = new Set([
  "model",
  "messages",
  "system",
  "max_tokens",
  "temperature",
  "top_p",
  "stop_sequences",
  "stream",
  "tools",
  "tool_choice",
  "metadata",
  "thinking",
  "service_tier"
])

const imagePart = (block: Json, where: string): Json => {
  const source = asRecord(block.source)
  if (source.type === "base64") {
    return { type: "image_url", image_url: { url: `data:${str(source.media_type) ?? "image/png"};base64,${str(source.data) ?? ""}` } }
  }
  if (source.type === "url") return { type: "image_url", image_url: { url: str(source.url) ?? "" } }
  return unsupported(`${where}: image source "${String(source.type)}" cannot be sent to an OpenAI-compatible provider`, where)
}

const textOfBlocks = (content: unknown, where: string): string => {
  if (typeof content === "string") return content
  return asArray(content).map((raw, i) => {
    const block = asRecord(raw)
    if (block.type !== "text") {
      return unsupported(`${where}[${i}]: only text can be sent here to an OpenAI-compatible provider`, `${where}[${i}]`)
    }
    return str(block.text) ?? ""
  }).join("\n")
}

const convertUser = (content: unknown, where: string, out: Array<Json>) => {
  if (typeof content === "string") {
    out.push({ role: "user", content })
    return
  }
  const parts: Array<Json> = []
  asArray(content).forEach((raw, i) => {
    const block = asRecord(raw)
    const at = `${where}[${i}]`
    switch (block.type) {
      case "text":
        parts.push({ type: "text", text: str(block.text) ?? "" })
        break
      case "image":
        parts.push(imagePart(block, at))
        break
      case "tool_result": {
        const text = textOfBlocks(block.content ?? "", `${at}.content`)
        out.push({
          role: "tool",
          tool_call_id: str(block.tool_use_id) ?? invalid(`${at}.tool_use_id is missing`, at),
          content: block.is_error === true ? `[tool error] ${text}` : text
        })
        break
      }
      default:
        unsupported(`${at}: content block "${String(block.type)}" cannot be sent to an OpenAI-compatible provider`, at)
    }
  })
  if (parts.length === 0) return
  const onlyText = parts.every((p) => p.type === "text")
  out.push({ role: "user", content: onlyText && parts.length === 1 ? parts[0]!.text : parts })
}

const convertAssistant = (content: unknown, where: string, out: Array<Json>) => {
  if (typeof content === "string") {
    out.push({ role: "assistant", content })
    return
  }
  const texts: Array<string> = []
  const calls: Array<Json> = []
  asArray(content).forEach((raw, i) => {
    const block = asRecord(raw)
    const at = `${where}[${i}]`
    switch (block.type) {
      case "text":
        texts.push(str(block.text) ?? "")
        break
      case "tool_use":
        calls.push({
          id: str(block.id) ?? invalid(`${at}.id is missing`, at),
          type: "function",
          function: { name: str(block.name) ?? invalid(`${at}.name is missing`, at), arguments: JSON.stringify(block.input ?? {}) }
        })
        break
      case "thinking":
      case "redacted_thinking":
        break
      default:
        unsupported(`${at}: content block "${String(block.type)}" cannot be sent to an OpenAI-compatible provider`, at)
    }
  })
  const message: Json = { role: "assistant", content: texts.length === 0 ? null : texts.join("") }
  if (calls.length > 0) message.tool_calls = calls
  if (texts.length > 0 || calls.length > 0) out.push(message)
}

const convertTools = (tools: unknown): Array<Json> =>
  asArray(tools).map((raw, i) => {
    const tool = asRecord(raw)
    const at = `tools[${i}]`
    if (tool.type !== undefined && tool.type !== "custom") {
      return unsupported(`${at}: server tool "${String(tool.type)}" cannot run on an OpenAI-compatible provider`, at)
    }
    const fn: Json = {
      name: str(tool.name) ?? invalid(`${at}.name is missing`, at),
      parameters: isRecord(tool.input_schema) ? tool.input_schema : { type: "object", properties: {} }
    }
    if (typeof tool.description === "string") fn.description = tool.description
    return { type: "function", function: fn }
  })

const toolChoiceOf = (choice: unknown): unknown => {
  const c = asRecord(choice)
  switch (c.type) {
    case "auto":
      return "auto"
    case "any":
      return "required"
    case "none":
      return "none"
    case "tool":
      return { type: "function", function: { name: str(c.name) ?? invalid("tool_choice.name is missing", "tool_choice") } }
    default:
      return invalid(`tool_choice: unknown type "${String(c.type)}"`, "tool_choice")
  }
}

/** Thinking budget -> `reasoning_effort`, the nearest OpenAI has. */
const effortOf = (budget: number): string => (budget < 4096 ? "low" : budget < 16384 ? "medium" : "high")

const translate = (input: unknown, options: ToOpenAiOptions): Json => {
  if (!isRecord(input)) return invalid("the request body must be a JSON object")
  const body = input
  for (const key of Object.keys(body)) {
    if (!HANDLED.has(key) && body[key] !== undefined && body[key] !== null) {
      unsupported(`${key}: this parameter cannot be sent to an OpenAI-compatible provider`, key)
    }
  }
  const model = options.model ?? str(body.model) ?? invalid("model is missing", "model")
  const messages: Array<Json> = []
  if (body.system !== undefined && body.system !== null) {
    const system = textOfBlocks(body.system, "system")
    if (system.length > 0) messages.push({ role: "system", content: system })
  }
  asArray(body.messages).forEach((raw, i) => {
    const m = asRecord(raw)
    const where = `messages[${i}].content`
    if (m.role === "user") convertUser(m.content, where, messages)
    else if (m.role === "assistant") convertAssistant(m.content, where, messages)
    else invalid(`messages[${i}].role: expected user or assistant`, `messages[${i}]`)
  })
  const out: Json = { model, messages }
  const maxTokens = num(body.max_tokens)
  if (maxTokens !== undefined) out[options.maxTokensField ?? "max_tokens"] = maxTokens
  const temperature = num(body.temperature)
  if (temperature !== undefined) out.temperature = temperature
  const topP = num(body.top_p)
  if (topP !== undefined) out.top_p = topP
  const stops = asArray(body.stop_sequences)
  if (stops.length > 0) out.stop = stops
  const tools = convertTools(body.tools)
  if (tools.length > 0) out.tools = tools
  if (isRecord(body.tool_choice)) {
    out.tool_choice = toolChoiceOf(body.tool_choice)
    if (body.tool_choice.disable_parallel_tool_use === true && tools.length > 0) out.parallel_tool_calls = false
  }
  const user = str(asRecord(body.metadata).user_id)
  if (user !== undefined) out.user = user
  const thinking = asRecord(body.thinking)
  if (thinking.type === "enabled") out.reasoning_effort = effortOf(num(thinking.budget_tokens) ?? 0)
  if (body.stream === true) {
    out.stream = true
    out.stream_options = { include_usage: true }
  }
  return out
}

/** An Anthropic Messages request as an OpenAI chat request, or a 400 saying what cannot be sent. */
export const toOpenAiRequest = (json: unknown, options: ToOpenAiOptions = {}): Either.Either<Json, BadRequest> =>
  attempt(() => translate(json, options))
