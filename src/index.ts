/**
 * tollgate as a library: the services and layers, to compose the proxy into another Effect program.
 * On its own listener:
 *
 *   const App = Http.layer.pipe(Layer.provide(Config.layerFrom({ server: { port: 8080 } })))
 *   Layer.launch(App).pipe(NodeRuntime.runMain)
 *
 * Or its routes in the app's own router and server (examples/library.mjs):
 *
 *   const Tollgate = Mount.routes.pipe(Layer.provide(Config.layerFrom({ ... })))
 *   HttpLayerRouter.serve(Layer.mergeAll(MyRoutes, Tollgate)).pipe(Layer.provide(NodeHttpServer.layer(...)), Layer.launch, NodeRuntime.runMain)
 *
 * The services alone, one of them replaced (`Services.make({ upstream: MyUpstream })`), for
 * `Mount.routesWithoutDependencies` or your own programs.
 */
export * as Budget from "./Budget.js"
export * as Cache from "./Cache.js"
export * as Circuit from "./Circuit.js"
export * as Coalesce from "./Coalesce.js"
export * as Config from "./Config.js"
export * as Errors from "./Domain/Errors.js"
export * as Failover from "./Failover.js"
export * as LedgerEvent from "./Domain/LedgerEvent.js"
export * as Usage from "./Domain/Usage.js"
export * as Http from "./Http.js"
export * as Ledger from "./Ledger.js"
export * as Mount from "./Mount.js"
export * as Services from "./Services.js"
export * as Pricing from "./Pricing.js"
export * as Proxy from "./Proxy.js"
export * as Router from "./Router.js"
export * as RequestFacts from "./Domain/RequestFacts.js"
export * as Latency from "./Router/Latency.js"
export * as Bytes from "./Bytes.js"
export * as Sse from "./Sse.js"
export * as Store from "./Store.js"
export * as Telemetry from "./Telemetry.js"
export * as Ingest from "./Telemetry/Ingest.js"
export * as Upstream from "./Upstream.js"
