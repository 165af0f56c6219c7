/**
 * `tollgate service` through the real executable, with a temporary HOME: the systemd user unit and
 * the launchd agent it writes (their content, golden), install and uninstall of the file, and a
 * dry run that changes nothing. The service managers themselves are not run here (`--no-enable`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { plan } from "../../src/Cli/Service.js"

const BIN = fs.realpathSync(path.resolve(import.meta.dirname, "../../dist/bin.js"))

const tollgate = (home: string, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const env = { ...process.env, HOME: home, NO_COLOR: "1" }
    execFile(process.execPath, [BIN, ...args], { cwd: home, env, timeout: 15_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))
  })

describe("tollgate service", () => {
  it.effect("install --dry-run prints the systemd user unit and the commands, and writes nothing", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-service-"))
      const config = path.join(home, "tollgate.yaml")
      const run = yield* tollgate(home, "service", "install", "--dry-run", "--platform", "linux", "--config", config)
      assert.strictEqual(run.code, 0, run.stderr)
      const unit = path.join(home, ".config", "systemd", "user", "tollgate.service")
      assert.strictEqual(
        run.stdout,
        [
          `would write ${unit}:`,
          "",
          "[Unit]",
          "Description=tollgate, the LLM API proxy",
          "After=network-online.target",
          "",
          "[Service]",
          "Type=simple",
          `ExecStart=${process.execPath} --v8-pool-size=2 ${BIN} start --config ${config}`,
          `EnvironmentFile=-${path.join(home, ".config", "tollgate", "env")}`,
          "Restart=on-failure",
          "RestartSec=2",
          "",
          "[Install]",
          "WantedBy=default.target",
          "",
          "would run: systemctl --user daemon-reload",
          "would run: systemctl --user enable --now tollgate.service",
          ""
        ].join("\n")
      )
      assert.isFalse(fs.existsSync(unit))
    }), 30_000)

  it.effect("install writes the unit, status finds it, uninstall removes it", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-service-"))
      const unit = path.join(home, ".config", "systemd", "user", "tollgate.service")
      const installed = yield* tollgate(home, "service", "install", "--no-enable", "--platform", "linux")
      assert.strictEqual(installed.code, 0, installed.stderr)
      assert.include(installed.stdout, `wrote ${unit}\n`)
      assert.include(installed.stdout, "chmod 600")
      assert.include(fs.readFileSync(unit, "utf8"), `ExecStart=${process.execPath} --v8-pool-size=2 ${BIN} start\n`)
      const status = yield* tollgate(home, "service", "status", "--platform", "linux")
      assert.include(status.stdout, `installed: ${unit}\n`)
      const removed = yield* tollgate(home, "service", "uninstall", "--no-enable", "--platform", "linux")
      assert.strictEqual(removed.stdout, `removed ${unit}\n`)
      assert.isFalse(fs.existsSync(unit))
      const again = yield* tollgate(home, "service", "uninstall", "--no-enable", "--platform", "linux")
      assert.strictEqual(again.stdout, `no service installed (${unit} does not exist)\n`)
    }), 30_000)

  it("the launchd agent: the same command line, restarted only after a failure, logs under ~/.tollgate; arguments quoted", () => {
    const agent = plan({ platform: "darwin", home: "/Users/me", node: "/opt/node/bin/node", bin: "/Users/me/tollgate/dist/bin.js", config: "/Users/me/a & b.yaml" })
    assert.strictEqual(agent.file, "/Users/me/Library/LaunchAgents/dev.tollgate.plist")
    assert.include(agent.content, "    <string>/opt/node/bin/node</string>\n    <string>--v8-pool-size=2</string>\n    <string>/Users/me/tollgate/dist/bin.js</string>\n    <string>start</string>\n    <string>--config</string>\n    <string>/Users/me/a &amp; b.yaml</string>\n")
    assert.include(agent.content, "<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>")
    assert.include(agent.content, "<key>StandardOutPath</key><string>/Users/me/.tollgate/tollgate.log</string>")
    assert.deepStrictEqual(agent.enable, [["launchctl", "load", "-w", agent.file]])
    const unit = plan({ platform: "linux", home: "/home/me", node: "/usr/bin/node", bin: "/home/me/my tollgate/dist/bin.js", config: undefined })
    assert.include(unit.content, `ExecStart=/usr/bin/node --v8-pool-size=2 "/home/me/my tollgate/dist/bin.js" start\n`)
  })
})
