/**
 * The executable's log lines have their messages' control characters escaped: a message that
 * carries a newline (a refused config reload lists one problem per line) stays one log line, so no
 * text inside a message can pass for a log line of its own.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

describe("log lines", () => {
  it.scoped("a message with newlines is one escaped log line", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-logs-"))
      const file = path.join(dir, "tollgate.yaml")
      fs.writeFileSync(file, "providers:\n  sim: { kind: mock }\n")
      const env: Record<string, string> = {}
      for (const [name, value] of Object.entries(process.env)) {
        if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|PORT$|HOST$)/.test(name)) env[name] = value
      }
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [BIN, "start", "--port", "0", "--config", file, "--watch"], {
            cwd: dir,
            env: { ...env, HOME: dir, TOLLGATE_DB: path.join(dir, "ledger.db") }
          })
        ),
        (child: ChildProcess) =>
          Effect.async<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          })
      )
      const watching = yield* Deferred.make<void>()
      const refused = yield* Deferred.make<void>()
      let stdout = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8")
        if (stdout.includes("watching ")) Deferred.unsafeDone(watching, Effect.void)
        if (/config reload refused[^\n]*\n/.test(stdout)) Deferred.unsafeDone(refused, Effect.void)
      })
      yield* Deferred.await(watching).pipe(Effect.timeout("20 seconds"), Effect.orDie)
      // Two problems: the refusal's message lists each on a line of its own.
      fs.writeFileSync(file, "providers:\n  sim: { kind: mock }\nroutes:\n  - { name: a, targets: [ { provider: nope } ] }\n  - { name: b, targets: [ { provider: gone } ] }\n")
      yield* Deferred.await(refused).pipe(Effect.timeout("20 seconds"), Effect.orDie)
      const line = stdout.split("\n").find((l) => l.includes("config reload refused"))!
      assert.match(line, /ERROR/)
      assert.include(line, "\\n")
      assert.include(line, "nope")
      assert.include(line, "gone")
      // Nothing of the message is on a line of its own.
      assert.strictEqual(stdout.split("\n").filter((l) => l.includes("unknown provider")).length, 1)
    }), { timeout: 60_000 })
})
