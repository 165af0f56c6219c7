/**
 * What the dialects, the bridges (`Dialect/`) and `Whole.ts` build and `Streaming.ts` reads: its
 * own module, so that none of them imports another for it.
 */
import type { Usage } from "../Domain/Usage.js"

/** Watches (and, across shapes, translates) a streamed answer as it passes. */
export interface StreamWatch {
  /** Upstream bytes in; bytes for the client out (possibly empty). */
  readonly push: (chunk: Uint8Array) => Uint8Array
  /** The upstream ended: what is left for the client. */
  readonly end: () => Uint8Array
  /** Usage the provider reported, if it did. */
  readonly usage: () => Usage | undefined
  readonly model: () => string | undefined
  /** The stream's terminal event was seen. */
  readonly done: () => boolean
  /** Generated text so far, only to estimate tokens when no usage came (at most `COMPLETION_CAP` characters of it). */
  readonly completionText: () => string
  /** Characters of generated text so far (more than `completionText` has when it passed its cap). */
  readonly completionChars: () => number
  /** Generated text since the last call (for the mid-stream budget guard); "" when unknown. */
  readonly newText: () => string
  /** Characters held for an event not yet terminated (what a provider's limit on one event bounds). */
  readonly pending: () => number
  /** A whole (JSON) answer passed through as it comes, not an event stream: a failure ends it with no event. */
  readonly whole: boolean
  /** This stream's own final error event, for a stream whose events are numbered (Responses); else the dialect's is used. */
  readonly streamError?: ((message: string) => string) | undefined
}
