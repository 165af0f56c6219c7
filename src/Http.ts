/**
 * tollgate over HTTP, on its own listener: Node's `http` server with a lean handler of its own
 * (`Node/Listener.ts`, behind the Node boundary). To serve tollgate's routes from an app's own
 * `HttpRouter` / `HttpServer` instead, see `Mount.ts`.
 */
export { isLoopback, layer, layerWithoutDependencies, tcpAddressOf } from "./Node/Listener.js"
