/**
 * The conformance corpus, run both ways through the translators: every request, response, error
 * and stream case goes OpenAI -> Anthropic and Anthropic -> OpenAI, and each result is compared
 * field by field with the expectation written in the fixture (a mismatch names its path).
 * Streams are fed cut at several sizes (1 byte splits every event, line and UTF-8 character).
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Translate from "../../src/Translate.js"
import {
  anthropicSse,
  corpus,
  cut,
  ofKind,
  openAiSse,
  parseAnthropicSse,
  parseOpenAiSse,
  runStream
} from "../support/TranslateCorpus.js"

/** Paths where `actual` and `expected` differ (missing, extra, or different leaves). */
const mismatches = (actual: unknown, expected: unknown, at = "$"): Array<string> => {
  if (typeof expected !== "object" || expected === null || typeof actual !== "object" || actual === null) {
    return Object.is(actual, expected) ? [] : [`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`]
  }
  if (Array.isArray(expected) !== Array.isArray(actual)) return [`${at}: expected ${Array.isArray(expected) ? "an array" : "an object"}`]
  const keys = new Set([...Object.keys(expected), ...Object.keys(actual)])
  const out: Array<string> = []
  for (const key of keys) {
    const a = (actual as Record<string, unknown>)[key]
    const e = (expected as Record<string, unknown>)[key]
    if (!(key in expected)) out.push(`${at}.${key}: unexpected ${JSON.stringify(a)}`)
    else if (!(key in actual)) out.push(`${at}.${key}: missing (expected ${JSON.stringify(e)})`)
    else out.push(...mismatches(a, e, `${at}.${key}`))
  }
  return out
}

const assertFields = (actual: unknown, expected: unknown, label: string) => {
  const diff = mismatches(actual, expected)
  assert.deepStrictEqual(diff, [], `${label}:\n${diff.join("\n")}`)
  assert.deepStrictEqual(actual, expected)
}

const right = <A, E>(result: Either.Either<A, E>, label: string): A => {
  if (Either.isLeft(result)) return assert.fail(`${label}: refused: ${JSON.stringify(result.left)}`)
  return result.right
}

describe("translation corpus", () => {
  it("has at least 25 cases covering every kind", () => {
    assert.isAtLeast(corpus.length, 25)
    for (const kind of ["request", "reject", "response", "error", "stream"] as const) assert.isAtLeast(ofKind(kind).length, 1, kind)
  })

  describe("requests", () => {
    for (const c of ofKind("request")) {
      it(`${c.file}: OpenAI -> Anthropic`, () => {
        assertFields(right(Translate.toAnthropicRequest(c.openai), c.name), c.openAiToAnthropic ?? c.anthropic, c.name)
        for (const [i, v] of (c.variants ?? []).entries()) {
          assertFields(right(Translate.toAnthropicRequest(v.openai), `${c.name} #${i}`), v.openAiToAnthropic, `${c.name} #${i}`)
        }
      })
      it(`${c.file}: Anthropic -> OpenAI`, () => {
        assertFields(right(Translate.toOpenAiRequest(c.anthropic), c.name), c.anthropicToOpenAi ?? c.openai, c.name)
      })
    }
  })

  describe("refusals", () => {
    for (const c of ofKind("reject")) {
      it(`${c.file}: both ways end in a BadRequest naming the parameter`, () => {
        const toAnthropic = Translate.toAnthropicRequest(c.openai)
        const toOpenAi = Translate.toOpenAiRequest(c.anthropic)
        if (Either.isRight(toAnthropic) || Either.isRight(toOpenAi)) return assert.fail(`${c.name}: was translated`)
        assert.strictEqual(toAnthropic.left._tag, "BadRequest")
        assert.deepInclude(toAnthropic.left, c.openAiRejected)
        assert.deepInclude(toOpenAi.left, c.anthropicRejected)
        assert.isAbove(toAnthropic.left.message.length, 10)
      })
    }
  })

  describe("responses", () => {
    for (const c of ofKind("response")) {
      it(`${c.file}: Anthropic -> OpenAI`, () => {
        assertFields(Translate.fromAnthropicMessage(c.anthropic, c.requestedModel, { created: c.created }), c.anthropicToOpenAi, c.name)
      })
      it(`${c.file}: OpenAI -> Anthropic`, () => {
        assertFields(Translate.fromOpenAiCompletion(c.openai, c.requestedModel), c.openAiToAnthropic, c.name)
      })
    }
  })

  describe("errors", () => {
    for (const c of ofKind("error")) {
      it(`${c.file}: both ways`, () => {
        assertFields(Translate.anthropicErrorToOpenAi(c.anthropic), c.anthropicToOpenAi, c.name)
        assertFields(Translate.openAiErrorToAnthropic(c.openai, c.status), c.openAiToAnthropic, c.name)
      })
    }
  })

  describe("streams", () => {
    for (const c of ofKind("stream")) {
      for (const size of [1, 7, 64, 1 << 20]) {
        it(`${c.file}: Anthropic -> OpenAI, cut every ${size} bytes`, () => {
          const translator = new Translate.AnthropicToOpenAiStream({ includeUsage: c.includeUsage, created: c.created })
          const out = runStream(translator, cut(anthropicSse(c.anthropic), size))
          assertFields(parseOpenAiSse(out), c.anthropicToOpenAi, c.name)
          assert.strictEqual(translator.done, c.anthropicToOpenAi.at(-1) === "[DONE]")
        })
        it(`${c.file}: OpenAI -> Anthropic, cut every ${size} bytes`, () => {
          const translator = new Translate.OpenAiToAnthropicStream()
          const out = runStream(translator, cut(openAiSse(c.openai), size))
          assertFields(parseAnthropicSse(out), c.openAiToAnthropic, c.name)
          assert.strictEqual(translator.done, c.openai.at(-1) === "[DONE]")
        })
      }
    }
  })
})
