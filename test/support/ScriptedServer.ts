/**
 * A node:http server on 127.0.0.1 (port 0) that answers each request with the next scripted
 * response: for feeding translated bytes to the official SDKs. Stream bodies are written in
 * several writes so the SDKs parse across chunk boundaries. Closed with its scope.
 */
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Scripted {
  readonly status: number
  readonly contentType: string
  readonly body: string | ReadonlyArray<Uint8Array>
  /** More response headers (`retry-after`, say). */
  readonly headers?: Readonly<Record<string, string>>
}

export interface ScriptedServer {
  readonly url: string
  /** Queue the next answer. */
  readonly answer: (response: Scripted) => void
  readonly requests: Array<{ readonly url: string; readonly body: string }>
}

export const make = Effect.acquireRelease(
  Effect.async<{ server: http.Server; handle: ScriptedServer }>((resume) => {
    const queue: Array<Scripted> = []
    const requests: Array<{ url: string; body: string }> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        // tollgate lists a keyed provider's models at start: not one of the scripted exchanges.
        if (req.method === "GET" && (req.url ?? "").includes("/models")) {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }))
          return
        }
        requests.push({ url: req.url ?? "", body })
        const next = queue.shift()
        if (next === undefined) {
          res.writeHead(500, { "content-type": "text/plain" }).end("nothing scripted")
          return
        }
        res.writeHead(next.status, { ...next.headers, "content-type": next.contentType })
        if (typeof next.body === "string") return res.end(next.body)
        for (const chunk of next.body) res.write(chunk)
        res.end()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ server, handle: { url: `http://127.0.0.1:${port}`, answer: (r) => queue.push(r), requests } }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
).pipe(Effect.map(({ handle }) => handle))
