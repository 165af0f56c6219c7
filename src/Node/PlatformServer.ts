/**
 * A `node:http` server served by @effect/platform (`NodeHttpServer`), for a surface off the request
 * path (the admin listener): the platform's request machinery, which the public listener avoids,
 * costs nothing that matters there.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { createServer } from "node:http"

/**
 * Binds a fresh server at `options` (closed with the scope) as the platform's `HttpServer`. Its own
 * socket even in a worker of `start --workers` (`exclusive`): a surface of one process, not a port
 * the workers share.
 */
export const make = (options: { readonly port: number; readonly host: string }) =>
  NodeHttpServer.make(() => createServer(), { ...options, exclusive: true })
