/**
 * The CLI's tables: text left-aligned, numbers right-aligned, and no wider than a terminal
 * (100 columns): when a table would be wider, its widest text columns are cut with an ellipsis
 * (`--json` keeps every value whole). Numbers are never cut.
 */

/** The widest a table may be: what fits a split terminal or a pasted issue without wrapping. */
export const MAX_WIDTH = 100

const GAP = "  "
const ELLIPSIS = "…"
/** A count (`1,234`, `22.2M`), an amount (`$0.0012`, `-$3.50`, `+$1`), a percentage or a duration in ms. */
const NUMBER = /^[+-]?\$?[+-]?[\d,]*\.?\d+[kMB%]?$/

/** What a number column shows where it has no number. */
const PLACEHOLDERS = new Set(["", "-", "unpriced"])

const isNumeric = (cells: ReadonlyArray<string>): boolean => {
  const values = cells.filter((cell) => !PLACEHOLDERS.has(cell))
  return values.length > 0 && values.every((cell) => NUMBER.test(cell))
}

/** `text` in at most `width` columns: cut with an ellipsis when longer. */
export const truncate = (text: string, width: number): string =>
  text.length <= width ? text : width <= 1 ? ELLIPSIS.slice(0, width) : `${text.slice(0, width - 1)}${ELLIPSIS}`

/**
 * A plain table: a header, a rule, the rows. Columns whose cells are all numbers are right-aligned;
 * the others are left-aligned and, over `maxWidth`, cut (the widest first, never below their header).
 */
export const renderTable = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  options: { readonly maxWidth?: number } = {}
): string => {
  const maxWidth = options.maxWidth ?? MAX_WIDTH
  const columns = header.map((_, i) => rows.map((row) => row[i] ?? ""))
  const right = columns.map(isNumeric)
  const widths = header.map((h, i) => Math.max(h.length, ...columns[i]!.map((cell) => cell.length)))
  const floor = header.map((h, i) => (right[i] ? widths[i]! : Math.max(h.length, Math.min(widths[i]!, 8))))
  let excess = widths.reduce((sum, w) => sum + w, 0) + GAP.length * (widths.length - 1) - maxWidth
  while (excess > 0) {
    let widest = -1
    for (let i = 0; i < widths.length; i++) {
      if (widths[i]! > floor[i]! && (widest === -1 || widths[i]! > widths[widest]!)) widest = i
    }
    if (widest === -1) break
    widths[widest]! -= 1
    excess -= 1
  }
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => {
      const text = truncate(cell, widths[i]!)
      return right[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!)
    }).join(GAP).trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map((row) => line(header.map((_, i) => row[i] ?? "")))].join("\n")
}
