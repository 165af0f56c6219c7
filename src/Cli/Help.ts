/**
 * `--help`, rendered by tollgate rather than by `@effect/cli`: the library's renderer colours its
 * text whatever the output is, does not wrap paragraphs (lines of 350 columns), names a
 * subcommand's usage without its parents (`$ start`), and repeats its type's boilerplate under
 * every option ("A true or false value.", "This setting is optional."). The content still comes
 * from the commands' descriptors (`Descriptor.getHelp`, `Descriptor.getUsage`), so an option's
 * description is written once, beside the option.
 */
import type * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"

/** How output may look: colour only on a terminal without `NO_COLOR`; wrapped at its width, else 80. */
export interface Terminal {
  readonly color: boolean
  readonly width: number
}

export const terminal = (stream: { readonly isTTY?: boolean; readonly columns?: number } = process.stdout): Terminal => {
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== ""
  const tty = stream.isTTY === true
  return {
    color: tty && !noColor && process.env.TERM !== "dumb",
    width: tty && typeof stream.columns === "number" && stream.columns > 20 ? Math.min(stream.columns, 120) : 80
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g

/** `text` without ANSI escape sequences. */
export const stripAnsi = (text: string): string => text.replace(ANSI, "")

/** The text of a span, without its styles. */
export const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
  }
}

/** `text` as lines of at most `width` columns (a word longer than that gets a line of its own). */
export const wrap = (text: string, width: number, indent = ""): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line === "") line = indent + word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = indent + word
    }
  }
  if (line !== "") lines.push(line)
  return lines
}

/** A usage line in lines of at most `width`, breaking between options rather than inside one. */
const wrapUsage = (text: string, width: number): Array<string> => {
  const units = (text.match(/\[[^\]]*\]|\S+/g) ?? []).flatMap((unit) => (unit.length > width - 8 ? unit.split(" ") : [unit]))
  const lines: Array<string> = []
  let line = "  "
  for (const unit of units) {
    if (line.trim() === "") line += unit
    else if (line.length + 1 + unit.length <= width) line += ` ${unit}`
    else {
      lines.push(line)
      line = `      ${unit}`
    }
  }
  if (line.trim() !== "") lines.push(line)
  return lines
}

/** What `@effect/cli` says under every option of a type; the usage line already shows the type. */
const BOILERPLATE = new Set([
  "A true or false value.",
  "A floating point number.",
  "An integer.",
  "A file.",
  "A directory.",
  "A file or directory.",
  "An existing file.",
  "An existing directory.",
  "An existing file or directory.",
  "A user-defined piece of text.",
  "A user-defined piece of text that is confidential.",
  "This setting is optional."
])

const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Empty":
      return []
    case "Header":
    case "Paragraph":
      return [spanText(doc.value)]
    case "Sequence":
      return [...paragraphs(doc.left), ...paragraphs(doc.right)]
    case "DescriptionList":
      return doc.definitions.flatMap(([span, d]) => [spanText(span), ...paragraphs(d)])
    case "Enumeration":
      return doc.elements.flatMap(paragraphs)
  }
}

const describeOption = (doc: HelpDoc.HelpDoc): Array<string> =>
  paragraphs(doc).flatMap((text) => {
    if (BOILERPLATE.has(text) || text.startsWith("One of the following: ")) return []
    const defaults = /^This setting is optional\. Defaults to: (.*)$/.exec(text)
    return defaults === null ? [text] : [`Default: ${defaults[1]!.replace(/^'(.*)'$/, "$1")}`]
  })

interface Section {
  readonly title: string
  readonly entries: Array<readonly [string, Array<string>]>
  readonly text: Array<string>
}

/** The sections of a descriptor's own help (DESCRIPTION, ARGUMENTS, OPTIONS), without COMMANDS. */
const sections = (doc: HelpDoc.HelpDoc): Array<Section> => {
  const out: Array<Section> = []
  const visit = (d: HelpDoc.HelpDoc): void => {
    switch (d._tag) {
      case "Sequence":
        visit(d.left)
        visit(d.right)
        return
      case "Header":
        out.push({ title: spanText(d.value), entries: [], text: [] })
        return
      case "Paragraph":
        out.at(-1)?.text.push(spanText(d.value))
        return
      case "DescriptionList":
        out.at(-1)?.entries.push(...d.definitions.map(([span, body]) => [spanText(span), describeOption(body)] as const))
        return
      default:
        return
    }
  }
  visit(doc)
  return out.filter((s) => s.title !== "COMMANDS")
}

const descriptionOf = (command: Descriptor.Command<unknown>, config: CliConfig.CliConfig): string =>
  sections(Descriptor.getHelp(command, config)).find((s) => s.title === "DESCRIPTION")?.text.join(" ") ?? ""

/** A command's line in its parent's list: its description's first sentence (the rest is in its own help). */
const summaryOf = (description: string): string => {
  const end = description.indexOf(". ")
  return end === -1 ? description : description.slice(0, end)
}

