/**
 * The real Redis the project's machines run as a service (127.0.0.1:6379; `TOLLGATE_TEST_REDIS_URL`
 * to point elsewhere). Each test gets a key prefix of its own, and its keys are deleted after.
 * A test that must stop and restart the server starts a private one (`privateServer`) on a free
 * port, so the shared service is never stopped under other suites. Where no server can be
 * reached, `unreachable` says why, and the suites skip with that reason.
 */
import { Effect } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { createServer } from "node:net"
import { Redis } from "ioredis"

export const URL = process.env.TOLLGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

const probe = async (url: string): Promise<void> => {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2_000, retryStrategy: () => null })
  try {
    await client.connect()
    await client.ping()
  } finally {
    client.disconnect()
  }
}

/** Why Redis cannot be used here, or `undefined` when it can (checked once, at load). */
export const unreachable: string | undefined = await probe(URL).then(
  () => undefined,
  (error: unknown) =>
    `Redis is not reachable at ${URL} (${error instanceof Error ? error.message : String(error)}); start it or set TOLLGATE_TEST_REDIS_URL`
)
if (unreachable !== undefined) console.warn(`SKIPPED: the Redis suites: ${unreachable}`)

/** `redis-server` is installed (for `privateServer`). */
export const serverBinary: string | undefined = spawnSync("redis-server", ["--version"]).status === 0 ? "redis-server" : undefined

/** A key prefix of this scope's own (`tollgate-test:<random>:`); its keys are deleted when the scope closes. */
export const freshPrefix = Effect.acquireRelease(
  Effect.sync(() => `tollgate-test:${randomBytes(6).toString("hex")}:`),
  (prefix) => Effect.promise(() => deleteKeys(URL, prefix))
)

/** Deletes every key under `prefix`. */
export const deleteKeys = async (url: string, prefix: string): Promise<void> => {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== "0")
  } finally {
    client.disconnect()
  }
}

const freePort = async (): Promise<number> => {
  const server = createServer()
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const port = (server.address() as { port: number }).port
  server.close()
  await once(server, "close")
  return port
}

export interface PrivateServer {
  readonly url: string
  readonly port: number
  /** Stops the server (SIGTERM) and waits for it to exit. */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port, empty (it keeps nothing on disk), once it answers. */
  readonly start: () => Promise<void>
}

/** A `redis-server` of this scope's own on a free port, nothing kept on disk; stopped when the scope closes. */
export const privateServer = Effect.acquireRelease(
  Effect.promise(async (): Promise<PrivateServer> => {
    const port = await freePort()
    const url = `redis://127.0.0.1:${port}`
    let child: ChildProcess | undefined
    const start = async () => {
      child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      // It prints this line once it accepts connections.
      let seen = ""
      for await (const chunk of child.stdout!) {
        seen += String(chunk)
        if (seen.includes("Ready to accept connections")) break
      }
      child.stdout!.resume()
    }
    const stop = async () => {
      const running = child
      child = undefined
      if (running === undefined || running.exitCode !== null) return
      const exited = once(running, "exit")
      running.kill("SIGTERM")
      await exited
    }
    await start()
    return { url, port, start, stop }
  }),
  (server) => Effect.promise(() => server.stop())
)
