#!/usr/bin/env node
// Checks the package as a user gets it: `npm pack` (which builds), then a fresh folder that
// installs the tarball with `effect` and `@effect/platform-node` as the README says (no versions:
// npm picks them from tollgate's peer ranges, so this shows what an app really gets), and a tiny
// program that composes the README's library layers with a temporary ledger, serves on port 0,
// asks /healthz once and stops; then the library example (examples/library.mjs, tollgate's routes
// mounted in the app's own HttpLayerRouter on NodeHttpServer), run as it is, on port 0: the app's
// route, a JSON answer and a stream to its [DONE], then SIGTERM, after which it must exit on its
// own. Needs the npm registry and takes minutes: not part of the tests.
//
//   node scripts/check-pack.mjs [--keep]     (--keep leaves the temporary folder for a look)
import { execFileSync, spawn } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const work = mkdtempSync(path.join(tmpdir(), "tollgate-pack-"))
const app = path.join(work, "app")
const keep = process.argv.includes("--keep")

const run = (command, args, cwd) => {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    process.stderr.write(`${command} ${args.join(" ")} failed in ${cwd} (left ${work}):\n${error.stdout ?? ""}${error.stderr ?? ""}\n`)
    process.exit(1)
  }
}

const step = (text) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`)

/** The library example as a user runs it: served, asked, stopped with SIGTERM; it must exit on its own. */
async function runExample() {
  const child = spawn(process.execPath, ["library.mjs"], { cwd: app, env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const fail = (message) => {
    child.kill("SIGKILL")
    process.stderr.write(`library.mjs: ${message} (left ${work}); its output:\n${output}\n`)
    process.exit(1)
  }
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  const timer = setTimeout(() => fail("not done 30 s after its start"), 30_000)
  let listening = false
  const base = await new Promise((resolve) => {
    const onData = (data) => {
      output += data
      const found = /Listening on (http:\/\/[^\s]+)/.exec(output)
      if (found && !listening) {
        listening = true
        resolve(found[1])
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    exited.then(() => listening || fail("exited before it listened"))
  })
  step(`listening on ${base}`)
  const hello = await fetch(`${base}/hello`).then((r) => r.text())
  if (hello !== "Hello from my app") fail(`GET /hello answered ${JSON.stringify(hello)}`)
  const ask = (stream) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "hi" }] })
    })
  const json = await ask(false).then((r) => r.json())
  if (json.choices?.[0]?.message?.content !== "Hello from inside my app") fail(`the JSON answer was ${JSON.stringify(json)}`)
  step("POST /v1/chat/completions: " + json.choices[0].message.content)
  const streamed = await ask(true).then((r) => r.text())
  if (!streamed.trimEnd().endsWith("data: [DONE]")) fail(`the stream did not end with [DONE]: ${streamed}`)
  step(`POST /v1/chat/completions, stream: ${streamed.split("\n\n").filter(Boolean).length} events, to [DONE]`)
  child.kill("SIGTERM")
  const { code, signal } = await exited
  clearTimeout(timer)
  step(`stopped by SIGTERM: exit code ${code}${signal ? `, signal ${signal}` : ""}`)
}

try {
  step(`npm pack (builds dist/) into ${work}`)
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], root))
  const tarball = path.join(work, packed.filename)
  step(`${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} KB packed, ${(packed.unpackedSize / 1024 / 1024).toFixed(1)} MB unpacked`)

  mkdirSync(app)
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "tollgate-pack-check", private: true, type: "module" }, null, 2))
  step("npm install <tarball> effect @effect/platform-node")
  run("npm", ["install", "--no-audit", "--no-fund", tarball, "effect", "@effect/platform-node"], app)

  const versionOf = (name) => JSON.parse(readFileSync(path.join(app, "node_modules", name, "package.json"), "utf8")).version
  for (const name of ["effect", "@effect/platform", "@effect/platform-node", "@effect/sql", "@effect/sql-sqlite-node"]) {
    step(`installed ${name}@${versionOf(name)}`)
  }
  // One copy of effect in the tree: two would make the app's tags and tollgate's different types.
  const copies = run("npm", ["ls", "effect", "--all", "--parseable"], app).trim().split("\n").filter(Boolean)
  step(`copies of effect in node_modules: ${copies.length}`)

  writeFileSync(path.join(app, "main.mjs"), `
import { HttpServer } from "@effect/platform"
import { Context, Effect, Layer } from "effect"
import { Config, Http } from "tollgate"

// The README's library program, with port 0 and a temporary ledger.
const Tollgate = Http.layer.pipe(
  Layer.provide(Config.layerFrom({
    server: { port: 0 },
    providers: { sim: { kind: "mock", reply: "Hello from inside my app" } },
    database: { path: ${JSON.stringify(path.join(work, "ledger.db"))} }
  }))
)

const program = Effect.scoped(Effect.gen(function*() {
  const server = Context.get(yield* Layer.build(Tollgate), HttpServer.HttpServer)
  if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
  const response = yield* Effect.promise(() => fetch("http://127.0.0.1:" + server.address.port + "/healthz"))
  const body = yield* Effect.promise(() => response.text())
  console.log("GET /healthz on port " + server.address.port + ": " + response.status + " " + body)
  if (response.status !== 200) return yield* Effect.dieMessage("healthz answered " + response.status)
}))

// Stopping is part of the check: the process must end on its own once the scope is closed.
setTimeout(() => { console.error("still running 15 s after the start: something was not stopped"); process.exit(1) }, 15_000).unref()
Effect.runPromise(program).then(() => console.log("stopped"), (error) => { console.error(error); process.exitCode = 1 })
`)
  step("node main.mjs")
  process.stdout.write(run(process.execPath, ["main.mjs"], app))

  copyFileSync(path.join(root, "examples", "library.mjs"), path.join(app, "library.mjs"))
  step("node library.mjs (examples/library.mjs), PORT=0")
  await runExample()
  step("ok")
} finally {
  if (keep) step(`left ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
