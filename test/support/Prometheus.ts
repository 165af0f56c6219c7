/**
 * A small parser of the Prometheus text exposition format (0.0.4), strict enough to fail a test
 * on what Prometheus would refuse: every sample line must parse, belong to a family announced by
 * `# TYPE` (with `# HELP` before it), histograms need `_bucket{le=...}` lines ending in `+Inf`
 * equal to `_count`, and `_sum`; a family's type is declared once.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped"
  readonly help: string | undefined
  readonly samples: Array<Sample>
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const parseValue = (text: string): number => {
  if (text === "+Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  const n = Number(text)
  if (text === "" || Number.isNaN(n)) throw new Error(`not a sample value: ${text}`)
  return n
}

/** `name{a="x",b="y"} value`: the labels read character by character (values may hold `,`, `}` and escapes). */
const parseSample = (line: string): Sample => {
  const brace = line.indexOf("{")
  const space = line.indexOf(" ")
  if (brace === -1 || (space !== -1 && space < brace)) {
    const [name, value, ...rest] = line.split(" ")
    if (!NAME.test(name!) || value === undefined || rest.length > 1) throw new Error(`bad sample line: ${line}`)
    return { name: name!, labels: {}, value: parseValue(value) }
  }
  const name = line.slice(0, brace)
  if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`)
  const labels: Record<string, string> = {}
  let i = brace + 1
  while (line[i] !== "}") {
    const eq = line.indexOf("=", i)
    const key = line.slice(i, eq)
    if (!LABEL_NAME.test(key) || line[eq + 1] !== "\"") throw new Error(`bad label in: ${line}`)
    let j = eq + 2
    let value = ""
    while (line[j] !== "\"") {
      if (j >= line.length) throw new Error(`unterminated label value in: ${line}`)
      if (line[j] === "\\") {
        const next = line[j + 1]
        value += next === "n" ? "\n" : next
        j += 2
      } else value += line[j++]
    }
    if (key in labels) throw new Error(`repeated label ${key} in: ${line}`)
    labels[key] = value
    i = j + 1
    if (line[i] === ",") i++
    else if (line[i] !== "}") throw new Error(`bad label list in: ${line}`)
  }
  const rest = line.slice(i + 1)
  if (!rest.startsWith(" ")) throw new Error(`no value in: ${line}`)
  const [value, ...timestamp] = rest.slice(1).split(" ")
  if (timestamp.length > 1) throw new Error(`bad sample line: ${line}`)
  return { name, labels, value: parseValue(value!) }
}

const familyOf = (sample: string, families: Map<string, Family>): Family | undefined => {
  const exact = families.get(sample)
  if (exact !== undefined) return exact
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix)) {
      const family = families.get(sample.slice(0, -suffix.length))
      if (family !== undefined && (family.type === "histogram" || family.type === "summary")) return family
    }
  }
  return undefined
}

export const parse = (text: string): Map<string, Family> => {
  const families = new Map<string, Family>()
  const helps = new Map<string, string>()
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("the exposition must end with a newline")
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("# HELP ")) {
      const [, , name, ...help] = line.split(" ")
      if (!NAME.test(name!)) throw new Error(`bad HELP: ${line}`)
      helps.set(name!, help.join(" "))
      continue
    }
    if (line.startsWith("# TYPE ")) {
      const [, , name, type, ...rest] = line.split(" ")
      if (!NAME.test(name!) || rest.length > 0 || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type!)) {
        throw new Error(`bad TYPE: ${line}`)
      }
      if (families.has(name!)) throw new Error(`TYPE given twice for ${name}`)
      families.set(name!, { name: name!, type: type as Family["type"], help: helps.get(name!), samples: [] })
      continue
    }
    if (line.startsWith("#")) continue
    const sample = parseSample(line)
    const family = familyOf(sample.name, families)
    if (family === undefined) throw new Error(`sample before its TYPE: ${line}`)
    family.samples.push(sample)
  }
  for (const family of families.values()) {
    if (family.help === undefined) throw new Error(`no HELP for ${family.name}`)
    if (family.type !== "histogram") continue
    const series = new Map<string, Array<Sample>>()
    for (const s of family.samples) {
      const { le: _le, ...rest } = s.labels
      const key = JSON.stringify(Object.entries(rest).sort())
      series.set(key, [...(series.get(key) ?? []), s])
    }
    for (const samples of series.values()) {
      const buckets = samples.filter((s) => s.name === `${family.name}_bucket`)
      const count = samples.find((s) => s.name === `${family.name}_count`)
      const sum = samples.find((s) => s.name === `${family.name}_sum`)
      const inf = buckets.find((s) => s.labels.le === "+Inf")
      if (count === undefined || sum === undefined || inf === undefined) throw new Error(`histogram ${family.name} lacks _count, _sum or le="+Inf"`)
      if (inf.value !== count.value) throw new Error(`histogram ${family.name}: +Inf bucket ${inf.value} != _count ${count.value}`)
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`histogram ${family.name}: buckets are not cumulative`)
      }
    }
  }
  return families
}

/** The samples of `name` whose labels include `where`. */
export const samples = (families: Map<string, Family>, name: string, where: Readonly<Record<string, string>> = {}): Array<Sample> =>
  [...families.values()].flatMap((f) => f.samples).filter((s) =>
    s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)
  )

export const total = (families: Map<string, Family>, name: string, where: Readonly<Record<string, string>> = {}): number =>
  samples(families, name, where).reduce((n, s) => n + s.value, 0)
