/** `tollgate export`: the ledger as CSV or JSON lines, streamed page by page. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeSink from "@effect/platform-node/NodeSink"
import { stringify } from "csv-stringify/sync"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { COLUMNS } from "../Domain/LedgerEvent.js"
import * as Ledger from "../Ledger.js"
import { configOption, dbOption, ledgerLayer, parseSince } from "./Shared.js"

const HEADER = ["id", "time", ...COLUMNS.filter((c) => c !== "ts")]

const withTime = (row: Ledger.ExportRow): Record<string, unknown> => ({ ...row, time: new Date(row.ts).toISOString() })

const encoder = new TextEncoder()

export const format = (kind: "csv" | "jsonl") => (rows: ReadonlyArray<Ledger.ExportRow>, first: boolean): string =>
  kind === "jsonl"
    ? rows.map((row) => `${JSON.stringify(withTime(row))}\n`).join("")
    : stringify(rows.map(withTime), { header: first, columns: HEADER, cast: { boolean: (b) => (b ? "1" : "0") } })

export const exportCommand = Command.make(
  "export",
  {
    format: Options.choice("format", ["csv", "jsonl"]).pipe(Options.withDescription("Output format")),
    since: Options.text("since").pipe(
      Options.withDescription("Only rows from this window: 30m, 24h, 7d, a date (2025-06-01) or all"),
      Options.withDefault("all")
    ),
    out: Options.file("out").pipe(Options.withDescription("Write to this file instead of standard output"), Options.optional),
    config: configOption,
    db: dbOption
  },
  (flags) =>
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
).pipe(Command.withDescription("Write the ledger as CSV or JSON lines (streamed, any size)"))
