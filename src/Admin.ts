/**
 * The admin listener (127.0.0.1:4101 by default, `server.admin`): the web dashboard at `/`,
 * `/metrics`, `/admin/*`, `/debug/*` (`Admin/Routes.ts`), on the same services as the public
 * listener. Off with `server.admin: false`; off loopback only with `server.adminKeys`, else start
 * is refused.
 *
 * Served by @effect/platform's `HttpRouter` on `NodeHttpServer`, not on tollgate's own listener:
 * nothing here is on a request's path (a scrape every few seconds), so the platform's per-request
 * cost, which the public listener was written to avoid, does not matter, and its router is less code.
 * What does reach the request path is shared process state, hence the untraced serve below.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type { SqlClient } from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Routes from "./Admin/Routes.js"
import type { Budget } from "./Budget.js"
import type { Circuit } from "./Circuit.js"
import { ConfigError, TollgateConfig, type TollgateSettings } from "./Config.js"
import { isLoopback } from "./Http.js"
import type { Recent } from "./Admin/Recent.js"
import type { Metrics } from "./Metrics.js"
import * as PlatformServer from "./Node/PlatformServer.js"
import type { LiveConfig } from "./Reload.js"
import type { Latency } from "./Router/Latency.js"
import type { Telemetry } from "./Telemetry.js"

export class AdminServer extends Context.Tag("tollgate/AdminServer")<AdminServer, {
  /** Where it listens; none when `server.admin` is `false`. */
  readonly address: Option.Option<HttpServer.TcpAddress>
}>() {}

/** The services the admin routes read: the composition root's (`Services.ts`). */
export type Requirements = TollgateConfig | Metrics | Recent | Circuit | Budget | Telemetry | LiveConfig | Latency | SqlClient

/**
 * Metrics, budgets and a reload reachable by anyone on the network, with no key, would show
 * what is spent and let anyone change the routing: refused before anything listens.
 */
export const refuseOpenBind = (server: TollgateSettings["server"]): Effect.Effect<void, ConfigError> => {
  const admin = server.admin
  return admin === false || server.adminKeys.length > 0 || isLoopback(admin.host)
    ? Effect.void
    : Effect.fail(
      new ConfigError({
        message: `refusing to serve the admin listener on ${admin.host} without server.adminKeys: anyone who can reach it would read ` +
          "the metrics and spend and could reload the routing. Set server.adminKeys (send one as Authorization: Bearer ...), " +
          "listen on 127.0.0.1 (server.admin.host), or turn it off (server.admin: false)"
      })
    )
}

/** Why the admin listener cannot bind, with the keys that move it. */
const bindError = (error: ServeError, admin: { readonly host: string; readonly port: number }): ConfigError | ServeError => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  const move = "set server.admin.port, TOLLGATE_ADMIN_PORT or --admin-port, or turn it off with server.admin: false"
  if (code === "EADDRINUSE") return new ConfigError({ message: `admin port ${admin.port} is in use (${move})` })
  if (code === "EACCES") return new ConfigError({ message: `admin port ${admin.port} needs privileges to bind (${move})` })
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new ConfigError({ message: `admin host ${admin.host} is not an address of this machine (set server.admin.host)` })
  }
  return error
}

/** The admin listener on the services the caller provides. */
export const layerWithoutDependencies: Layer.Layer<AdminServer, ServeError | ConfigError, Requirements> = Layer.scoped(
  AdminServer,
  Effect.gen(function*() {
    const config = yield* TollgateConfig
    yield* refuseOpenBind(config.server)
    const admin = config.server.admin
    if (admin === false) return { address: Option.none() }
    const app = yield* Routes.make
    const server = yield* PlatformServer.make({ port: admin.port, host: admin.host }).pipe(
      Effect.mapError((error) => bindError(error, admin))
    )
    // Untraced: the platform's tracer reads each connection's peer address, which adds a field to
    // its socket; the public listener's sockets never get it, and Node's stream code, optimised for
    // their shape alone, was made to handle both on the first scrape (docs/performance.md).
    yield* server.serve(app).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))
    const address = server.address
    return { address: address._tag === "TcpAddress" ? Option.some(address) : Option.none() }
  })
)

/** `http://host:port` of a TCP address (an IPv6 host in brackets). */
export const urlOf = (address: HttpServer.TcpAddress): string =>
  `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
