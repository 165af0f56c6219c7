/**
 * OpenAI Responses request -> OpenAI chat-completions request, for a Responses client (Codex CLI,
 * the Vercel AI SDK's `openai(model)`, LangChain's `useResponsesApi`) routed to a chat-only
 * provider. For an Anthropic provider the result goes on through `toAnthropicRequest`, so the
 * output uses only what that translator reads (`max_tokens`, `reasoning_effort`, system messages).
 *
 * Mapped: `instructions` -> a leading system message; `input` as a string -> one user message;
 * message items (roles user/assistant/system/developer, `developer` sent as `system`, which every
 * chat provider knows) with `input_text` / `output_text` / `refusal` / `input_image` (URL or
 * `data:` URL) / `input_file` (inline `file_data`) parts; `function_call` items -> assistant
 * `tool_calls` (consecutive calls, and calls right after an assistant message, become one assistant
 * message, as chat has them); `function_call_output` -> `tool` messages; function tools (flat in
 * Responses, nested under `function` in chat); `tool_choice`; `text.format` -> `response_format`;
 * `max_output_tokens` -> `max_tokens` (or `max_completion_tokens`); `reasoning.effort` ->
 * `reasoning_effort`; `temperature`, `top_p`, `parallel_tool_calls`, `user`; `stream` (with
 * `stream_options.include_usage`, so the translated stream can report usage).
 *
 * Dropped on purpose: `reasoning` input items (opaque or encrypted reasoning from an earlier turn
 * that chat has no slot for; OpenAI itself only uses them as context), `reasoning.summary` (a chat
 * provider writes no summaries), `store` (tollgate stores nothing: the answer says `store: false`),
 * `metadata` (it only tags stored responses; the answer echoes it), `text.verbosity` (a wording
 * hint chat-only providers do not take), `include: ["reasoning.encrypted_content"]`, `truncation`,
 * `service_tier`, `prompt_cache_key`, `prompt_cache_retention`, `safety_identifier`,
 * `stream_options`, item `id` and `status` fields.
 *
 * Dropped and named (`translateResponses` lists them; the answer's `x-tollgate-dropped` header
 * says so): parameters this module does not know (clients add fields faster than translators:
 * Codex's `client_metadata`, say), and tools a chat provider cannot run (built-in, custom,
 * namespaces) offered beside function tools. Codex offers `web_search` on every turn; refusing it
 * would make Codex unusable on any chat provider, while the model simply never gets to search.
 *
 * Refused with a 400 (code `unsupported_for_provider`): `previous_response_id`, `conversation`,
 * item references and stored `prompt`s (tollgate stores no conversations), `background: true`,
 * built-in tools a request forces (`tool_choice`) or offers with no function tool beside them
 * (the request exists to use them), uploaded file ids, item types with no chat counterpart, and
 * `top_logprobs` / logprobs includes.
 */
import * as Either from "effect/Either"
import type { BadRequest } from "../Domain/Errors.js"
import { asArray, asRecord, attempt, invalid, isRecord, isUnsetOr, type Json, num, str, unsupported } from "./Common.js"

export interface ResponsesToChatOptions {
  /** The model to ask for (a route may serve another than the client named). Default: the request's. */
  readonly model?: string
  /** Field for the output limit: `max_tokens` (most compatible APIs) or `max_completion_tokens`. */
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens"
  /** An output item tollgate itself gave earlier, by id, for an `item_reference` (none: refused as stored state). */
  readonly resolveItem?: ((id: string) => Json | undefined) | undefined
}

/** Tool types that only OpenAI's own Responses API runs. */
export const BUILT_IN_TOOLS = new Set([
  "web_search",
  "web_search_2025_08_26",
  "web_search_preview",
  "web_search_preview_2025_03_11",
  "file_search",
  "computer",
  "computer_use",
  "computer_use_preview",
  "code_interpreter",
  "image_generation",
  "mcp",
  "local_shell",
  "shell",
  "apply_patch",
  "tool_search"
])

const NOT_STORED = "tollgate stores no conversations; this target is served through translation: send the full input instead"

const builtIn = (type: string, param: string): never =>
  unsupported(`built-in tool ${type} is only available on OpenAI Responses providers`, param)

