#!/usr/bin/env node
/**
 * The `tollgate` executable: the only place that runs an Effect.
 *
 * Its first line stays plain `#!/usr/bin/env node`. `#!/usr/bin/env -S node --v8-pool-size=2`
 * would lower the peak RSS (docs/performance.md, Memory), but BusyBox's `env` (Alpine, and so
 * the `node:*-alpine` images) has no `-S` and refuses to start it (checked with BusyBox 1.35).
 * `npm start` gives node that flag.
 */
import { createRequire } from "node:module"
import { setFlagsFromString } from "node:v8"

/**
 * V8 lets the old generation grow to several times what survived the last full GC while the heap
 * limit is as large as it is by default on 64-bit machines; this makes it 2x. The live heap is
 * small, so the peak RSS is mostly that growth, and halving it cost no measurable CPU
 * (docs/performance.md, "Figures behind src/ comments"). A growth the user gives
 * (`node --heap-growing-percent=N`) is kept. Read by V8 at each GC, so setting it here, after
 * the modules are loaded, works; heap-size flags would not.
 */
const args = process.argv.slice(2)

// Only for `start`: a command that reads the ledger and exits is done before the heap would grow,
// and there the extra full GCs cost it start time.
if (args.includes("start") && !process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent/.test(flag))) {
  setFlagsFromString("--heap-growing-percent=100")
}
/** A log message's control characters as escapes (`\n`, `\u001b`); tabs kept. */
function escapeControl(message: unknown): unknown {
  return typeof message !== "string"
    ? message
    // eslint-disable-next-line no-control-regex
    : message.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, (c) =>
      c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

if (args.length === 1 && args[0] === "--version") {
  // Answered before anything else is loaded: most of a command's start is loading modules
  // (scripts/bench/cli.mjs measures it). This file is dist/bin.js, so the package.json is one level up.
  console.log((createRequire(import.meta.url)("../package.json") as { version: string }).version)
} else {
  // Imported here, not above, so that `--version` loads none of them; each command then loads
  // only its own implementation (see Cli.ts).
  const [{ main }, NodeContext, NodeRuntime, Effect, Logger] = await Promise.all([
    import("./Cli.js"),
    import("@effect/platform-node/NodeContext"),
    import("@effect/platform-node/NodeRuntime"),
    import("effect/Effect"),
    import("effect/Logger")
  ])
  // The pretty logger runMain would install, with control characters in messages escaped: no
  // text inside a message (a provider's error, a config problem) can start a log line of its own.
  const escaped = Logger.mapInput(Logger.prettyLoggerDefault, (message: unknown) =>
    Array.isArray(message) ? message.map(escapeControl) : escapeControl(message))
  main(process.argv).pipe(
    Effect.provide(NodeContext.layer),
    Effect.provide(Logger.replace(Logger.defaultLogger, escaped)),
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
}
