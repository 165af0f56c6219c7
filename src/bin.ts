#!/usr/bin/env node
/**
 * The `tollgate` executable: the only place that runs an Effect.
 *
 * Its first line stays plain `#!/usr/bin/env node`. `#!/usr/bin/env -S node --v8-pool-size=2`
 * would take ~5-7 MB off the peak RSS (see README, Memory), but BusyBox's `env` (Alpine, and so
 * the `node:*-alpine` images) has no `-S` and refuses to start it (checked with BusyBox 1.35).
 * `npm start` gives node that flag.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { setFlagsFromString } from "node:v8"
import { main } from "./Cli.js"

/**
 * V8 lets the old generation grow to ~4x what survived the last full GC while the heap limit is as
 * large as it is by default on 64-bit machines (>= 2 GB); this makes it 2x. The live heap is
 * small (~19 MB under the bench's 50 connections), so the peak RSS is mostly that growth: ~185 ->
 * ~150 MB there, with ~3x as many full GCs and no CPU difference measurable in paired runs (JSON
 * and cache hits, each order: median ratios 0.94-1.0). `50` cost 8-13% more CPU. A growth the user
 * gives (`node --heap-growing-percent=N`) is kept. Read by V8 at each GC, so setting it here, after
 * the modules are loaded, works; heap-size flags would not.
 */
if (!process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent/.test(flag))) {
  setFlagsFromString("--heap-growing-percent=100")
}

main(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true }))