const HANDLED = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "text",
  "max_output_tokens",
  "reasoning",
  "temperature",
  "top_p",
  "user",
  "stream",
  // accepted, no effect on the answer (see above)
  "store",
  "metadata",
  "include",
  "truncation",
  "service_tier",
  "prompt_cache_key",
  "prompt_cache_retention",
  "safety_identifier",
  "stream_options",
  // checked below: only their neutral values are accepted
  "background",
  "top_logprobs",
  "max_tool_calls"
])

/** Checked before anything else, each with its own reason. */
const STATEFUL: ReadonlyArray<string> = ["previous_response_id", "conversation", "prompt"]

type Part = Json

/** One content part of a message item, as a chat part. */
const chatPart = (raw: unknown, at: string, allowImages: boolean): Part => {
  const part = asRecord(raw)
  switch (part.type) {
    case "input_text":
    case "output_text":
    case "text":
      return { type: "text", text: str(part.text) ?? "" }
    case "refusal":
      return { type: "refusal", refusal: str(part.refusal) ?? "" }
    case "input_image": {
      if (!allowImages) return unsupported(`${at}: images can only be sent in user messages to a chat provider`, at)
      if (part.file_id !== undefined && part.file_id !== null) {
        return unsupported(`${at}.file_id: files uploaded to OpenAI cannot be read through translation; send image_url (an http(s) or data: URL)`, at)
      }
      const url = str(part.image_url) ?? invalid(`${at}.image_url is missing`, at)
      const image: Json = { url }
      if (typeof part.detail === "string") image.detail = part.detail
      return { type: "image_url", image_url: image }
    }
    case "input_file": {
      if (!allowImages) return unsupported(`${at}: files can only be sent in user messages to a chat provider`, at)
      const data = str(part.file_data)
      if (data === undefined) {
        return unsupported(`${at}: only inline file_data can be sent through translation (not file_id or file_url)`, at)
      }
      const file: Json = { file_data: data }
      if (typeof part.filename === "string") file.filename = part.filename
      return { type: "file", file }
    }
    default:
      return unsupported(`${at}: content part type "${String(part.type)}" cannot be sent to a chat provider`, at)
  }
}

const textOnly = (parts: ReadonlyArray<Part>): boolean => parts.every((p) => p.type === "text")
const joinText = (parts: ReadonlyArray<Part>, separator: string): string => parts.map((p) => str(p.text) ?? "").join(separator)

interface Builder {
  readonly messages: Array<Json>
  /** The assistant message that function calls following it join, while nothing else came between. */
  openAssistant: Json | undefined
}

const convertMessage = (item: Json, at: string, into: Builder): void => {
  const role = item.role
  const content = item.content
  const parts = typeof content === "string"
    ? [{ type: "text", text: content }]
    : Array.isArray(content)
    ? content.map((p, i) => chatPart(p, `${at}.content[${i}]`, role === "user"))
    : invalid(`${at}.content must be a string or an array of parts`, `${at}.content`)
  switch (role) {
    case "system":
    case "developer": {
      if (!textOnly(parts)) return unsupported(`${at}: ${role} messages carry text only`, at)
      into.messages.push({ role: "system", content: joinText(parts, "\n") })
      into.openAssistant = undefined
      return
    }
    case "user": {
      const only = parts.length === 1 && parts[0]!.type === "text"
      into.messages.push({ role: "user", content: only ? parts[0]!.text : parts })
      into.openAssistant = undefined
      return
    }
    case "assistant": {
      const text = joinText(parts.filter((p) => p.type === "text"), "")
      const refusals = parts.filter((p) => p.type === "refusal").map((p) => str(p.refusal) ?? "")
      const message: Json = { role: "assistant", content: text.length === 0 && refusals.length > 0 ? null : text }
      if (refusals.length > 0) message.refusal = refusals.join("")
      into.messages.push(message)
      into.openAssistant = message
      return
    }
    default:
      return invalid(`${at}.role: unknown role "${String(role)}"`, `${at}.role`)
  }
}

const convertCall = (item: Json, at: string, into: Builder): void => {
  const call = {
    id: str(item.call_id) ?? invalid(`${at}.call_id is missing`, `${at}.call_id`),
    type: "function",
    function: {
      name: str(item.name) ?? invalid(`${at}.name is missing`, `${at}.name`),
      arguments: str(item.arguments) ?? "{}"
    }
  }
  if (into.openAssistant === undefined) {
    into.openAssistant = { role: "assistant", content: null }
    into.messages.push(into.openAssistant)
  }
  const calls = into.openAssistant.tool_calls
  if (Array.isArray(calls)) calls.push(call)
  else into.openAssistant.tool_calls = [call]
}

