#!/usr/bin/env node
// Builds the `tollgate` executable, dist/bin.js and the chunks it loads (dist/chunks/): src/bin.ts and everything it imports
// (effect, @effect/*, undici, yaml, ...), with the code no command reaches left out. Measured with
// the bench's config, an idle `tollgate start` holds ~110 MB RSS bundled against ~133 MB as ~1,000
// separate ES modules (the module records, and the source text V8 keeps for each), and ~40 MB less
// at its peak under load. The library (`dist/index.js` and the modules beside it, built by tsc) is
// not bundled: an app that composes tollgate's layers shares its own copy of effect with them.
//
// Left outside the bundle: better-sqlite3 (a native addon, loaded from node_modules: a direct
// dependency for that reason, so that a strict installer such as pnpm links it where dist/ can
// see it), the tokenizer's data, which `Tokens.ts` requires on first use, and the price data of
// @pydantic/genai-prices, written beside it as JSON (dist/genai-prices.json, which
// `Pricing/Data.ts` parses): the package's module is one 830 KB object literal, whose source and
// code held ~17 MB of RSS where the parsed JSON holds ~4.
import { waitForUpdate } from "@pydantic/genai-prices"
import { build } from "esbuild"
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const outdir = path.join(root, "dist")
const outfile = path.join(outdir, "bin.js")
const chunks = path.join(outdir, "chunks")

rmSync(chunks, { recursive: true, force: true })
await build({
  entryPoints: { bin: path.join(root, "src", "bin.ts") },
  outdir,
  // Split at the CLI's dynamic imports: each command's implementation, and `start`'s whole graph
  // (the proxy, undici, the tokenizer), is a chunk loaded when that command runs, so that
  // `tollgate --version` evaluates ~0.7 MB rather than all 2.1 (scripts/bench/cli.mjs times it).
  // The modules two chunks share go to a chunk of their own; `start` loads nearly all of them.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "@pydantic/genai-prices"],
  // The CommonJS packages in the bundle (undici, yaml, ...) call `require` for Node's built-ins.
  banner: { js: "import { createRequire as __tollgateRequire } from \"node:module\";\nconst require = __tollgateRequire(import.meta.url);" },
  // dist/bin.js.map: `node --enable-source-maps dist/bin.js` gives stack traces in src/ and
  // node_modules/ terms, and scripts/bench/profile.mjs maps a profile's frames back through it.
  sourcemap: "linked",
  sourcesContent: false,
  // Without comments and indentation the source text V8 keeps is 2.1 MB, not 3.1: and one byte per
  // character, where a handful of non-ASCII characters in dependencies' comments (a curly quote, a
  // section sign) made the whole text two bytes per character. Measured: the source string on the
  // heap 5.8 -> 2.1 MB, idle RSS ~112 -> ~108 MB. Names are kept, so profiles and stack traces
  // still read (and map back through the source map to files and lines).
  minifyWhitespace: true,
  logLevel: "warning",
  legalComments: "none"
})
chmodSync(outfile, 0o755)
writeFileSync(path.join(root, "dist", "genai-prices.json"), JSON.stringify(await waitForUpdate()))

// The web dashboard's files (src/Admin/Dashboard/) and uPlot's bundle and style sheet, beside the
// executable and the library in dist/dashboard/: the package serves them with no network, and
// without uplot (a devDependency) installed. `Node/DashboardFiles.ts` reads them from there.
const dashboard = path.join(outdir, "dashboard")
const uplot = path.dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"))
rmSync(dashboard, { recursive: true, force: true })
mkdirSync(dashboard, { recursive: true })
for (const name of ["index.html", "dashboard.js", "dashboard.css"]) copyFileSync(path.join(root, "src", "Admin", "Dashboard", name), path.join(dashboard, name))
for (const name of ["uPlot.iife.min.js", "uPlot.min.css"]) copyFileSync(path.join(uplot, name), path.join(dashboard, name))
