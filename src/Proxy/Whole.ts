/**
 * A whole (JSON) answer larger than its provider's `limits.bufferBytes`, passed through to the
 * client as it comes instead of being read into memory (`Upstream/Transport.ts` hands it over as a
 * stream whose content type is not `text/event-stream`).
 *
 * OpenAI and Anthropic both put `usage` last in a message and `model` near its start, so the
 * watch keeps the first and last 64K characters only: at the end, `model` is read forward from
 * the start and `usage` backward from the end, each only as a key of the outermost object
 * (strings and nesting followed, so a "usage" inside content or tool input is not taken for it).
 * When there is none, usage is estimated from the answer's text (its first `COMPLETION_CAP`
 * characters counted, scaled to its length) and the row says `usage_source = estimated`.
 */
import type { Usage } from "../Domain/Usage.js"
import { Completion } from "../Sse.js"
import type { StreamWatch } from "./StreamWatch.js"

/** Characters kept from each end of the answer. */
const WINDOW = 64 * 1024

const EMPTY = new Uint8Array(0)

export const watchWhole = (usageOf: (raw: unknown) => Usage | undefined): StreamWatch => {
  const decoder = new TextDecoder()
  // The answer's text, JSON and all: what an estimate counts when no usage is found.
  const completion = new Completion()
  let head = ""
  let tail = ""
  let ended = false
  let usage: Usage | undefined
  let model: string | undefined
  const feed = (text: string) => {
    completion.add(text)
    if (head.length < WINDOW) head += text.slice(0, WINDOW - head.length)
    tail = text.length >= WINDOW ? text.slice(-WINDOW) : (tail + text).slice(-WINDOW)
  }
  return {
    push: (chunk) => {
      feed(decoder.decode(chunk, { stream: true }))
      return chunk
    },
    end: () => {
      feed(decoder.decode())
      ended = true
      const name = leadingValue(head, "model")
      model = typeof name === "string" ? name : undefined
      usage = usageOf(trailingValue(tail, "usage"))
      return EMPTY
    },
    usage: () => usage,
    model: () => model,
    done: () => ended,
    completionText: () => completion.text(),
    completionChars: () => completion.chars,
    newText: () => "",
    pending: () => 0,
    whole: true
  }
}

const QUOTE = 34
const BACKSLASH = 92
const COLON = 58
const COMMA = 44
const OPEN_BRACE = 123
const CLOSE_BRACE = 125
const OPEN_BRACKET = 91
const CLOSE_BRACKET = 93

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9

const skipSpace = (text: string, from: number): number => {
  let i = from
  while (i < text.length && isSpace(text.charCodeAt(i))) i++
  return i
}

/** Index just past the closing quote of the string opening at `open`, or -1 if it does not close. */
const stringEnd = (text: string, open: number): number => {
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === BACKSLASH) i++
    else if (c === QUOTE) return i + 1
  }
  return -1
}

/** Index of the opening quote of the string closing at `close`, or -1 (a quote after an odd run of backslashes is escaped). */
const stringStart = (text: string, close: number): number => {
  for (let j = close - 1; j >= 0; j--) {
    if (text.charCodeAt(j) !== QUOTE) continue
    let slashes = 0
    for (let k = j - 1; k >= 0 && text.charCodeAt(k) === BACKSLASH; k--) slashes++
    if (slashes % 2 === 0) return j
  }
  return -1
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * The value of `key` in the outermost object, read forward from the start of a JSON text (`head`
 * may end anywhere): a string, or undefined when the key is not there or its value is not a string.
 */
export const leadingValue = (head: string, key: string): string | undefined => {
  let depth = 0
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i)
    if (c === QUOTE) {
      const end = stringEnd(head, i)
      if (end < 0) return undefined
      if (depth === 1) {
        const colon = skipSpace(head, end)
        if (head.charCodeAt(colon) === COLON && head.slice(i + 1, end - 1) === key) {
          const value = skipSpace(head, colon + 1)
          if (head.charCodeAt(value) !== QUOTE) return undefined
          const valueEnd = stringEnd(head, value)
          const parsed = valueEnd < 0 ? undefined : parse(head.slice(value, valueEnd))
          return typeof parsed === "string" ? parsed : undefined
        }
      }
      i = end - 1
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth <= 0) return undefined
    }
  }
  return undefined
}

/**
 * The value of `key` in the outermost object, read backward from the end of a JSON text (`tail`
 * may start anywhere): parsed, or undefined when the key is not among the object's last members.
 */
export const trailingValue = (tail: string, key: string): unknown => {
  let i = tail.length - 1
  while (i >= 0 && isSpace(tail.charCodeAt(i))) i--
  if (i < 0 || tail.charCodeAt(i) !== CLOSE_BRACE) return undefined
  let depth = 0
  // Where the member being walked back over ends (its comma, or the object's closing brace).
  let valueEnd = i
  for (; i >= 0; i--) {
    const c = tail.charCodeAt(i)
    if (c === QUOTE) {
      const start = stringStart(tail, i)
      if (start < 0) return undefined
      if (depth === 1) {
        const colon = skipSpace(tail, i + 1)
        if (tail.charCodeAt(colon) === COLON && tail.slice(start + 1, i) === key) return parse(tail.slice(colon + 1, valueEnd))
      }
      i = start
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (++depth === 1) valueEnd = i
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (--depth <= 0) return undefined
    } else if (c === COMMA && depth === 1) {
      valueEnd = i
    }
  }
  return undefined
}