const toolOutputText = (output: unknown, at: string): string => {
  if (typeof output === "string") return output
  if (!Array.isArray(output)) return invalid(`${at} must be a string or an array of parts`, at)
  const parts = output.map((p, i) => chatPart(p, `${at}[${i}]`, false))
  if (!textOnly(parts)) return unsupported(`${at}: a chat tool result carries text only`, at)
  return joinText(parts, "\n")
}

const convertInput = (input: unknown, resolveItem?: (id: string) => Json | undefined): Array<Json> => {
  if (typeof input === "string") return [{ role: "user", content: input }]
  if (input === undefined || input === null) return invalid(`input is required when the target is served through translation`, "input")
  if (!Array.isArray(input)) return invalid("input must be a string or an array of items", "input")
  const into: Builder = { messages: [], openAssistant: undefined }
  input.forEach((given, i) => {
    const at = `input[${i}]`
    if (!isRecord(given)) return invalid(`${at} must be an object`, at)
    // A reference to an item tollgate translated earlier stands for that item.
    const known = given.type === "item_reference" && typeof given.id === "string" ? resolveItem?.(given.id) : undefined
    const raw: Json = known ?? given
    const type = raw.type ?? (raw.role === undefined ? undefined : "message")
    switch (type) {
      case "message":
        return convertMessage(raw, at, into)
      case "function_call":
        return convertCall(raw, at, into)
      case "function_call_output":
        into.messages.push({
          role: "tool",
          tool_call_id: str(raw.call_id) ?? invalid(`${at}.call_id is missing`, `${at}.call_id`),
          content: toolOutputText(raw.output, `${at}.output`)
        })
        into.openAssistant = undefined
        return
      case "reasoning":
        // Dropped: see the module comment. It does not end the assistant turn it belongs to.
        return
      case "item_reference":
        return unsupported(`${at}: item references point at stored items (tollgate keeps only the items of answers it translated, for a while); ${NOT_STORED}`, at)
      case undefined:
        return invalid(`${at}: an input item needs a type (or a role, for a message)`, at)
      default:
        return unsupported(`${at}: input item type "${String(type)}" cannot be sent to a chat provider`, at)
    }
  })
  return into.messages
}

const convertTools = (tools: unknown, dropped: Array<string>): Array<Json> => {
  const all = asArray(tools)
  const functions = all.filter((raw) => asRecord(raw).type === "function").length
  const out: Array<Json> = []
  all.forEach((raw, i) => {
    const tool = asRecord(raw)
    const at = `tools[${i}]`
    const type = str(tool.type) ?? invalid(`${at}.type is missing`, at)
    if (type !== "function") {
      // Beside function tools it is one capability less; alone, the request cannot be served.
      if (functions > 0) return void dropped.push(`${at}:${type}`)
      if (BUILT_IN_TOOLS.has(type)) return builtIn(type, at)
      return unsupported(`${at}: tool type "${type}" cannot be sent to a chat provider`, at)
    }
    const fn: Json = {
      name: str(tool.name) ?? invalid(`${at}.name is missing`, at),
      parameters: isRecord(tool.parameters) ? tool.parameters : { type: "object", properties: {} }
    }
    if (typeof tool.description === "string") fn.description = tool.description
    if (typeof tool.strict === "boolean") fn.strict = tool.strict
    out.push({ type: "function", function: fn })
  })
  return out
}

const convertToolChoice = (choice: unknown): unknown => {
  if (choice === "auto" || choice === "none" || choice === "required") return choice
  if (!isRecord(choice)) return invalid("tool_choice: expected auto, none, required or a named function", "tool_choice")
  const type = str(choice.type) ?? ""
  if (type === "function") {
    return { type: "function", function: { name: str(choice.name) ?? invalid("tool_choice.name is missing", "tool_choice") } }
  }
  if (BUILT_IN_TOOLS.has(type)) return builtIn(type, "tool_choice")
  return unsupported(`tool_choice: type "${type}" cannot be sent to a chat provider`, "tool_choice")
}

