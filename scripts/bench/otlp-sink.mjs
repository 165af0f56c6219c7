#!/usr/bin/env node
// An OTLP/HTTP receiver for the benchmark (`--only metrics`): reads each export, answers `{}`, and
// keeps nothing. Its own process, on the load generator's core as the mock upstream is: a
// collector is another process (often a sidecar on the same host), and one sharing the load
// generator's event loop read its exports late, which cost the exporting tollgate more CPU
// (docs/performance.md, "What a span costs, taken apart"). On SIGINT it prints its counts as JSON and exits.
//
//   node scripts/bench/otlp-sink.mjs [--port N]
import * as http from "node:http"
import { parseArgs } from "node:util"

const { values: args } = parseArgs({ options: { port: { type: "string", default: "0" } } })
const counts = { requests: 0, bytes: 0 }
const server = http.createServer((req, res) => {
  req.on("data", (chunk) => (counts.bytes += chunk.length))
  req.on("end", () => {
    counts.requests++
    res.writeHead(200, { "content-type": "application/json" }).end("{}")
  })
})
server.listen(Number(args.port), "127.0.0.1", () => console.log(`otlp sink listening on http://127.0.0.1:${server.address().port}`))
process.on("SIGINT", () => {
  console.log(`otlp sink counts ${JSON.stringify(counts)}`)
  server.close()
  process.exit(0)
})
