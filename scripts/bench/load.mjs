// Load generators for the benchmark, both bounded in count AND time and stopping by themselves:
//   - runCannon: non-streaming load from autocannon's programmatic API, in "amount" mode, so every
//     request it sends is answered before it stops (no aborted in-flight requests, which would
//     leave ledger rows no client counted). Latencies are recorded from autocannon's `response`
//     events as floats (its own histogram has 1 ms resolution, too coarse here).
//   - runStreams: an SSE client (undici Pool) that reads every stream to the end and checks it.
import autocannon from "autocannon"
import { Pool } from "undici"
import { ANSWER, CHAT } from "./fixtures.mjs"
import { summarize } from "./lib.mjs"

/**
 * Sends exactly `amount` requests over `connections` keep-alive connections (pipelining 1).
 * If `capMs` passes first, autocannon is stopped (in-flight requests are aborted): the result
 * says `truncated: true`, and its counts are then a lower bound of what the server completed.
 */
export const runCannon = ({ url, connections, amount, body, headers, capMs, verify, onHeaders, arrivals = false }) =>
  new Promise((resolve, reject) => {
    const latencies = []
    const times = []
    let lastAt
    let truncated = false
    const requests = onHeaders === undefined
      ? undefined
      : [{ method: "POST", body, headers, onResponse: (status, _body, _context, responseHeaders) => onHeaders(status, responseHeaders) }]
    const t0 = performance.now()
    const instance = autocannon(
      {
        url,
        method: "POST",
        body,
        headers,
        requests,
        connections,
        amount: Math.max(amount, connections),
        pipelining: 1,
        timeout: 10,
        sampleInt: 100,
        verifyBody: verify
      },
      (error, result) => {
        clearTimeout(cap)
        if (error) return reject(error)
        const elapsedMs = lastAt === undefined ? performance.now() - t0 : lastAt - t0
        const completed = result["2xx"] ?? 0
        // Steady-state rate: responses up to the 90th percentile of arrival, while every connection
        // is still busy; the tail, where connections that finished their share sit idle, is left out.
        const k = Math.floor(times.length * 0.9) - 1
        const steadyRps = k >= 10 && times[k] > t0 ? ((k + 1) / (times[k] - t0)) * 1000 : undefined
        resolve({
          connections,
          amount: Math.max(amount, connections),
          completed2xx: completed,
          non2xx: result.non2xx ?? 0,
          errors: result.errors ?? 0,
          timeouts: result.timeouts ?? 0,
          mismatches: result.mismatches ?? 0,
          statusCodes: result.statusCodeStats,
          truncated,
          elapsedMs: Math.round(elapsedMs),
          rps: steadyRps ?? (elapsedMs > 0 ? (completed / elapsedMs) * 1000 : 0),
          overallRps: elapsedMs > 0 ? (completed / elapsedMs) * 1000 : 0,
          latencyMs: summarize(latencies),
          // With `arrivals`: when each response arrived (performance.now()), to count two runs over the same window.
          ...(arrivals ? { arrivals: times } : {})
        })
      }
    )
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      const now = performance.now()
      lastAt = now
      times.push(now)
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
    const cap = setTimeout(() => {
      truncated = true
      instance.stop()
    }, capMs)
  })

/**
 * Reads the SSE text of one stream and checks it: ends with `data: [DONE]`, no error event,
 * `chunks` content chunks (any number >= 1 when `chunks` is undefined), exactly one usage chunk
 * when `usage`, and the content deltas joined equal `text` (when given).
 * Returns { problem } (undefined if right) and the number of content chunks seen.
 */
export const checkStream = (text, { chunks, usage, text: expectedText }) => {
  const result = (problem, content) => ({ problem, content })
  const events = text.split(/\r?\n\r?\n/).filter((e) => e.trim().length > 0)
  if (events.length === 0) return result("empty stream", 0)
  const last = events[events.length - 1].trim()
  if (last !== "data: [DONE]") return result(`does not end with [DONE] (last event: ${last.slice(0, 80)})`, 0)
  let content = 0
  let usageChunks = 0
  let joined = ""
  for (const event of events.slice(0, -1)) {
    const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")
    if (data === "[DONE]") return result("[DONE] before the end", content)
    let parsed
    try {
      parsed = JSON.parse(data)
    } catch {
      return result(`not JSON: ${data.slice(0, 80)}`, content)
    }
    if (parsed.error !== undefined) return result(`error event: ${JSON.stringify(parsed.error).slice(0, 200)}`, content)
    if (Array.isArray(parsed.choices) && parsed.choices.length === 0 && parsed.usage) {
      usageChunks++
    } else {
      content++
      for (const choice of parsed.choices ?? []) {
        if (typeof choice.delta?.content === "string") joined += choice.delta.content
      }
    }
  }
  if (chunks !== undefined && content !== chunks) return result(`expected ${chunks} content chunks, got ${content}`, content)
  if (content === 0) return result("no content chunk", content)
  if (usage && usageChunks !== 1) return result(`expected 1 usage chunk, got ${usageChunks}`, content)
  if (!usage && usageChunks !== 0) return result(`expected no usage chunk, got ${usageChunks}`, content)
  if (expectedText !== undefined && joined !== expectedText) {
    return result(`content differs from the upstream's answer (${joined.length} vs ${expectedText.length} chars)`, content)
  }
  return result(undefined, content)
}

