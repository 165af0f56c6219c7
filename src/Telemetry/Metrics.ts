/**
 * The ledger writer's metrics, as `effect/Metric` values in the global registry, so the admin
 * listener's `/metrics` exports them as they are. Updated only when something goes wrong (and
 * `written` when a batch lands), never per request on the hot path.
 */
import * as Metric from "effect/Metric"

/** Rows that never reached the ledger: dropped under `continue`, refused for their content, or still held at exit. */
export const rowsLost = Metric.counter("tollgate_ledger_rows_lost_total", {
  description: "Ledger rows that could not be written and were dropped",
  incremental: true
})

/** Episodes in which the ledger could not be written (each raises one alert). */
export const writeFailures = Metric.counter("tollgate_ledger_write_failures_total", {
  description: "Episodes in which the ledger could not be written",
  incremental: true
})

/** Requests refused with 503 because the ledger could not be written (`database.onWriteFailure: block`). */
export const requestsRefused = Metric.counter("tollgate_ledger_requests_refused_total", {
  description: "Requests refused because the ledger could not be written",
  incremental: true
})

/** Rows held in memory while the ledger cannot be written (`block`). */
export const rowsHeld = Metric.gauge("tollgate_ledger_rows_held", {
  description: "Ledger rows held in memory, waiting for the ledger to be writable"
})

/** 1 while the ledger is writable, 0 while it is failing. */
export const writable = Metric.gauge("tollgate_ledger_writable", {
  description: "1 while the ledger can be written, 0 while writes fail"
})
