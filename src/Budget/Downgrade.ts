/**
 * Which cheaper model serves a request the budget downgrades: the configured `downgrade.mapping`
 * first, then built-in defaults for the major families. Dated snapshots (`gpt-4o-2024-08-06`,
 * `claude-sonnet-4-20250514`) map like their family.
 */
import type { Downgrade } from "./Settings.js"

export const builtInMapping: Readonly<Record<string, string>> = {
  "gpt-5": "gpt-5-mini",
  "gpt-5-chat-latest": "gpt-5-mini",
  "gpt-5-mini": "gpt-5-nano",
  "gpt-4.1": "gpt-4.1-mini",
  "gpt-4.1-mini": "gpt-4.1-nano",
  "gpt-4o": "gpt-4o-mini",
  "chatgpt-4o-latest": "gpt-4o-mini",
  "gpt-4-turbo": "gpt-4o-mini",
  "gpt-4": "gpt-4o-mini",
  "o1-pro": "o1",
  "o1": "o4-mini",
  "o3-pro": "o3",
  "o3": "o4-mini",
  "o1-mini": "o4-mini",
  "o3-mini": "o4-mini"
}

/** Anthropic names carry versions in several orders (`claude-3-opus`, `claude-opus-4-1`). */
const ANTHROPIC_FAMILIES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^claude-(?:[\d.-]+-)?opus/, "claude-sonnet-4-0"],
  [/^claude-(?:[\d.-]+-)?sonnet/, "claude-3-5-haiku-latest"]
]

const DATED_SNAPSHOT = /-(?:\d{4}-\d{2}-\d{2}|\d{8})$/

/** A lookup from a model to its cheaper replacement, or `undefined` when there is none. */
export const make = (settings: Downgrade): (model: string) => string | undefined => {
  const table: Record<string, string> = settings.builtIn ? { ...builtInMapping, ...settings.mapping } : { ...settings.mapping }
  return (model) => {
    const exact = table[model]
    if (exact !== undefined) return exact === model ? undefined : exact
    const family = model.replace(DATED_SNAPSHOT, "")
    const byFamily = table[family]
    if (byFamily !== undefined) return byFamily === model ? undefined : byFamily
    if (!settings.builtIn) return undefined
    for (const [pattern, cheaper] of ANTHROPIC_FAMILIES) {
      if (pattern.test(family) && !family.startsWith(cheaper)) return cheaper
    }
    return undefined
  }
}
