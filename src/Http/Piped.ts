/**
 * A response body that writes itself to Node's `ServerResponse`, for bytes that come from a Node
 * stream and need no Effect between chunks (a provider's stream passed through). The listener
 * writes the head, calls `run`, and waits for it to settle; whatever way the exchange ends (done,
 * failed, or the client gone), `after` runs once, on the request's fiber.
 */
import type * as Effect from "effect/Effect"
import type { ServerResponse } from "node:http"

export class Piped {
  constructor(
    /**
     * Starts writing to `res`; calls `settle` once, when the body is complete (`res` ended) or a
     * write threw (the defect). Returns a cancel: the client is gone, stop reading.
     */
    readonly run: (res: ServerResponse, settle: (defect?: unknown) => void) => () => void,
    /** After the exchange: `interrupted` when the client went away before it was complete. */
    readonly after: (interrupted: boolean) => Effect.Effect<void>
  ) {}
}