/**
 * Reads a Responses event stream and checks it: no error event, `sequence_number`s from 0 without
 * a gap, `chunks` output_text deltas (any number >= 1 when undefined) joining to `text` (when
 * given), and `response.completed` with usage last. Same result shape as `checkStream`.
 */
export const checkResponsesStream = (text, { chunks, text: expectedText }) => {
  const result = (problem, content) => ({ problem, content })
  const events = text.split(/\r?\n\r?\n/).filter((e) => e.trim().length > 0)
  if (events.length === 0) return result("empty stream", 0)
  let deltas = 0
  let joined = ""
  let last
  for (let i = 0; i < events.length; i++) {
    const data = events[i].split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")
    let parsed
    try {
      parsed = JSON.parse(data)
    } catch {
      return result(`not JSON: ${data.slice(0, 80)}`, deltas)
    }
    if (parsed.type === "error" || parsed.type === "response.failed") return result(`error event: ${data.slice(0, 200)}`, deltas)
    if (parsed.sequence_number !== i) return result(`event ${i} has sequence_number ${parsed.sequence_number}`, deltas)
    if (parsed.type === "response.output_text.delta") {
      deltas++
      joined += parsed.delta
    }
    last = parsed
  }
  if (last.type !== "response.completed" || last.response?.usage == null) return result(`does not end with response.completed and usage (last: ${last.type})`, deltas)
  if (chunks !== undefined && deltas !== chunks) return result(`expected ${chunks} deltas, got ${deltas}`, deltas)
  if (expectedText !== undefined && joined !== expectedText) return result(`text differs from the upstream's answer (${joined.length} vs ${expectedText.length} chars)`, deltas)
  return result(undefined, deltas)
}

/**
 * `connections` workers each run streams back to back until `durationMs` has passed (a stream
 * already started is always read to the end) or `maxStreams` were started in total.
 * Time to first byte = request sent -> first body chunk; total = request sent -> end of body.
 */
export const runStreams = async ({ url, connections, durationMs, maxStreams, body, headers, expect, onHeaders }) => {
  const target = new URL(url)
  const pool = new Pool(target.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 15_000,
    bodyTimeout: 15_000
  })
  const path = `${target.pathname}${target.search}`
  const ttfb = []
  const total = []
  const failures = []
  const statusCodes = {}
  const contentChunks = {}
  let started = 0
  let completed2xx = 0
  let completedOther = 0
  let errors = 0
  const t0 = performance.now()
  const deadline = t0 + durationMs

  const one = async () => {
    const start = performance.now()
    let response
    try {
      response = await pool.request({ method: "POST", path, headers, body })
    } catch (error) {
      errors++
      failures.push(`request failed: ${error.code ?? error.message}`)
      return
    }
    statusCodes[response.statusCode] = (statusCodes[response.statusCode] ?? 0) + 1
    if (onHeaders !== undefined) onHeaders(response.statusCode, response.headers)
    const parts = []
    let first
    try {
      for await (const chunk of response.body) {
        if (first === undefined) first = performance.now()
        parts.push(chunk)
      }
    } catch (error) {
      errors++
      failures.push(`body failed: ${error.code ?? error.message}`)
      return
    }
    const end = performance.now()
    if (response.statusCode < 200 || response.statusCode >= 300) {
      completedOther++
      failures.push(`status ${response.statusCode}: ${Buffer.concat(parts).toString("utf8").slice(0, 200)}`)
      return
    }
    completed2xx++
    const { problem, content } = (expect.responses === true ? checkResponsesStream : checkStream)(Buffer.concat(parts).toString("utf8"), expect)
    contentChunks[content] = (contentChunks[content] ?? 0) + 1
    if (problem !== undefined) {
      failures.push(problem)
      return
    }
    ttfb.push((first ?? end) - start)
    total.push(end - start)
  }

  const worker = async () => {
    while (performance.now() < deadline && started < maxStreams) {
      started++
      await one()
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsedMs = performance.now() - t0
  await pool.close()
  return {
    connections,
    started,
    completed2xx,
    completedOther,
    errors,
    valid: ttfb.length,
    invalid: completed2xx - ttfb.length,
    failures: [...new Set(failures)].slice(0, 5),
    statusCodes,
    contentChunks,
    elapsedMs: Math.round(elapsedMs),
    streamsPerSecond: (completed2xx / elapsedMs) * 1000,
    ttfbMs: summarize(ttfb),
    totalMs: summarize(total)
  }
}

/**
 * `count` of the bench's paced streams (50 chunks 2 ms apart, with a usage chunk), one at a time,
 * to the proxy at `base` (`http://127.0.0.1:PORT/v1`), each read to the end and checked.
 */
export const pacedStreams = (base, count) =>
  runStreams({
    url: `${base}/chat/completions`,
    connections: 1,
    durationMs: 120_000,
    maxStreams: count,
    body: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }),
    headers: { "content-type": "application/json", authorization: "Bearer bench", accept: "text/event-stream", "x-bench-chunk-delay-ms": "2" },
    expect: { chunks: 50, usage: true, text: ANSWER }
  })

/** `amount` of the bench's JSON chat requests at `connections` (50) to the proxy at `base` (…/v1); `arrivals` as `runCannon`'s. */
export const jsonRequests = (base, amount, { connections = 50, arrivals = false } = {}) =>
  runCannon({
    url: `${base}/chat/completions`,
    connections,
    amount,
    body: JSON.stringify(CHAT),
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    capMs: 120_000,
    arrivals
  })
