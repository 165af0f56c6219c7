/**
 * The two pieces of undici the transport uses: its `Pool` (keep-alive connections to one origin)
 * and its callback `request`, imported from their own files rather than from the package's index.
 *
 * The index (`import { Pool } from "undici"`) also loads and runs fetch, WebSocket, EventSource,
 * the cache stores, the mock agents and the Node built-ins they use: several times the heap of
 * these two files, and it counts again at the peak under load. undici has no
 * `exports` map: these paths are as public as the index, and `Upstream/undici-files.d.ts` gives
 * them the index's types.
 */
import request from "undici/lib/api/api-request.js"
import PoolClass from "undici/lib/dispatcher/pool.js"
import type { Dispatcher, Pool } from "undici"

/**
 * `new Pool(origin, options)`. (Its types are the index's, so no declaration here names these
 * files.) A provider has one origin, so its pool is dispatched to directly: an `Agent` in front
 * (a pool per origin) looked the origin up, and forwarded the pool's events, on every request.
 */
export const makePool = (origin: string, options: Pool.Options): Pool => new PoolClass(origin, options)

/**
 * `dispatcher.request(options, callback)`. The index adds `request` to every dispatcher's
 * prototype; without the index, it is called on the dispatcher.
 */
export const requestWith = (
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  callback: (error: Error | null, data: Dispatcher.ResponseData) => void
): void => request.call(dispatcher, options, callback)
