/**
 * Routing rules compiled once at build: each `match:` becomes a predicate over `RequestFacts`
 * (globs to RegExps, header names lower-cased) and a label for the ledger's `rule` column.
 * Cheap matchers run before the token estimate, which is only computed when a range needs it and
 * the body's byte length (an upper bound on tokens) does not already decide it.
 */
import type { RequestFacts } from "../Domain/RequestFacts.js"
import type { Match, Range } from "./Settings.js"

/** `*` matches any run of characters, `?` one character; everything else is literal. */
export const globToRegExp = (glob: string): RegExp =>
  new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`)

export interface CompiledMatch {
  /** `model` is the resolved model name (after suffix, alias and override). */
  readonly test: (facts: RequestFacts, model: string) => boolean
  /** `model:gpt-*,tools,stream=false`, or `any`. */
  readonly label: string
}

const within = (value: number, range: Range) =>
  (range.min === undefined || value >= range.min) && (range.max === undefined || value <= range.max)

const rangeLabel = (name: string, range: Range) => `${name}:${range.min ?? ""}..${range.max ?? ""}`

/** Input-token range: decided by the byte bound when it can be, tokenised otherwise. */
const inputTokensWithin = (facts: RequestFacts, range: Range): boolean => {
  if (range.max !== undefined && facts.byteLength <= range.max && (range.min === undefined || range.min === 0)) return true
  if (range.min !== undefined && facts.byteLength < range.min) return false
  return within(facts.estimatedInputTokens(), range)
}

export const compileMatch = (match: Match): CompiledMatch => {
  const checks: Array<(facts: RequestFacts, model: string) => boolean> = []
  const labels: Array<string> = []
  const flag = (name: string, wanted: boolean | undefined, read: (f: RequestFacts) => boolean) => {
    if (wanted === undefined) return
    checks.push((f) => read(f) === wanted)
    labels.push(wanted ? name : `${name}=false`)
  }
  if (match.model !== undefined) {
    const pattern = globToRegExp(match.model)
    checks.push((_, model) => pattern.test(model))
    labels.push(`model:${match.model}`)
  }
  if (match.endpoint !== undefined) {
    const endpoint = match.endpoint
    checks.push((f) => f.endpoint === endpoint)
    labels.push(`endpoint:${endpoint}`)
  }
  flag("stream", match.stream, (f) => f.stream)
  flag("tools", match.tools, (f) => f.toolCount > 0)
  flag("images", match.images, (f) => f.hasImages)
  flag("response_format", match.responseFormat, (f) => f.hasResponseFormat)
  if (match.maxTokens !== undefined) {
    const range = match.maxTokens
    checks.push((f) => f.maxTokens !== undefined && within(f.maxTokens, range))
    labels.push(rangeLabel("max_tokens", range))
  }
  if (match.headers !== undefined) {
    for (const [name, glob] of Object.entries(match.headers)) {
      const header = name.toLowerCase()
      const pattern = globToRegExp(glob)
      checks.push((f) => {
        const value = f.headers[header]
        return value !== undefined && pattern.test(value)
      })
      labels.push(`header:${header}`)
    }
  }
  if (match.clientKey !== undefined) {
    const patterns = (typeof match.clientKey === "string" ? [match.clientKey] : match.clientKey).map(globToRegExp)
    checks.push((f) => f.clientKey !== undefined && patterns.some((p) => p.test(f.clientKey!)))
    // The key itself never goes into the ledger.
    labels.push("client_key")
  }
  // Last: the only matcher that may tokenise.
  if (match.inputTokens !== undefined) {
    const range = match.inputTokens
    checks.push((f) => inputTokensWithin(f, range))
    labels.push(rangeLabel("input_tokens", range))
  }
  return {
    test: (facts, model) => {
      for (const check of checks) if (!check(facts, model)) return false
      return true
    },
    label: labels.length === 0 ? "any" : labels.join(",")
  }
}
