/**
 * Reads an `openai` SDK stream to its end or to the error it raises (a proxy's final error event
 * is raised as one): what arrived before, and the error, if any.
 */
import { Effect } from "effect"
import type OpenAI from "openai"

export interface Read {
  readonly chunks: ReadonlyArray<OpenAI.ChatCompletionChunk>
  /** The content deltas joined. */
  readonly text: string
  readonly failure: unknown
}

export const readToEnd = (stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Effect.Effect<Read> =>
  Effect.promise(async () => {
    const chunks: Array<OpenAI.ChatCompletionChunk> = []
    let text = ""
    try {
      for await (const chunk of stream) {
        chunks.push(chunk)
        text += chunk.choices[0]?.delta.content ?? ""
      }
      return { chunks, text, failure: undefined }
    } catch (failure) {
      return { chunks, text, failure }
    }
  })
