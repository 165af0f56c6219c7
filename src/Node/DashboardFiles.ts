/**
 * Finds and reads the web dashboard's files, once, when the admin listener starts: the page,
 * its script and style sheet (written by hand, in `src/Admin/Dashboard/`) and uPlot's bundle and
 * style sheet. `npm run build` copies all of them to `dist/dashboard/` (scripts/build-bin.mjs), so
 * the installed package serves them with no network and no uPlot package; run from `src/` (the
 * tests), the page's own files are read where they are written and uPlot from node_modules.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The files, by the name the page asks for. */
export const NAMES = ["index.html", "dashboard.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css"] as const
export type Name = typeof NAMES[number]

const here = path.dirname(fileURLToPath(import.meta.url))

const exists = (file: string) => fs.access(file).then(() => true, () => false)

/**
 * Where each file is: beside the sources when this module runs from `src/`, else in the build's
 * `dashboard/` folder, beside this module or one level up (`dist/bin.js`, `dist/chunks/*.js` and
 * the library's `dist/Node/*.js` all find `dist/dashboard/`).
 */
const locate = Effect.tryPromise({
  try: async (): Promise<Record<Name, string>> => {
    const sources = path.join(here, "..", "Admin", "Dashboard")
    if (await exists(path.join(sources, "index.html"))) {
      const uplot = path.dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"))
      return {
        "index.html": path.join(sources, "index.html"),
        "dashboard.js": path.join(sources, "dashboard.js"),
        "dashboard.css": path.join(sources, "dashboard.css"),
        "uPlot.iife.min.js": path.join(uplot, "uPlot.iife.min.js"),
        "uPlot.min.css": path.join(uplot, "uPlot.min.css")
      }
    }
    const beside = path.join(here, "dashboard")
    const built = (await exists(path.join(beside, "index.html"))) ? beside : path.join(here, "..", "dashboard")
    return Object.fromEntries(NAMES.map((name) => [name, path.join(built, name)])) as Record<Name, string>
  },
  catch: (cause) => String(cause)
})

/** The files' contents, or why they could not be read (the dashboard then says so; the rest of the listener serves on). */
export const read: Effect.Effect<Record<Name, Uint8Array>, string> = Effect.flatMap(locate, (paths) =>
  Effect.tryPromise({
    try: async () => {
      const contents: Partial<Record<Name, Uint8Array>> = {}
      for (const name of NAMES) contents[name] = await fs.readFile(paths[name])
      return contents as Record<Name, Uint8Array>
    },
    catch: (cause) => `the web dashboard's files are missing (${(cause as Error).message}); build the package with npm run build`
  }))
