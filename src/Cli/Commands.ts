/**
 * The definitions of the commands that read or change the ledger, the prices and the routing: their
 * names, options and descriptions, which the CLI needs to parse any command line. What a command
 * does lives in its own module (`Stats.ts`, `Budget.ts`, ...), imported when it runs: `--version`
 * or `stats` do not load the proxy, and `--version` not SQLite either (see scripts/bench/cli.mjs).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { configOption, dbOption, jsonOption, sinceOption } from "./Flags.js"

/** Pricing/Data.ts's `DATA_URL_ENV`, spelled here so that parsing does not load the price data. */
const DATA_URL_ENV = "TOLLGATE_PRICES_URL"

/** The module `load` imports, once it is needed. */
const lazy = <M>(load: () => Promise<M>) => Effect.promise(load)

export const stats = Command.make(
  "stats",
  {
    since: sinceOption("Window to report", "24h"),
    by: Options.choice("by", ["model", "provider", "route", "project", "session", "day"]).pipe(
      Options.withDescription("Break the totals down by this column"),
      Options.optional
    ),
    json: jsonOption,
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Stats.js")), (m) => m.run(flags))
).pipe(Command.withDescription("Show requests, errors, tokens, cost and latency from the ledger"))

export const exportCommand = Command.make(
  "export",
  {
    format: Options.choice("format", ["csv", "jsonl"]).pipe(Options.withDescription("Output format")),
    since: sinceOption("Only rows from this window", "all"),
    out: Options.file("out").pipe(Options.withDescription("Write to this file instead of standard output"), Options.optional),
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Export.js")), (m) => m.run(flags))
).pipe(Command.withDescription("Write the ledger as CSV or JSON lines (streamed, any size)"))

const costExplain = Command.make(
  "explain",
  {
    requestId: Args.text({ name: "request-id" }).pipe(
      Args.withDescription("The request's id, as in its x-tollgate-request-id header or the ledger's request_id column")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text")),
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Cost.js")), (m) => m.run(flags))
).pipe(Command.withDescription("Show how a request's cost is made: tokens x price per component, the total, the stored cost, and where each price comes from"))

export const cost = Command.make("cost").pipe(
  Command.withDescription("Explain what requests cost"),
  Command.withSubcommands([costExplain])
)

const SCOPES = ["global", "client", "project", "session"] as const
const WINDOWS = ["hourly", "daily", "monthly", "session", "perRequest"] as const
const ACTIONS = ["block", "downgrade", "warn", "alert"] as const

const scopeOption = Options.choice("scope", SCOPES).pipe(
  Options.withDescription("Who the limit counts for: global, each client key (by hash), each project, each session")
)
const keyOption = Options.text("key").pipe(
  Options.withDescription("Only this project name, session id or client hash (default: each one separately)"),
  Options.optional
)
const windowOption = Options.choice("window", WINDOWS).pipe(
  Options.withDescription("hourly, daily, monthly (calendar, in budget.timezone), session, or perRequest")
)

const budgetStatus = Command.make(
  "status",
  { json: jsonOption, config: configOption, db: dbOption },
  (flags) => Effect.flatMap(lazy(() => import("./Budget.js")), (m) => m.status(flags))
).pipe(Command.withDescription("Spend, limit and reset time of each budget limit in its open window, and blocked sessions"))

const budgetSet = Command.make(
  "set",
  {
    scope: scopeOption.pipe(Options.withDescription("(default: global)"), Options.withDefault("global" as const)),
    key: keyOption,
    window: windowOption,
    usd: Options.float("usd").pipe(Options.withDescription("The limit in USD"), Options.optional),
    onBreach: Options.choice("on-breach", ACTIONS).pipe(
      Options.withDescription("What happens at the limit (default: budget.onBreach)"),
      Options.optional
    ),
    unset: Options.boolean("unset").pipe(Options.withDescription("Remove this limit instead of setting it")),
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Budget.js")), (m) => m.set(flags))
).pipe(Command.withDescription("Set (or --unset) a limit at runtime; it overrides tollgate.yaml's limit with the same scope, key and window"))

const budgetReset = Command.make(
  "reset",
  {
    scope: scopeOption.pipe(Options.optional),
    key: keyOption,
    window: windowOption.pipe(Options.optional),
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Budget.js")), (m) => m.reset(flags))
).pipe(Command.withDescription("Start the matching limits' open windows again from $0 (no option: every limit)"))

const budgetUnblock = Command.make(
  "unblock",
  {
    session: Options.text("session").pipe(Options.withDescription("The x-tollgate-session id to let through again")),
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Budget.js")), (m) => m.unblock(flags))
).pipe(Command.withDescription("Lift an anomaly block on one session before its window ends"))

export const budget = Command.make("budget").pipe(
  Command.withDescription("Budget limits: status, set, reset, unblock (changes reach a running server through the ledger file)"),
  Command.withSubcommands([budgetStatus, budgetSet, budgetReset, budgetUnblock])
)

const alertsList = Command.make(
  "list",
  { since: sinceOption("Alerts from this window", "7d"), json: jsonOption, config: configOption, db: dbOption },
  (flags) => Effect.flatMap(lazy(() => import("./Alerts.js")), (m) => m.list(flags))
).pipe(Command.withDescription("List budget alerts (thresholds, breaches, anomalies) and whether the webhook got them"))

export const alerts = Command.make("alerts").pipe(
  Command.withDescription("Budget alerts stored in the ledger"),
  Command.withSubcommands([alertsList])
)

const routeExplain = Command.make(
  "explain",
  {
    file: Options.file("file").pipe(Options.withDescription("The request body to route (JSON, as a client would POST it)")),
    config: configOption,
    model: Options.text("model").pipe(Options.withDescription("Route this model instead of the one in the file"), Options.optional),
    endpoint: Options.choice("endpoint", ["chat", "messages", "responses", "embeddings", "completions"]).pipe(
      Options.withDescription("Read the body as /v1/chat/completions, /v1/messages, /v1/responses, /v1/embeddings or /v1/completions (default: messages if it has a top-level system, responses if it has input and no messages, else chat)"),
      Options.optional
    ),
    header: Options.keyValueMap("header").pipe(
      Options.withDescription("A request header for header and client-key matchers, as name=value (repeatable)"),
      Options.optional
    ),
    seed: Options.integer("seed").pipe(Options.withDescription("Seed for weighted load balancing (the proxy draws one per request; default: 0)"), Options.withDefault(0)),
    json: Options.boolean("json").pipe(Options.withDescription("Print the decision as JSON instead of a trace"))
  },
  (flags) => Effect.flatMap(lazy(() => import("./Route.js")), (m) => m.explain(flags))
).pipe(Command.withDescription("Print the routing decision for a request file (rule matched, targets kept or skipped and why) without sending it"))

export const route = Command.make("route").pipe(
  Command.withDescription("Inspect routing"),
  Command.withSubcommands([routeExplain])
)

const pricesUpdate = Command.make(
  "update",
  {
    url: Options.text("url").pipe(
      Options.withDescription(`Fetch the data file from this URL (default: $${DATA_URL_ENV}, else the genai-prices project's published data.json)`),
      Options.optional
    ),
    timeout: Options.integer("timeout").pipe(
      Options.withDescription("Give up after this many milliseconds (default: 30000)"),
      Options.withDefault(30_000)
    )
  },
  (flags) => Effect.flatMap(lazy(() => import("./Prices.js")), (m) => m.update(flags))
).pipe(Command.withDescription("Fetch the newest price data published by genai-prices, check it, and keep it under the tollgate home ($TOLLGATE_HOME or ~/.tollgate); offline or invalid, the data in use stays"))

const pricesShow = Command.make(
  "show",
  {
    model: Args.text({ name: "model" }).pipe(Args.withDescription("A model name as a provider reports it (dated snapshots and vendor/model names too)")),
    json: jsonOption,
    config: configOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Prices.js")), (m) => m.show(flags))
).pipe(Command.withDescription("Show the rates a model is billed at (input, cached input, cache writes, output, long-context tiers), their source and date"))

export const prices = Command.make("prices").pipe(
  Command.withDescription("Price data: genai-prices (bundled, or updated with `prices update`), tollgate's corrections, tollgate.yaml's pricing: overrides"),
  Command.withSubcommands([pricesUpdate, pricesShow])
)

export const reprice = Command.make(
  "reprice",
  {
    since: sinceOption("Rows from this window", "30d"),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Show what would change, write nothing")),
    json: jsonOption,
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Reprice.js")), (m) => m.reprice(flags))
).pipe(Command.withDescription("Recompute the cost of past ledger rows from their stored usage at today's prices (after pricing an unpriced model, or a price change), and show the difference"))

export const simulate = Command.make(
  "simulate",
  {
    since: sinceOption("Traffic from this window", "7d"),
    map: Options.keyValueMap("map").pipe(
      Options.withDescription("FROM=TO: price FROM's requests as if TO had served them, same tokens (repeat for more models)"),
      Options.optional
    ),
    json: jsonOption,
    config: configOption,
    db: dbOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Reprice.js")), (m) => m.simulate(flags))
).pipe(Command.withDescription("What the ledger's traffic would have cost on other models (--map FROM=TO), at today's prices; nothing is sent"))

export const request = Command.make(
  "request",
  {
    file: Options.file("file").pipe(Options.withDescription("The request body (JSON), as a client would send it")),
    endpoint: Options.choice("endpoint", ["chat", "messages", "responses", "embeddings", "completions"]).pipe(
      Options.withDescription("chat: /v1/chat/completions (default); messages: /v1/messages (Anthropic)"),
      Options.withDefault("chat" as const)
    ),
    json: jsonOption,
    config: configOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Request.js")), (m) => m.run(flags))
).pipe(Command.withDescription(
  "Send one request through the configured routes, as a client would, and print what tollgate added (x-tollgate-* headers), the answer and its cost (a ledger row is written)"
))

/** `init`'s provider choices, spelled here so that parsing does not load the config module (Init.ts checks they agree). */
export const INIT_PROVIDERS = [
  "openai", "anthropic", "openrouter", "deepseek", "groq", "mistral", "together", "fireworks", "xai", "gemini", "ollama", "local", "mock"
] as const

export const init = Command.make(
  "init",
  {
    file: Options.text("file").pipe(Options.withDescription("Where to write it (default: tollgate.yaml here)"), Options.withDefault("tollgate.yaml")),
    provider: Options.text("provider").pipe(
      Options.withDescription(`Who serves the requests: ${INIT_PROVIDERS.join(", ")} (local: an OpenAI-compatible server; mock: the simulated model)`),
      Options.optional
    ),
    baseUrl: Options.text("base-url").pipe(Options.withDescription("The provider's base URL (for local: the server's)"), Options.optional),
    keyEnv: Options.text("key-env").pipe(Options.withDescription("The environment variable holding its key"), Options.optional),
    port: Options.integer("port").pipe(Options.withDescription("Port to listen on (default 4100)"), Options.optional),
    dailyBudget: Options.float("daily-budget").pipe(Options.withDescription("A daily limit in USD (default: none)"), Options.optional),
    // Two flags, not one boolean with a negation: a boolean option is false when absent, so
    // "not given" (ask, or the default on) could not be told from --no-cache.
    cache: Options.all([
      Options.boolean("cache").pipe(Options.withDescription("Cache exact repeats (the default)")),
      Options.boolean("no-cache").pipe(Options.withDescription("Do not cache"))
    ]).pipe(Options.map(([on, off]) => (off ? Option.some(false) : on ? Option.some(true) : Option.none()))),
    yes: Options.boolean("yes").pipe(Options.withDescription("Ask nothing: flags and defaults only (also when not at a terminal)"))
  },
  (flags) => Effect.flatMap(lazy(() => import("./Init.js")), (m) => m.run(flags))
).pipe(Command.withDescription(
  "Write a tollgate.yaml: provider, key variable, port, a daily budget and the cache, asked for at a terminal or given as flags; validated, an existing file kept as a backup"
))

export const dash = Command.make(
  "dash",
  {
    admin: Options.text("admin").pipe(
      Options.withDescription("The admin listener's URL, such as http://127.0.0.1:4101 (default: server.admin of the configuration)"),
      Options.optional
    ),
    key: Options.text("key").pipe(
      Options.withDescription("An admin key (one of server.adminKeys), sent as Authorization: Bearer (default: $TOLLGATE_ADMIN_KEY)"),
      Options.optional
    ),
    interval: Options.text("interval").pipe(
      Options.withDescription("How often to refresh: 1s, 500ms, 2s; at least 200ms (default: 1s)"),
      Options.withDefault("1s")
    ),
    once: Options.boolean("once").pipe(Options.withDescription("Print one frame to standard output and exit, without taking the screen")),
    config: configOption
  },
  (flags) => Effect.flatMap(lazy(() => import("./Dash.js")), (m) => m.run(flags))
).pipe(Command.withDescription(
  "A live terminal dashboard of a running tollgate, read from its admin listener: requests per second, spend today, " +
    "a per-model table, breakers, budgets and the recent requests. Keys: q or Ctrl-C quits. Plain ANSI, no mouse: works over ssh"
))
