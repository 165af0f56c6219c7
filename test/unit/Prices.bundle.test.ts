/**
 * The price data the executable loads is the package's: `npm run build` writes it beside the build
 * as JSON (dist/genai-prices.json), which `Pricing/Data.ts` parses instead of loading the package's
 * 830 KB module; and the update URL copied into tollgate is the package's own.
 */
import { REMOTE_DATA_JSON_URL, waitForUpdate } from "@pydantic/genai-prices"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { BUILT_DATA_FILE, DEFAULT_DATA_URL } from "../../src/Pricing/Data.js"

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist")

describe("the price data as built", () => {
  it("the update URL is the package's", () => {
    assert.strictEqual(DEFAULT_DATA_URL, REMOTE_DATA_JSON_URL)
  })

  it("dist/genai-prices.json is the package's bundled data, and the built module reads it", async () => {
    const built = JSON.parse(fs.readFileSync(path.join(dist, BUILT_DATA_FILE), "utf8")) as unknown
    assert.deepStrictEqual(built, JSON.parse(JSON.stringify(await waitForUpdate())))
    const data = (await import(path.join(dist, "Pricing", "Data.js"))) as { bundledData: () => unknown }
    assert.deepStrictEqual(data.bundledData(), built)
  })
})
