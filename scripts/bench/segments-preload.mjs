// Loaded into a proxy process by `segments.mjs` (`node --import=THIS`): marks the times of one
// request's way through the process, from Node's and undici's diagnostics channels, for requests
// that come one at a time. Writes them as JSON to $SEGMENTS_OUT when the process exits.
//
//   in           Node has parsed the request's head (`http.server.request.start`)
//   created      undici has the upstream request (`undici:request:create`)
//   headersOut   its head is on the upstream socket (`undici:client:sendHeaders`)
//   bodyOut      its body too (`undici:request:bodySent`)
//   answered     the upstream's response head has been parsed (`undici:request:headers`)
//   firstOut     the first `write` to the client's response (a stream's first bytes)
//   flushed      those bytes handed to the client's socket (Node holds a response's writes
//                until the next tick, to send them in one go)
//
// A scratch build can split these further: `globalThis.__segment?.("name")` marks a point of its
// own (the first time per request), printed in time order with the others.
import * as diagnostics from "node:diagnostics_channel"
import { writeFileSync } from "node:fs"
import { ServerResponse } from "node:http"
import { Socket } from "node:net"

const out = process.env.SEGMENTS_OUT
const requests = []
let current = null
/** The socket of the current request's client, once its response has been written to. */
let client = null

const mark = (name) => {
  if (current !== null && current[name] === undefined) current[name] = performance.now()
}
globalThis.__segment = mark

diagnostics.subscribe("http.server.request.start", () => {
  current = { in: performance.now() }
  client = null
  requests.push(current)
})
diagnostics.subscribe("undici:request:create", () => mark("created"))
diagnostics.subscribe("undici:client:sendHeaders", () => mark("headersOut"))
diagnostics.subscribe("undici:request:bodySent", () => mark("bodyOut"))
diagnostics.subscribe("undici:request:headers", () => mark("answered"))

const write = ServerResponse.prototype.write
ServerResponse.prototype.write = function (...args) {
  if (current !== null && current.firstOut === undefined) client = this.socket
  mark("firstOut")
  return write.apply(this, args)
}
const writeGeneric = Socket.prototype._writeGeneric
Socket.prototype._writeGeneric = function (...args) {
  if (this === client) mark("flushed")
  return writeGeneric.apply(this, args)
}

if (out !== undefined) process.on("exit", () => writeFileSync(out, JSON.stringify(requests)))
