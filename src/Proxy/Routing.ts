/**
 * The routing step of the request program: the router's decision for a request's facts, with the
 * breakers, latencies and a fresh seed, noted on its record; a request nothing can serve fails
 * with why (keys missing, breakers open, or nothing able to).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Random from "effect/Random"
import type { BreakerStatus, Circuit } from "../Circuit.js"
import { missingKeyOf } from "../Config/Provider.js"
import { BadRequest, NoTargetAvailable, ProviderKeyMissing } from "../Domain/Errors.js"
import type * as RequestFacts from "../Domain/RequestFacts.js"
import { targetName } from "../Failover.js"
import type { Decision, Router } from "../Router.js"
import type { Skip } from "../Router/Decision.js"
import type { Latency, LatencySnapshot } from "../Router/Latency.js"
import type { RequestRecord } from "./Record.js"

/** Each provider (and the variable it lacks) once, in the order the targets were skipped. */
const keyMissing = (skipped: ReadonlyArray<Skip>): ProviderKeyMissing => {
  const missing = new Map<string, string>()
  for (const s of skipped) {
    const variable = missingKeyOf(s.target.provider, s.target.model) ?? ""
    const known = missing.get(s.target.provider.name)
    missing.set(s.target.provider.name, known === undefined || known === variable ? variable : `${known}, ${variable}`)
  }
  return new ProviderKeyMissing({ missing: Array.from(missing, ([provider, variable]) => ({ provider, variable })) })
}

/** The decision for these facts and these breakers, latencies and seed (the routing step without its reads). */
const decideWith = (
  router: Router["Type"],
  facts: RequestFacts.RequestFacts,
  record: RequestRecord,
  breakers: ReadonlyArray<BreakerStatus>,
  latencies: LatencySnapshot,
  seed: number
): Effect.Effect<Decision, BadRequest | NoTargetAvailable | ProviderKeyMissing> => {
  const decided = router.decide(facts, { breakers, latency: latencies, seed, untraced: true })
  const { route, rule, skipped } = Either.merge(decided)
  record.route = route
  record.rule = rule
  record.routeSkipped = skipped.map((s) => `${targetName(s.target)}:${s.code}`)
  if (Either.isRight(decided)) return Effect.succeed(decided.right)
  // Every target's breaker is open: a provider outage, retry later. Every target lacks its key:
  // the server is misconfigured (503 naming the variable). Breakers open and keys missing: a
  // probe may get through later, so retry then. Anything else: this request asks for what no
  // configured target can give (context, tools, vision...). Only this failing path looks.
  if (skipped.length > 0 && skipped.every((s) => s.code === "no_key")) return Effect.fail(keyMissing(skipped))
  if (skipped.every((s) => s.code === "circuit_open" || s.code === "no_key")) {
    // The breakers read for the decision say when the earliest one lets a probe through.
    const names = new Set(skipped.map((s) => targetName(s.target)))
    const waits = breakers.filter((b) => names.has(b.target)).map((b) => b.retryAfterMs)
    return Effect.fail(new NoTargetAvailable({ route: decided.left.route, retryAfterMs: waits.length === 0 ? 0 : Math.min(...waits) }))
  }
  return Effect.fail(new BadRequest({ code: "no_routable_target", message: decided.left.message }))
}

/**
 * Routing: the decision for these facts, with breakers, latencies and a fresh seed for load
 * balancing. The breakers and latencies are read in the step that decides (a chain rather than
 * a generator, and no step per read: this runs on every request).
 */
export const routeWith = (router: Router["Type"], circuit: Circuit["Type"], latency: Latency["Type"], random: Random.Random) =>
(facts: RequestFacts.RequestFacts, record: RequestRecord): Effect.Effect<Decision, BadRequest | NoTargetAvailable | ProviderKeyMissing> =>
  Effect.flatMap(random.nextInt, (seed) => decideWith(router, facts, record, circuit.unsafeOpen(), latency.unsafeSnapshot(), seed))
