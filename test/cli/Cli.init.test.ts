/**
 * `tollgate init` without a terminal (flags only), through the real executable with a temporary
 * HOME: the file it writes (golden), that `start` would accept it, the backup of a file it
 * replaces, and the next command it prints. (The prompts at a terminal are Effect CLI's.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { configOf } from "../../src/Cli/Init.js"

const BIN = path.resolve(import.meta.dirname, "../../dist/bin.js")

const tollgate = (home: string, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const env: Record<string, string> = {}
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !/^(TOLLGATE_|UPSTREAM_|OPENAI_|ANTHROPIC_|OPENROUTER_|PORT$|HOST$)/.test(name)) env[name] = value
    }
    execFile(process.execPath, [BIN, ...args], { cwd: home, env: { ...env, HOME: home, NO_COLOR: "1" }, timeout: 30_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

describe("tollgate init", () => {
  it.effect("writes a valid tollgate.yaml from flags, says what to set and what to run next", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-init-"))
      const run = yield* tollgate(home, "init", "--yes", "--provider", "openrouter", "--port", "4115", "--daily-budget", "5", "--no-cache")
      assert.strictEqual(run.code, 0, run.stderr)
      const file = path.join(home, "tollgate.yaml")
      assert.strictEqual(run.stdout, `wrote ${file}\nset OPENROUTER_API_KEY before you start (it is not set here)\nnext: tollgate start\n`)
      assert.strictEqual(
        fs.readFileSync(file, "utf8"),
        [
          "# Written by tollgate init; every key is described in the README's Configuration section.",
          "server:",
          "  port: 4115",
          "providers:",
          "  openrouter:",
          "    kind: openai",
          "    preset: openrouter",
          "    apiKeyEnv: OPENROUTER_API_KEY",
          "cache:",
          "  enabled: false",
          "budget:",
          "  enabled: true",
          "  limits:",
          "    - window: daily",
          "      usd: 5",
          ""
        ].join("\n")
      )
      const validated = yield* tollgate(home, "config", "validate")
      assert.strictEqual(validated.code, 0, validated.stderr)
      assert.include(validated.stdout, `ok: ${file} (1 provider, 0 routes)`)
    }), 60_000)

  it.effect("an existing file is kept as a backup; another path gets --config in the next command", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-init-"))
      const file = path.join(home, "conf", "tg.yaml")
      fs.mkdirSync(path.dirname(file))
      fs.writeFileSync(file, "# mine\n")
      const run = yield* tollgate(home, "init", "--yes", "--file", "conf/tg.yaml")
      assert.strictEqual(run.code, 0, run.stderr)
      assert.match(run.stdout, /^kept the previous file as .*conf\/tg\.yaml\.bak-[\w-]+\nwrote .*conf\/tg\.yaml\nnext: tollgate start --config conf\/tg\.yaml\n$/)
      const backup = fs.readdirSync(path.dirname(file)).find((name) => name.startsWith("tg.yaml.bak-"))!
      assert.strictEqual(fs.readFileSync(path.join(path.dirname(file), backup), "utf8"), "# mine\n")
      assert.include(fs.readFileSync(file, "utf8"), "kind: mock")
      // No --cache and no --no-cache: the default, on (a boolean flag once read as --no-cache here).
      assert.match(fs.readFileSync(file, "utf8"), /cache:\n\s+enabled: true/)
    }), 60_000)

  it("a local server gets its URL and no key; openai its key variable", () => {
    const base = { keyEnv: undefined, port: 4100, dailyBudget: 0, cache: true }
    assert.deepStrictEqual(configOf({ ...base, provider: "local", baseUrl: "http://127.0.0.1:7001/v1" }).providers, {
      local: { kind: "openai", baseUrl: "http://127.0.0.1:7001/v1" }
    })
    assert.deepStrictEqual(configOf({ ...base, provider: "openai", baseUrl: undefined }).providers, {
      openai: { kind: "openai", baseUrl: "https://api.openai.com/v1", apiKeyEnv: "OPENAI_API_KEY" }
    })
  })
})

describe("tollgate init refuses", () => {
  it.effect("a provider it does not know: one line listing the choices, nothing written", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-init-"))
      const run = yield* tollgate(home, "init", "--yes", "--provider", "bogus")
      assert.strictEqual(run.code, 1)
      assert.strictEqual(
        run.stderr,
        "tollgate: --provider: expected one of openai, anthropic, openrouter, deepseek, groq, mistral, together, fireworks, xai, gemini, ollama, local, mock; got \"bogus\"\n"
      )
      assert.isFalse(fs.existsSync(path.join(home, "tollgate.yaml")))
    }), 60_000)
})
