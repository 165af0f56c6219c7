/**
 * The composition root: tollgate's whole service graph, wired once from each service's
 * `layerWithoutDependencies`. The listener (`Http.layer`), the mount (`Mount.routes`), the CLI and
 * the tests build from here, so one config gives one instance of each service however many
 * surfaces use it. `make` takes replacements for the services a test or an embedding app swaps:
 * the upstream, the ledger writer, the budget, the cache, the ledger itself.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import * as Layer from "effect/Layer"
import * as Recent from "./Admin/Recent.js"
import * as Alerts from "./Budget/Alerts.js"
import * as Budget from "./Budget.js"
import * as Cache from "./Cache.js"
import * as Circuit from "./Circuit.js"
import * as Coalesce from "./Coalesce.js"
import * as Items from "./Dialect/Items.js"
import type { TollgateConfig } from "./Config.js"
import * as Failover from "./Failover.js"
import * as Models from "./Models.js"
import * as Pricing from "./Pricing.js"
import * as Proxy from "./Proxy.js"
import * as Router from "./Router.js"
import * as Latency from "./Router/Latency.js"
import * as Metrics from "./Metrics.js"
import * as Redis from "./Redis.js"
import * as Reload from "./Reload.js"
import * as Store from "./Store.js"
import * as Telemetry from "./Telemetry.js"
import * as Ingest from "./Telemetry/Ingest.js"
import { withOtel } from "./Telemetry/Otel.js"
import * as Upstream from "./Upstream.js"

/** Services a caller may put in place of tollgate's own (each may need the config, and the ledger where the original does). */
export interface Replacements<E = never, R = never> {
  readonly upstream?: Layer.Layer<Upstream.Upstream, E, R | TollgateConfig>
  readonly telemetry?: Layer.Layer<Telemetry.Telemetry, E, R | TollgateConfig | SqlClient>
  readonly budget?: Layer.Layer<Budget.Budget, E, R | TollgateConfig | Pricing.Pricing | SqlClient | Alerts.Alerts | Redis.Redis>
  readonly cache?: Layer.Layer<Cache.Cache, E, R | TollgateConfig | SqlClient | Redis.Redis>
  /** The ledger (`Store.layerAt(":memory:")` in tests). */
  readonly store?: Layer.Layer<SqlClient, E, R | TollgateConfig>
}

/** What the graph gives: every service a surface (routes, CLI) reads. */
export type Services =
  | Proxy.Proxy
  | Models.Models
  | Circuit.Circuit
  | Telemetry.Telemetry
  | Pricing.Pricing
  | SqlClient
  | Cache.Cache
  | Coalesce.Coalesce
  | Budget.Budget
  | Alerts.Alerts
  | Metrics.Metrics
  | Recent.Recent
  | Latency.Latency
  | Reload.LiveConfig
  | Redis.Redis
  | Ingest.Ingest

/** The graph, with these services replaced. */
export const make = <E = never, R = never>(
  replace: Replacements<E, R> = {}
): Layer.Layer<Services, E | Store.StoreError, R | TollgateConfig> => {
  // Each layer below is one value used wherever it is needed: layers are shared by identity, so
  // the ledger, the prices and the breakers are built once for the whole graph.
  type Err = E | Store.StoreError
  type Req = R | TollgateConfig
  const store: Layer.Layer<SqlClient, Err, Req> = replace.store ?? Store.layer
  const pricing = Pricing.layer
  const alerts = Alerts.layer.pipe(Layer.provide(store))
  const writer: Layer.Layer<Telemetry.Telemetry, Err, Req | SqlClient | Alerts.Alerts> = replace.telemetry ?? Telemetry.layerWithoutDependencies
  // Its rows also become OpenTelemetry spans when OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const telemetry = withOtel(writer.pipe(Layer.provide(Layer.merge(store, alerts))))
  // Cloud ingest (when configured) sends the ledger's rows in the background; built after the
  // writer, which gives the ledger its id, and closed before it.
  const ingest = Ingest.layerWithoutDependencies.pipe(Layer.provide(Layer.merge(store, telemetry)))
  const budgetOf: Layer.Layer<Budget.Budget, Err, Req | Pricing.Pricing | SqlClient | Alerts.Alerts | Redis.Redis> = replace.budget ??
    Budget.layerWithoutDependencies
  const budget = budgetOf.pipe(Layer.provide(Layer.mergeAll(pricing, store, alerts, Redis.layer)))
  const cacheOf: Layer.Layer<Cache.Cache, Err, Req | SqlClient | Redis.Redis> = replace.cache ?? Cache.layerWithoutDependencies
  const cache = cacheOf.pipe(Layer.provide(Layer.merge(store, Redis.layer)))
  const upstream: Layer.Layer<Upstream.Upstream, Err, Req> = replace.upstream ?? Upstream.layer
  const models = Models.layer.pipe(Layer.provide(pricing))
  const metrics = Metrics.layerWithoutDependencies.pipe(Layer.provide(models))
  const failover = Failover.layerWithoutDependencies.pipe(Layer.provide(Layer.mergeAll(upstream, Circuit.layer, metrics)))
  // The live configuration the router follows, shared with the admin listener's reload.
  const router = Router.layerLive.pipe(Layer.provide(Reload.layer))
  const proxy = Proxy.layerWithoutDependencies.pipe(
    Layer.provide(Layer.mergeAll(router, failover, pricing, telemetry, cache, Coalesce.layer, Circuit.layer, Latency.layer, budget, metrics, Recent.layer, Items.layer))
  )
  return Layer.mergeAll(proxy, models, Circuit.layer, telemetry, pricing, store, cache, Coalesce.layer, budget, alerts, metrics, Recent.layer, Latency.layer, Reload.layer, Redis.layer, ingest)
}

/** tollgate's own services, from the config the caller provides. */
export const live: Layer.Layer<Services, Store.StoreError, TollgateConfig> = make()
