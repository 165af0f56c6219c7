/**
 * The one way a duration is written in `tollgate.yaml` (and in a config given in code): a number
 * with its unit, `250ms`, `20s`, `1.5m`, `1h` or `1d`. A bare number is refused rather than read
 * as milliseconds, since `ttl: 3600` was far more likely meant as seconds. Every duration field of
 * every settings schema uses `Millis`; this module imports nothing from them, so any can import it.
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

const FORM = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const EXPECTED = "expected a duration such as 250ms, 20s, 5m, 1h or 1d"

/** A written duration (`250ms` ... `1d`), decoded to milliseconds; encoded back as `<n>ms`. */
export const Millis = Schema.transformOrFail(
  // The message replaces Schema's own "Expected string, actual 3600" for a bare number.
  Schema.String.annotations({ message: () => EXPECTED }),
  Schema.NonNegative,
  {
    strict: true,
    decode: (text, _, ast) => {
      const match = FORM.exec(text.trim())
      return match === null
        ? ParseResult.fail(new ParseResult.Type(ast, text, EXPECTED))
        : ParseResult.succeed(Number(match[1]) * UNIT_MS[match[2]!]!)
    },
    encode: (millis) => ParseResult.succeed(`${millis}ms`)
  }
).annotations({ identifier: "Duration" })
