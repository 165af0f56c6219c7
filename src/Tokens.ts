/**
 * Token counts with `gpt-tokenizer` (o200k_base, the encoding of current OpenAI models): input
 * estimates for routing and budget reservations (through `Domain/RequestFacts`), and usage
 * estimates when a provider reports none.
 *
 * Counting is bounded, because a client (or a provider's answer) chooses the text: BPE's cost
 * grows with the square of a run without breaks, and the count runs on the event loop every
 * other request shares (docs/hardening.md has the figures). So a run
 * of more than `RUN` characters without a break is counted in `RUN`-character pieces (real text
 * has no such runs, so its count is unchanged), and past `EXACT_CHARS` characters the rest is
 * not tokenised: `count` extrapolates it at the rate of the part counted, `upperBound` counts it
 * at three tokens per UTF-16 unit, more than any text has (what a budget reservation needs).
 *
 * One copy of the encoder per process (large once resident), loaded on first use, synchronously, so a
 * decision never waits on a promise and never loads a second copy. Layers whose config will need
 * counts on every request (`warm`) load it when they are built instead, so no request pays for it.
 */
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"

export type Encoder = { readonly countTokens: (text: string) => number }

let loaded: Encoder | undefined

const encoder = (): Encoder => {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)("gpt-tokenizer/cjs/encoding/o200k_base") as Encoder
  }
  return loaded
}

/** Characters of a run without a break (all whitespace, or none) that go to the encoder at once. */
export const RUN = 64

/** Characters tokenised exactly; the rest of a longer text is estimated. */
export const EXACT_CHARS = 16_384

/** What `\s` matches in a regular expression (a scan by hand: a regex over a megabyte-long run overflows the stack). */
const isSpace = (code: number): boolean =>
  code === 32 || (code >= 9 && code <= 13) || code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) ||
  code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff

/** Tokens of `text.slice(0, end)`, with every run longer than `RUN` cut into `RUN`-character pieces. */
const countSliced = (enc: Encoder, text: string, end: number): number => {
  let total = 0
  let from = 0 // start of what is not counted yet
  let runStart = 0
  for (let i = 1; i <= end; i++) {
    if (i < end && isSpace(text.charCodeAt(i)) === isSpace(text.charCodeAt(runStart))) continue
    // A run of one class ends at i: a long one is counted apart, in pieces.
    if (i - runStart > RUN) {
      if (runStart > from) total += enc.countTokens(text.slice(from, runStart))
      for (let at = runStart; at < i; at += RUN) total += enc.countTokens(text.slice(at, Math.min(at + RUN, i)))
      from = i
    }
    runStart = i
  }
  if (from < end) total += enc.countTokens(text.slice(from, end))
  return total
}

/**
 * Tokens of a text (0 for the empty text, without loading anything). Exact up to `EXACT_CHARS`
 * characters (long runs aside); beyond, the rest is counted at the rate of the part tokenised.
 */
export const count = (text: string, enc: Encoder = encoder()): number => {
  if (text.length === 0) return 0
  if (text.length <= EXACT_CHARS) return countSliced(enc, text, text.length)
  const counted = countSliced(enc, text, EXACT_CHARS)
  return counted + Math.ceil(((text.length - EXACT_CHARS) * counted) / EXACT_CHARS)
}

/**
 * At least the tokens of a text: exact up to `EXACT_CHARS` characters, three per UTF-16 unit beyond
 * (no token is shorter than a UTF-8 byte, and no UTF-16 unit longer than three).
 */
export const upperBound = (text: string, enc: Encoder = encoder()): number => {
  if (text.length === 0) return 0
  if (text.length <= EXACT_CHARS) return countSliced(enc, text, text.length)
  return countSliced(enc, text, EXACT_CHARS) + 3 * (text.length - EXACT_CHARS)
}

/** Loads the encoder now, so the first count does not pay for it. */
export const warm: Effect.Effect<void> = Effect.sync(() => void encoder())

export const countText = (text: string): Effect.Effect<number> => Effect.sync(() => count(text))
