#!/usr/bin/env node
// Reference proxy for the benchmark: the least a Node HTTP proxy can do. node:http server,
// undici Pool with keep-alive to the upstream, no features: read the request body, forward it with
// the client's headers (minus hop-by-hop ones), pipe the response back chunk by chunk (SSE is
// never buffered). Whatever tollgate costs on top of this is the price of its features.
//
//   node scripts/bench/rawproxy.mjs --upstream http://127.0.0.1:PORT [--port 0]
//
// Prints `rawproxy listening on http://127.0.0.1:PORT/v1` once it accepts connections; SIGINT or
// SIGTERM close it.
import * as http from "node:http"
import { pipeline } from "node:stream"
import { parseArgs } from "node:util"
import { Pool } from "undici"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    upstream: { type: "string" }
  }
})
if (values.upstream === undefined) {
  console.error("rawproxy: --upstream URL is required")
  process.exit(2)
}
const upstream = new URL(values.upstream)
const pool = new Pool(upstream.origin, {
  connections: 256,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 600_000,
  headersTimeout: 600_000,
  bodyTimeout: 600_000
})

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host"
])

const filter = (headers) => {
  const out = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

const fail = (res, status, message) => {
  if (res.headersSent) return res.destroy()
  const bytes = Buffer.from(JSON.stringify({ error: { message, type: "proxy_error" } }))
  res.writeHead(status, { "content-type": "application/json", "content-length": bytes.length })
  res.end(bytes)
}

const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  const chunks = []
  req.on("data", (chunk) => chunks.push(chunk))
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    const headers = filter(req.headers)
    headers["content-length"] = String(body.length)
    pool.request({ method: req.method, path: req.url, headers, body }, (error, response) => {
      if (error) return fail(res, 502, `upstream unreachable: ${error.code ?? error.message}`)
      res.writeHead(response.statusCode, filter(response.headers))
      pipeline(response.body, res, () => {})
    })
  })
})
server.headersTimeout = 66_000

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`rawproxy listening on http://127.0.0.1:${server.address().port}/v1`)
})

const close = () => {
  server.close(() => pool.close().finally(() => process.exit(0)))
  server.closeAllConnections()
  setTimeout(() => process.exit(0), 2_000).unref()
}
process.on("SIGINT", close)
process.on("SIGTERM", close)
