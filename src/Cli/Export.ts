/** `tollgate export`: the ledger as CSV or JSON lines, streamed page by page. */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeSink from "@effect/platform-node/NodeSink"
import { stringify } from "csv-stringify/sync"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { COLUMNS } from "../Domain/LedgerEvent.js"
import * as Ledger from "../Ledger.js"
import { ledgerLayer } from "./Open.js"
import { parseSince } from "./Shared.js"

const HEADER = ["id", "time", ...COLUMNS.filter((c) => c !== "ts")]

const withTime = (row: Ledger.ExportRow): Record<string, unknown> => ({ ...row, time: new Date(row.ts).toISOString() })

const encoder = new TextEncoder()

export const format = (kind: "csv" | "jsonl") => (rows: ReadonlyArray<Ledger.ExportRow>, first: boolean): string =>
  kind === "jsonl"
    ? rows.map((row) => `${JSON.stringify(withTime(row))}\n`).join("")
    : stringify(rows.map(withTime), { header: first, columns: HEADER, cast: { boolean: (b) => (b ? "1" : "0") } })

export const run = (flags: {
  readonly format: "csv" | "jsonl"
  readonly since: string
  readonly out: Option.Option<string>
  readonly config: Option.Option<string>
  readonly db: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const sinceMs = yield* parseSince(flags.since)
    const render = format(flags.format)
    const bytes = Ledger.rows({ sinceMs }).pipe(
      Stream.chunks,
      Stream.zipWithIndex,
      Stream.map(([chunk, i]) => encoder.encode(render([...chunk], i === 0))),
      Stream.provideLayer(ledgerLayer(flags))
    )
    // A CSV of an empty ledger still has its header line.
    const output = flags.format === "csv"
      ? Stream.orElseIfEmpty(bytes, () => encoder.encode(render([], true)))
      : bytes
    if (Option.isSome(flags.out)) {
      const fs = yield* FileSystem.FileSystem
      return yield* Stream.run(output, fs.sink(flags.out.value))
    }
    return yield* Stream.run(output, NodeSink.fromWritable(() => process.stdout, (cause) => cause, { endOnDone: false }))
  })
