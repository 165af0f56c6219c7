/**
 * The Docker image (issue #25): built from this checkout, started with a config that sets
 * server.apiKeys, probed on /healthz from the host and with its own HEALTHCHECK command. Needs a
 * Docker engine: without one (`docker info` fails) the test is skipped and its name says so.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { execFile, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const ROOT = path.resolve(import.meta.dirname, "../..")
const engine = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0
const IMAGE = `tollgate-test:${process.pid}`

/** `docker ...` to its end: stdout, or a failure with its stderr. */
const docker = (...args: Array<string>) =>
  Effect.async<string, string>((resume) => {
    execFile("docker", args, { cwd: ROOT, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resume(error === null ? Effect.succeed(stdout.trim()) : Effect.fail(`docker ${args[0]}: ${stderr || error.message}`)))
  })

/** A container from the image, removed with the scope. */
const container = (...args: Array<string>) =>
  Effect.acquireRelease(docker("run", "-d", ...args, IMAGE), (id) => Effect.ignore(docker("rm", "-f", id)))

/** Follows the container's output until it says it listens. */
const awaitListening = (id: string) =>
  Effect.gen(function*() {
    const listening = yield* Deferred.make<void, string>()
    const logs = yield* Effect.acquireRelease(
      Effect.sync(() => spawn("docker", ["logs", "-f", id])),
      (child) => Effect.sync(() => child.kill())
    )
    let output = ""
    const read = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      if (output.includes("listening on")) Deferred.unsafeDone(listening, Effect.void)
    }
    logs.stdout.on("data", read)
    logs.stderr.on("data", read)
    logs.once("exit", () => Deferred.unsafeDone(listening, Effect.fail(`the container stopped before listening:\n${output}`)))
    yield* Deferred.await(listening)
  })

describe("Docker image", () => {
  it.scopedLive.skipIf(!engine)(
    engine
      ? "builds, refuses 0.0.0.0 without server.apiKeys, serves /healthz as a non-root user with the ledger on /data"
      : "builds and serves /healthz (skipped: `docker info` failed, no Docker engine on this machine)",
    () =>
      Effect.gen(function*() {
        yield* Effect.acquireRelease(docker("build", "-t", IMAGE, "."), () => Effect.ignore(docker("rmi", "-f", IMAGE)))

        // The image's own CMD, with no config: a bind on 0.0.0.0 without client keys is refused.
        const refused = yield* docker("run", "--rm", IMAGE).pipe(Effect.flip)
        assert.include(refused, "refusing to listen on 0.0.0.0 without server.apiKeys")

        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-docker-"))
        fs.writeFileSync(path.join(dir, "tollgate.yaml"), "server:\n  apiKeys: [\"docker-test-key\"]\n")
        fs.chmodSync(dir, 0o755)
        fs.chmodSync(path.join(dir, "tollgate.yaml"), 0o644)
        const id = yield* container(
          "-p", "127.0.0.1::4100",
          "-v", `${dir}/tollgate.yaml:/config/tollgate.yaml:ro`,
          "-e", "TOLLGATE_CONFIG=/config/tollgate.yaml"
        )
        yield* awaitListening(id)
        const published = yield* docker("port", id, "4100/tcp")
        const port = /:(\d+)\s*$/m.exec(published)![1]
        const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/healthz`))
        assert.strictEqual(health.status, 200)
        // The image's HEALTHCHECK command, run in the container: exit 0 when /healthz answers.
        const check = JSON.parse(yield* docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}", id)) as Array<string>
        assert.strictEqual(check[0], "CMD")
        yield* docker("exec", id, ...check.slice(1))
        assert.strictEqual(yield* docker("exec", id, "id", "-u"), "1000")
        assert.include(yield* docker("exec", id, "ls", "/data"), "tollgate.db")
      }),
    900_000
  )
})
