/**
 * Token counts with `gpt-tokenizer` (o200k_base, the encoding of current OpenAI models): input
 * estimates for routing and budget reservations (through `Domain/RequestFacts`), and usage
 * estimates when a provider reports none.
 *
 * One copy of the encoder per process (~70 MB resident), loaded on first use, synchronously, so a
 * decision never waits on a promise and never loads a second copy. Layers whose config will need
 * counts on every request (`warm`) load it when they are built instead, so no request pays for it.
 */
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"

type Encoder = { readonly countTokens: (text: string) => number }

let loaded: Encoder | undefined

const encoder = (): Encoder => {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)("gpt-tokenizer/cjs/encoding/o200k_base") as Encoder
  }
  return loaded
}

/** Loads the encoder now, so the first count does not pay for it. */
export const warm: Effect.Effect<void> = Effect.sync(() => void encoder())

/** Tokens of a text; 0 for the empty text without loading anything. */
export const count = (text: string): number => (text.length === 0 ? 0 : encoder().countTokens(text))

export const countText = (text: string): Effect.Effect<number> => Effect.sync(() => count(text))
