/**
 * What the operations commands (`doctor`, `providers check`) ask of the machine: whether a port can
 * be bound, whether a host answers a TCP connect, and a failure that only sets the exit code.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as net from "node:net"

/**
 * The command has already printed why it failed (a `fail` line, a provider that did not answer):
 * the CLI exits 1 and prints nothing more.
 */
export class ChecksFailed extends Data.TaggedError("ChecksFailed")<{ readonly failed: number }> {}

/** Binds `host:port` and closes it again: `undefined` when it could, else the error code (`EADDRINUSE`...). */
export const bindProbe = (host: string, port: number): Effect.Effect<string | undefined> =>
  Effect.async<string | undefined>((resume) => {
    const server = net.createServer()
    server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? error.message)))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resume(Effect.succeed(undefined))))
    return Effect.sync(() => server.close())
  })

/** The host and port a URL connects to (the scheme's port when it names none). */
export const endpointOf = (url: string): { readonly host: string; readonly port: number } => {
  const parsed = new URL(url)
  const port = parsed.port !== "" ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), port }
}

/**
 * Opens a TCP connection to `host:port` and closes it, sending nothing. Succeeds with the time it
 * took in ms, fails with why not (a refused port, an unknown host, a timeout).
 */
export const tcpConnect = (host: string, port: number, timeoutMs: number): Effect.Effect<number, string> =>
  Effect.async<number, string>((resume) => {
    const started = performance.now()
    const socket = net.connect({ host, port })
    socket.setTimeout(timeoutMs, () => {
      socket.destroy()
      resume(Effect.fail(`no answer within ${timeoutMs / 1000} s`))
    })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(performance.now() - started))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy()
      resume(Effect.fail(error.code ?? error.message))
    })
    return Effect.sync(() => socket.destroy())
  })
