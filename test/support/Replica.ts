/**
 * Real `tollgate start` processes (dist/bin.js, built by `npm test` before the suites) for the
 * scale-out tests: each in an empty folder with an empty HOME, on a free port, with the config
 * given; stopped (SIGTERM, then waited for) when the scope closes. And an OpenAI-compatible
 * upstream that answers after a delay, so that requests are in flight together.
 */
import { Deferred, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { stringify } from "yaml"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

export interface Replica {
  readonly baseUrl: string
  readonly child: ChildProcess
  /** Everything it printed (stdout and stderr). */
  readonly output: () => string
}

/** The environment of the test runner without tollgate's, providers' or a database's variables. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|DATABASE_URL$|PORT$|HOST$)/.test(name)) env[name] = value
  }
  return env
}

/** `tollgate start --port 0` on `config` (with `env` added to a clean environment); resolves once it listens. */
export const start = (config: Record<string, unknown>, env: Readonly<Record<string, string>> = {}) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-replica-"))
      const file = path.join(dir, "tollgate.yaml")
      fs.writeFileSync(file, stringify(config))
      const child = spawn(process.execPath, [BIN, "start", "--port", "0", "--config", file], {
        cwd: dir,
        env: { ...cleanEnv(), ...env, HOME: dir, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const listening = yield* Deferred.make<string, Error>()
      const onData = (chunk: Buffer) => {
        output += chunk.toString("utf8")
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output)
        if (match) Deferred.unsafeDone(listening, Effect.succeed(match[1]!))
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code, signal) =>
        Deferred.unsafeDone(listening, Effect.fail(new Error(`tollgate exited (${code ?? signal}) before listening:\n${output}`))))
      const base = yield* Deferred.await(listening).pipe(
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`tollgate did not listen within 30 s:\n${output}`) }),
        Effect.tapError(() => Effect.sync(() => child.kill("SIGKILL"))),
        Effect.orDie
      )
      return { baseUrl: base, child, output: () => output } satisfies Replica
    }),
    (replica) => stop(replica.child, "SIGTERM")
  )

/** Sends `signal` and waits for the process to exit (at once if it has). */
export const stop = (child: ChildProcess, signal: NodeJS.Signals) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill(signal)
  })

export interface SlowUpstream {
  /** Base URL, ending in /v1. */
  readonly url: string
  /** Chat completions received. */
  readonly received: () => number
}

/**
 * An OpenAI-compatible server answering every chat completion after `delayMs`, with
 * `completionTokens` of output (the model echoed as asked). Closed with the scope.
 */
export const slowUpstream = (options: { readonly delayMs: number; readonly completionTokens: number }) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: http.Server; readonly upstream: SlowUpstream }>((resume) => {
      let received = 0
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          if (req.method === "GET") {
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify({ object: "list", data: [] }))
            return
          }
          received++
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { model: string; stream?: boolean }
          const usage = { prompt_tokens: 10, completion_tokens: options.completionTokens, total_tokens: 10 + options.completionTokens }
          const timer = setTimeout(() => {
            if (body.stream === true) {
              const chunk = (delta: unknown, extra: Record<string, unknown> = {}) =>
                `data: ${JSON.stringify({ id: `chatcmpl-${received}`, object: "chat.completion.chunk", created: 1_700_000_000, model: body.model, choices: delta === null ? [] : [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`
              res.writeHead(200, { "content-type": "text/event-stream" })
              res.end(chunk({ role: "assistant", content: "ok" }) + chunk(null, { usage }) + "data: [DONE]\n\n")
              return
            }
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify({
              id: `chatcmpl-${received}`,
              object: "chat.completion",
              created: 1_700_000_000,
              model: body.model,
              choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
              usage
            }))
          }, options.delayMs)
          res.on("close", () => clearTimeout(timer))
        })
      })
      server.keepAliveTimeout = 1_000
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          server,
          upstream: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, received: () => received }
        })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ upstream }) => upstream))

export interface Answer {
  readonly status: number
  readonly requestId: string | null
  readonly errorCode: string | null
}

/** One chat completion, read to its end; a connection that fails, or a stream cut before `[DONE]`, is status 0. */
export const chat = (baseUrl: string, body: Record<string, unknown>): Promise<Answer> =>
  fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], ...body })
  }).then(
    async (response) => {
      const text = await response.text()
      if (body.stream === true && response.status === 200 && !text.includes("data: [DONE]")) return { status: 0, requestId: null, errorCode: null }
      let errorCode: string | null = null
      if (response.status !== 200) {
        try {
          errorCode = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null
        } catch {
          errorCode = null
        }
      }
      return { status: response.status, requestId: response.headers.get("x-tollgate-request-id"), errorCode }
    }
  ).catch(() => ({ status: 0, requestId: null, errorCode: null }))
