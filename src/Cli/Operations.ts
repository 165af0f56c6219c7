/**
 * The commands that check and maintain an installation (issue #25): `config validate`,
 * `ledger path`, `doctor`, `providers check`, `cache stats|clear`, `prune`, `service`. One list, so that
 * `Cli.ts` registers them in one place.
 */
import { cache } from "./Cache.js"
import { config } from "./ConfigValidate.js"
import { doctor } from "./Doctor.js"
import { ledger } from "./LedgerPath.js"
import { providers } from "./ProvidersCheck.js"
import { prune } from "./Prune.js"
import { service } from "./Service.js"

export const operations = [config, ledger, doctor, providers, cache, prune, service] as const
