/**
 * Anthropic message -> OpenAI `chat.completion`, and Anthropic error -> OpenAI error body.
 *
 * Text blocks are joined into `content`; `tool_use` blocks become `tool_calls` (arguments as a
 * JSON string). Thinking is not part of OpenAI's message: its text is surfaced as
 * `message.reasoning_content` (the field DeepSeek and OpenRouter use; the OpenAI SDK keeps unknown
 * fields), redacted thinking and signatures are dropped. Server-tool blocks (web search results)
 * have no OpenAI counterpart and are dropped. Usage follows OpenAI's meaning: `prompt_tokens`
 * includes cache reads and writes, `prompt_tokens_details.cached_tokens` is the cache reads.
 */
import { asArray, asRecord, finishReasonOf, type Json, openAiUsageOf, str } from "./Common.js"

export interface FromAnthropicOptions {
  /** Unix seconds for `created` (Anthropic has none). Default: now. */
  readonly created?: number
}

export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** An Anthropic message as an OpenAI chat completion. `model` is the served one, else `requestedModel`. */
export const fromAnthropicMessage = (json: unknown, requestedModel?: string, options: FromAnthropicOptions = {}): Json => {
  const message = asRecord(json)
  const texts: Array<string> = []
  const thinking: Array<string> = []
  const toolCalls: Array<Json> = []
  for (const raw of asArray(message.content)) {
    const block = asRecord(raw)
    switch (block.type) {
      case "text":
        texts.push(str(block.text) ?? "")
        break
      case "thinking":
        thinking.push(str(block.thinking) ?? "")
        break
      case "tool_use":
        toolCalls.push({
          id: str(block.id) ?? `call_${toolCalls.length}`,
          type: "function",
          function: { name: str(block.name) ?? "", arguments: JSON.stringify(block.input ?? {}) }
        })
        break
    }
  }
  const out: Json = {
    role: "assistant",
    content: texts.length === 0 && toolCalls.length > 0 ? null : texts.join(""),
    refusal: null
  }
  if (toolCalls.length > 0) out.tool_calls = toolCalls
  if (thinking.length > 0) out.reasoning_content = thinking.join("\n\n")
  return {
    id: str(message.id) ?? "chatcmpl-tollgate",
    object: "chat.completion",
    created: options.created ?? nowSeconds(),
    model: str(message.model) ?? requestedModel ?? "unknown",
    choices: [{ index: 0, message: out, logprobs: null, finish_reason: finishReasonOf(message.stop_reason) }],
    usage: openAiUsageOf(message.usage)
  }
}

/**
 * An Anthropic error body (`{type:"error",error:{type,message}}`) as an OpenAI error body. The
 * Anthropic type is kept both as `type` and `code`, so nothing is lost; SDKs pick their error
 * class from the HTTP status, which the caller keeps.
 */
export const anthropicErrorToOpenAi = (json: unknown): Json => {
  const error = asRecord(asRecord(json).error)
  const type = str(error.type) ?? "api_error"
  return { error: { message: str(error.message) ?? "Provider error", type, param: null, code: type } }
}
