import { describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { assert } from "vitest"
// @ts-expect-error: a plain .mjs script without types (it must run before anything is installed)
import { staleness } from "../../scripts/ensure-deps.mjs"

const check = staleness as (lock: unknown, installed: unknown) => string | undefined

describe("scripts/ensure-deps.mjs (npm test's and npm run demo's pretest)", () => {
  const lock = {
    packages: {
      "": { name: "nix-scheduler-hook" },
      "node_modules/effect": { version: "3.22.4" },
      "node_modules/@esbuild/darwin-arm64": { version: "0.25.12", optional: true }
    }
  }

  it("asks for npm ci when node_modules is missing or a package's version differs", () => {
    assert.strictEqual(check(lock, undefined), "node_modules is missing")
    assert.strictEqual(
      check(lock, { packages: { "node_modules/effect": { version: "3.21.0" } } }),
      "node_modules/effect is 3.21.0, package-lock.json wants 3.22.4"
    )
    assert.include(check(lock, { packages: {} }), "node_modules/effect is not installed")
  })

  it("is content with a matching install (optional platform packages may be absent)", () => {
    assert.isUndefined(check(lock, { packages: { "node_modules/effect": { version: "3.22.4" } } }))
  })

  it("finds this checkout's node_modules up to date", () => {
    const read = (f: string) => JSON.parse(readFileSync(new URL(`../../${f}`, import.meta.url), "utf8")) as unknown
    assert.isUndefined(check(read("package-lock.json"), read("node_modules/.package-lock.json")))
  })
})
