/**
 * Translation between OpenAI chat completions and Anthropic Messages, both ways, as pure
 * functions and small stateful stream translators. The proxy picks a direction from the client's
 * endpoint and the served provider's kind; nothing here does I/O.
 *
 * OpenAI client -> Anthropic provider:
 *   - `toAnthropicRequest(json, { model?, defaultMaxTokens? })`: `Either<request, BadRequest>`;
 *     what Anthropic cannot do is a `BadRequest` (code `unsupported_for_provider`), never dropped.
 *   - `fromAnthropicMessage(json, requestedModel?, { created? })`: a `chat.completion`.
 *   - `new AnthropicToOpenAiStream({ includeUsage, requestedModel?, created? })`: `push(bytes)` /
 *     `end()` return OpenAI SSE bytes; `usage`, `model`, `done`, `failed` on the way.
 *   - `anthropicErrorToOpenAi(json)`: an Anthropic error body as an OpenAI one (keep the status).
 *
 * Anthropic client -> OpenAI-compatible provider:
 *   - `toOpenAiRequest(json, { model?, maxTokensField? })`: `Either<request, BadRequest>`.
 *   - `fromOpenAiCompletion(json, requestedModel?)`: an Anthropic `message`.
 *   - `new OpenAiToAnthropicStream({ requestedModel? })`: `push(bytes)` / `end()` return
 *     Anthropic SSE bytes; `usage`, `model`, `done`, `finished`, `failed` on the way.
 *   - `openAiErrorToAnthropic(json, status)`: `{type:"error",error:{type,message}}`.
 *
 * A translated streamed request asks for usage itself (`stream_options.include_usage` towards
 * OpenAI; Anthropic always reports it), so the ledger has reported counts either way.
 */
export type { Json } from "./Translate/Common.js"
export { anthropicUsageOf, finishReasonOf, openAiUsageOf, stopReasonOf } from "./Translate/Common.js"
export { fromOpenAiCompletion, openAiErrorToAnthropic } from "./Translate/CompletionToAnthropic.js"
export { anthropicErrorToOpenAi, type FromAnthropicOptions, fromAnthropicMessage } from "./Translate/MessageToOpenAi.js"
export { type ToAnthropicOptions, toAnthropicRequest } from "./Translate/RequestToAnthropic.js"
export { type ToOpenAiOptions, toOpenAiRequest } from "./Translate/RequestToOpenAi.js"
export { type AnthropicToOpenAiOptions, AnthropicToOpenAiStream } from "./Translate/StreamToOpenAi.js"
export { type OpenAiToAnthropicOptions, OpenAiToAnthropicStream } from "./Translate/StreamToAnthropic.js"
