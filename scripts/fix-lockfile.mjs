#!/usr/bin/env node
/**
 * Makes package-lock.json acceptable to `npm ci` on this project's machines.
 *
 * The npm registry reachable here does not serve every platform's optional native package
 * (e.g. `@rollup/rollup-darwin-x64` answers 404), so `npm install` cannot record them in the
 * lock, and `npm ci` then refuses the lock as "out of sync" (it wants an entry for every
 * optional dependency, whatever the platform). This adds the missing entries with their
 * os/cpu/libc, so npm ci knows they are for other platforms and skips them.
 *
 * Run after any `npm install` that changes the lock:  node scripts/fix-lockfile.mjs
 */
import * as fs from "node:fs"

const file = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(fs.readFileSync(file, "utf8"))
const packages = lock.packages

const OS = ["android", "darwin", "freebsd", "linux", "netbsd", "openbsd", "openharmony", "sunos", "win32", "aix"]
const CPU = ["arm64", "x64", "ia32", "arm", "loong64", "ppc64", "riscv64", "s390x", "mips64el"]

/** os, cpu and libc from a platform package's name, e.g. rollup-linux-arm-musleabihf. */
const platformOf = (name) => {
  const parts = name.split("/").pop().split("-")
  const os = parts.find((p) => OS.includes(p))
  const cpu = parts.find((p) => CPU.includes(p))
  if (os === undefined || cpu === undefined) return undefined
  const libc = parts.some((p) => p.startsWith("musl")) ? ["musl"] : os === "linux" && parts.some((p) => p.startsWith("gnu")) ? ["glibc"] : undefined
  return { os: [os], cpu: [cpu], ...(libc === undefined ? {} : { libc }) }
}

let added = 0
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${path === "" ? "" : `${path}/`}node_modules/${name}`
    if (packages[nested] !== undefined || packages[`node_modules/${name}`] !== undefined) continue
    const platform = platformOf(name)
    if (platform === undefined || !/^\d+\.\d+\.\d+/.test(range)) {
      console.warn(`skipped ${name}@${range}: cannot tell its platform or version`)
      continue
    }
    packages[`node_modules/${name}`] = { version: range, ...platform, optional: true }
    added++
  }
}
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`package-lock.json: added ${added} entries for other platforms' optional packages`)
