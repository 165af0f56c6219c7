/** Token counts for one request, as the provider reported them or as tollgate estimated them. */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
  /** Part of `inputTokens` served from the provider's prompt cache. */
  readonly cachedInputTokens: number
  /** Part of `inputTokens` written to the provider's prompt cache (Anthropic). */
  readonly cacheWriteTokens: number
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