const convertFormat = (text: unknown): Json | undefined => {
  const format = asRecord(text).format
  if (format === undefined || format === null) return undefined
  const f = asRecord(format)
  switch (f.type) {
    case "text":
      return undefined
    case "json_object":
      return { type: "json_object" }
    case "json_schema": {
      const spec: Json = {
        name: str(f.name) ?? invalid("text.format.name is missing", "text.format"),
        schema: isRecord(f.schema) ? f.schema : invalid("text.format.schema must be an object", "text.format")
      }
      if (typeof f.description === "string") spec.description = f.description
      if (typeof f.strict === "boolean") spec.strict = f.strict
      return { type: "json_schema", json_schema: spec }
    }
    default:
      return unsupported(`text.format: type "${String(f.type)}" cannot be sent to a chat provider`, "text.format")
  }
}

const checkRequest = (body: Json, dropped: Array<string>) => {
  for (const key of STATEFUL) {
    if (body[key] !== undefined && body[key] !== null) unsupported(`${key}: ${NOT_STORED}`, key)
  }
  for (const key of Object.keys(body)) {
    if (!HANDLED.has(key) && body[key] !== undefined && body[key] !== null) dropped.push(key)
  }
  if (!isUnsetOr(body.background, false)) {
    unsupported("background: background responses are stored and polled, and this target is served through translation", "background")
  }
  if (!isUnsetOr(body.top_logprobs, 0)) unsupported("top_logprobs: log probabilities cannot be translated", "top_logprobs")
  if (body.max_tool_calls !== undefined && body.max_tool_calls !== null) {
    unsupported("max_tool_calls: limits built-in tool calls, which only OpenAI Responses providers run", "max_tool_calls")
  }
  if (asArray(body.include).some((i) => typeof i === "string" && i.includes("logprobs"))) {
    unsupported("include: log probabilities cannot be translated", "include")
  }
}

const translate = (input: unknown, options: ResponsesToChatOptions): Translated => {
  if (!isRecord(input)) return invalid("the request body must be a JSON object")
  const body = input
  const dropped: Array<string> = []
  checkRequest(body, dropped)
  const model = options.model ?? str(body.model) ?? invalid("model is missing", "model")
  const messages: Array<Json> = []
  if (typeof body.instructions === "string" && body.instructions.length > 0) {
    messages.push({ role: "system", content: body.instructions })
  }
  messages.push(...convertInput(body.input, options.resolveItem))
  if (messages.length === 0 || messages.every((m) => m.role === "system")) {
    invalid("input: at least one message is required", "input")
  }
  const out: Json = { model, messages }
  const maxTokens = num(body.max_output_tokens)
  if (maxTokens !== undefined) out[options.maxTokensField ?? "max_tokens"] = maxTokens
  const temperature = num(body.temperature)
  if (temperature !== undefined) out.temperature = temperature
  const topP = num(body.top_p)
  if (topP !== undefined) out.top_p = topP
  const tools = convertTools(body.tools, dropped)
  if (tools.length > 0) out.tools = tools
  if (body.tool_choice !== undefined && body.tool_choice !== null) out.tool_choice = convertToolChoice(body.tool_choice)
  if (typeof body.parallel_tool_calls === "boolean" && tools.length > 0) out.parallel_tool_calls = body.parallel_tool_calls
  const format = convertFormat(body.text)
  if (format !== undefined) out.response_format = format
  const effort = str(asRecord(body.reasoning).effort)
  if (effort !== undefined) out.reasoning_effort = effort
  if (typeof body.user === "string") out.user = body.user
  if (body.stream === true) {
    out.stream = true
    out.stream_options = { include_usage: true }
  }
  return { request: out, dropped }
}

/** A translated request, and what of the client's request it leaves out (parameters, tools). */
export interface Translated {
  readonly request: Json
  readonly dropped: ReadonlyArray<string>
}

/** A Responses request as a chat-completions request with what it drops, or a 400 saying what cannot be sent. */
export const translateResponses = (json: unknown, options: ResponsesToChatOptions = {}): Either.Either<Translated, BadRequest> =>
  attempt(() => translate(json, options))

/** A Responses request as a chat-completions request, or a 400 saying what cannot be sent. */
export const toChatRequest = (json: unknown, options: ResponsesToChatOptions = {}): Either.Either<Json, BadRequest> =>
  Either.map(translateResponses(json, options), (t) => t.request)
