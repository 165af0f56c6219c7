/**
 * The output items of the Responses answers tollgate itself translated (for providers without the
 * Responses API), kept for a while so that a client's `item_reference` to one of them can be
 * resolved: the AI SDK's default (`store: true`) refers back to earlier output items by id instead
 * of sending them again. Kept in memory only (never in the ledger), per tenant (project and client
 * key), at most `MAX_ITEMS` of them, the oldest forgotten first.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

type Json = Record<string, unknown>

/** Items kept across all tenants. */
export const MAX_ITEMS = 10_000

/** One tenant's view: what a bridge reads and writes. */
export interface ItemScope {
  readonly resolve: (id: string) => Json | undefined
  /** Keeps the output items of a Responses object tollgate produced. */
  readonly remember: (response: unknown) => void
}

export class ResponseItems extends Context.Tag("tollgate/ResponseItems")<ResponseItems, {
  readonly scope: (tenant: string) => ItemScope
}>() {}

export const make = (maxItems: number = MAX_ITEMS) =>
  Effect.sync(() => {
    // A Map keeps insertion order: the first key is the oldest.
    const items = new Map<string, Json>()
    const keep = (key: string, item: Json) => {
      items.delete(key)
      items.set(key, item)
      while (items.size > maxItems) items.delete(items.keys().next().value!)
    }
    return ResponseItems.of({
      scope: (tenant) => ({
        resolve: (id) => items.get(`${tenant}\u0000${id}`),
        remember: (response) => {
          const output = (response as { output?: unknown } | null)?.output
          if (!Array.isArray(output)) return
          for (const item of output) {
            if (typeof item === "object" && item !== null && typeof (item as Json).id === "string") {
              keep(`${tenant}\u0000${(item as Json).id as string}`, item as Json)
            }
          }
        }
      })
    })
  })

export const layer: Layer.Layer<ResponseItems> = Layer.effect(ResponseItems, make())
