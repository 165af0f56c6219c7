// What the mock upstream answers, shared with the stream checker so that it can verify the text
// that reaches the client, whatever the chunking.
export const ANSWER =
  "Prince Hamlet returns to Denmark to find that his uncle Claudius has murdered his father, seized the throne and married " +
  "his mother, Gertrude. Urged by his father's ghost to take revenge, Hamlet feigns madness, stages a play that exposes the " +
  "king's guilt and, in a confrontation, mistakenly kills the counsellor Polonius. The tragedy ends in a duel in which Hamlet, " +
  "Laertes, Claudius and Gertrude all die, leaving the crown to Fortinbras of Norway."

// The chat request every benchmark sends (the socket bench and the in-process one).
export const CHAT = {
  model: "gpt-4o-mini",
  temperature: 0,
  max_tokens: 200,
  messages: [
    { role: "system", content: "You are a concise assistant. Answer in plain prose." },
    { role: "user", content: "Summarise the plot of Hamlet in three sentences." }
  ]
}

// The Responses request the bench sends (`--only responses`): the same prompt as CHAT.
export const RESPONSES = {
  model: "gpt-4o-mini",
  temperature: 0,
  max_output_tokens: 200,
  store: false,
  instructions: "You are a concise assistant. Answer in plain prose.",
  input: [{ role: "user", content: "Summarise the plot of Hamlet in three sentences." }]
}

/**
 * The YAML config of every tollgate the benchmarks start: every default feature on (the admin
 * listener and its metrics, a routing
 * rule, and a budget that reserves and settles every request, with a limit high enough never to
 * block). Without the cache, coalescing (identical in-flight requests sharing one upstream call) is
 * off too: every request must then go the whole way to `upstreamBase` (…/v1).
 */
export const tollgateConfig = ({ upstreamBase, cache, admin = true }) =>
  [
    // The admin listener (and so the request metrics) on a free port, as `start` serves it by
    // default but without a fixed port, so that several tollgates can run side by side; `admin:
    // false` turns both off (the metrics are counted only where something can read them).
    admin ? "server: { admin: { port: 0 } }" : "server: { admin: false }",
    "providers:",
    // It serves the Responses API too: Responses requests pass through, as to OpenAI.
    `  up: { kind: openai, baseUrl: "${upstreamBase}", responsesApi: true }`,
    "routes:",
    "  - { name: bench, match: { model: \"*\" }, targets: [ { provider: up } ] }",
    "budget: { enabled: true, limits: [ { window: daily, usd: 1000000 } ] }",
    cache ? "cache: { enabled: true }" : "cache: { enabled: false, coalesce: false }",
    ""
  ].join("\n")
