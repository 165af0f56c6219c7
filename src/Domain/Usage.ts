/**
 * Token counts for one request, as the provider reported them or as tollgate estimated them.
 * One meaning whatever the provider: `inputTokens` is every input token, including those read
 * from or written to the provider's prompt cache; the cache counts are parts of it.
 */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
  /** Part of `inputTokens` served from the provider's prompt cache. */
  readonly cachedInputTokens: number
  /** Part of `inputTokens` written to the provider's prompt cache (Anthropic), all TTLs. */
  readonly cacheWriteTokens: number
  /** Part of `cacheWriteTokens` written with the 1-hour TTL (billed higher than 5-minute writes). */
  readonly cacheWrite1hTokens?: number
  /** Part of `outputTokens` spent on reasoning. */
  readonly reasoningTokens: number
  readonly source: "reported" | "estimated"
}

const num = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0)

/** Read an OpenAI `usage` object; `undefined` when the value is not one. */
export const fromOpenAi = (usage: unknown): Usage | undefined => {
  if (typeof usage !== "object" || usage === null) return undefined
  const u = usage as Record<string, unknown>
  if (typeof u.prompt_tokens !== "number" && typeof u.completion_tokens !== "number") return undefined
  const promptDetails = (u.prompt_tokens_details ?? {}) as Record<string, unknown>
  const completionDetails = (u.completion_tokens_details ?? {}) as Record<string, unknown>
  return {
    inputTokens: num(u.prompt_tokens),
    outputTokens: num(u.completion_tokens),
    cachedInputTokens: num(promptDetails.cached_tokens),
    cacheWriteTokens: 0,
    reasoningTokens: num(completionDetails.reasoning_tokens),
    source: "reported"
  }
}

/**
 * Read an Anthropic `usage` object (from a message, or `message_start` + `message_delta` merged).
 * Anthropic's `input_tokens` excludes cache reads and writes, so they are added back here once:
 * `inputTokens` keeps the one meaning above and nothing is subtracted twice when pricing.
 */
export const fromAnthropic = (usage: unknown): Usage | undefined => {
  if (typeof usage !== "object" || usage === null) return undefined
  const u = usage as Record<string, unknown>
  if (typeof u.input_tokens !== "number" && typeof u.output_tokens !== "number") return undefined
  const read = num(u.cache_read_input_tokens)
  const split = (u.cache_creation ?? {}) as Record<string, unknown>
  const write1h = num(split.ephemeral_1h_input_tokens)
  const write = Math.max(num(u.cache_creation_input_tokens), num(split.ephemeral_5m_input_tokens) + write1h)
  return {
    inputTokens: num(u.input_tokens) + read + write,
    outputTokens: num(u.output_tokens),
    cachedInputTokens: read,
    cacheWriteTokens: write,
    ...(write1h > 0 ? { cacheWrite1hTokens: write1h } : {}),
    reasoningTokens: 0,
    source: "reported"
  }
}
