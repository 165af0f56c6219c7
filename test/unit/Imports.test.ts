/**
 * No import cycles in `src`, type-only imports included: a cycle means two modules are one
 * concept split in two, or a shared type lives in the wrong place. Files are read as text, so
 * the walk sees exactly what is written (`import`, `import type`, `export ... from`).
 *
 * One Node boundary: only `src/Node/` imports `node:stream` or `node:http` (types included), so
 * Node's streams and server objects never leak into the types of the rest (`src/Bytes.ts`).
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as Failover from "../../src/Failover.js"
import * as Router from "../../src/Router.js"

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src")
const SPECIFIER = /(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']|(?:^|\n)\s*import\s*["'](\.{1,2}\/[^"']+)["']/g

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : []
  })

/** Each file of `src` (relative path) to the `src` files it imports. */
export const importGraph = (root: string): Map<string, Array<string>> => {
  const graph = new Map<string, Array<string>>()
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, "utf8")
    const targets = new Set<string>()
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = (match[1] ?? match[2])!
      targets.add(relative(root, resolve(dirname(file), specifier.replace(/\.js$/, ".ts"))))
    }
    graph.set(relative(root, file), [...targets].filter((target) => target.endsWith(".ts")).sort())
  }
  return graph
}

/** Every cycle, each once, as the path that closes it (`a.ts -> b.ts -> a.ts`). */
export const cycles = (graph: Map<string, Array<string>>): Array<string> => {
  const found = new Set<string>()
  const state = new Map<string, "open" | "done">()
  const stack: Array<string> = []
  const visit = (node: string): void => {
    state.set(node, "open")
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const loop = stack.slice(stack.indexOf(next))
        // Start each cycle at its smallest name, so the same cycle found twice is reported once.
        const start = loop.indexOf([...loop].sort()[0]!)
        const rotated = [...loop.slice(start), ...loop.slice(0, start)]
        found.add([...rotated, rotated[0]].join(" -> "))
      } else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(node, "done")
  }
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node)
  return [...found].sort()
}

describe("imports", () => {
  it("finds a cycle when there is one", () => {
    const graph = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]], ["d.ts", ["a.ts"]]])
    expect(cycles(graph)).toEqual(["a.ts -> b.ts -> c.ts -> a.ts"])
  })

  it("src has no import cycle", () => {
    const graph = importGraph(SRC)
    expect(graph.size).toBeGreaterThan(50)
    expect(cycles(graph)).toEqual([])
  })

  it("only src/Node/ imports node:stream or node:http (types included)", () => {
    const NODE_IO = /(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*["'](?:node:)?(?:stream|http)(?:\/[a-z]+)?["']|(?:^|\n)\s*import\s*["'](?:node:)?(?:stream|http)["']|\brequire\(\s*["'](?:node:)?(?:stream|http)["']|\bimport\(\s*["'](?:node:)?(?:stream|http)["']/
    const outside = sourceFiles(SRC)
      .filter((file) => !relative(SRC, file).startsWith(`Node${sep}`) && NODE_IO.test(readFileSync(file, "utf8")))
      .map((file) => relative(SRC, file))
    expect(outside).toEqual([])
    // The rule sees what it is meant to see.
    expect(NODE_IO.test(`import type { Readable } from "node:stream"`)).toBe(true)
    expect(NODE_IO.test(`import { STATUS_CODES } from "http"`)).toBe(true)
    expect(NODE_IO.test(`import { pipeline } from "node:stream/promises"`)).toBe(true)
    expect(NODE_IO.test(`import { hash } from "node:crypto"`)).toBe(false)
    expect(NODE_IO.test(`import * as Http from "./Http.js"`)).toBe(false)
  })

  it("a target's name has one definition: Failover's and Router's are the same function", () => {
    expect(Failover.targetName).toBe(Router.targetName)
  })
})