/**
 * A descriptor as `@effect/cli` 0.77 builds it. Its public `getSubcommands` flattens a group to its
 * parent command (`budget` without `status`, `set`, ...), so the tree is walked through these fields.
 */
interface Node {
  readonly _tag: "Standard" | "GetUserInput" | "Map" | "Subcommands"
  readonly name?: string
  readonly command?: Node
  readonly parent?: Node
  readonly children?: ReadonlyArray<Node>
}

const nameOf = (node: Node): string =>
  node._tag === "Map" ? nameOf(node.command!) : node._tag === "Subcommands" ? nameOf(node.parent!) : node.name ?? ""

const childrenOf = (node: Node): ReadonlyArray<Node> =>
  node._tag === "Map" ? childrenOf(node.command!) : node._tag === "Subcommands" ? node.children ?? [] : []

const subcommands = (command: Descriptor.Command<unknown>): Array<readonly [string, Descriptor.Command<unknown>]> =>
  childrenOf(command as unknown as Node).map((child) => [nameOf(child), child as unknown as Descriptor.Command<unknown>])

/** Whether `command` is a group (`budget`, `prices`): it does nothing but name its subcommands. */
export const hasSubcommands = (command: Descriptor.Command<unknown>): boolean => subcommands(command).length > 0

/** The subcommand that `args` names under `root`, its path of names, and the arguments after it. */
export const resolve = (
  root: Descriptor.Command<unknown>,
  args: ReadonlyArray<string>
): { readonly command: Descriptor.Command<unknown>; readonly path: Array<string>; readonly rest: Array<string> } => {
  let command = root
  const path: Array<string> = []
  let i = 0
  for (; i < args.length; i++) {
    const child = subcommands(command).find(([name]) => name === args[i])
    if (child === undefined) break
    command = child[1]
    path.push(child[0])
  }
  return { command, path, rest: args.slice(i) }
}

const GLOBAL: ReadonlyArray<readonly [string, string]> = [
  ["-h, --help", "Show this help (for a command: tollgate COMMAND --help)"],
  ["--version", "Show the version"],
  ["--verbose", "On an error, print its stack and cause as well (or set TOLLGATE_VERBOSE=1)"]
]

/** The help page of `command`, reached from the program `program` through `path`. */
export const render = (options: {
  readonly program: string
  readonly version: string
  readonly command: Descriptor.Command<unknown>
  readonly path: ReadonlyArray<string>
  readonly config: CliConfig.CliConfig
  readonly terminal: Terminal
}): string => {
  const { config, terminal } = options
  const width = terminal.width
  const bold = (text: string) => (terminal.color ? `\u001b[1m${text}\u001b[22m` : text)
  const out: Array<string> = []
  const heading = (title: string) => out.push("", bold(title))
  const list = (entries: ReadonlyArray<readonly [string, ReadonlyArray<string>]>) => {
    // Short names in a column, long ones on their own line with the text under them.
    const column = Math.min(24, Math.max(...entries.map(([name]) => name.length)) + 4)
    for (const [name, texts] of entries) {
      const body = texts.flatMap((t) => wrap(t, width, " ".repeat(column)))
      if (name.length + 4 <= column && body.length > 0) {
        out.push(`  ${bold(name)}${" ".repeat(column - name.length - 2)}${body[0]!.slice(column)}`, ...body.slice(1))
      } else {
        out.push(`  ${bold(name)}`, ...body)
      }
    }
  }

  const prefix = [options.program, ...options.path.slice(0, -1)].join(" ")
  const own = sections(Descriptor.getHelp(options.command, config))
  const children = subcommands(options.command)
  out.push(`${options.program} ${options.version}`)

  heading("USAGE")
  if (children.length > 0) {
    out.push(...wrapUsage(`$ ${[options.program, ...options.path].join(" ")} <command> [options]`, width))
  } else {
    for (const span of Usage.enumerate(Descriptor.getUsage(options.command), config)) {
      const usage = `$ ${prefix} ${spanText(span)}`.replace(/\s+/g, " ")
      out.push(...wrapUsage(usage, width))
    }
  }

  for (const section of own) {
    if (section.text.length === 0 && section.entries.length === 0) continue
    heading(section.title)
    for (const text of section.text) out.push(...wrap(text, width, "  "))
    if (section.entries.length > 0) list(section.entries)
  }

  if (children.length > 0) {
    heading("COMMANDS")
    list(children.map(([name, child]) => [name, [summaryOf(descriptionOf(child, config))]]))
    out.push("", ...wrap(`Run \`${[options.program, ...options.path].join(" ")} <command> --help\` for a command's options.`, width, "  "))
  }

  heading("GLOBAL OPTIONS")
  list(GLOBAL.map(([name, text]) => [name, [text]]))
  return out.join("\n")
}
