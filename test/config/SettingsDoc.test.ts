import { NodeFileSystem } from "@effect/platform-node"
import { describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, expect } from "vitest"
import { loadSettings } from "../../src/config/ConfigLive.js"
import { SettingsTable } from "../../src/config/Settings.js"
import { renderNshConfExample, renderSettingsMarkdown } from "../../src/config/SettingsDoc.js"
import { testSettings } from "../support/settings.js"
import { confTree, isolatedEnv } from "./confTree.js"

const examplePath = fileURLToPath(new URL("../../nsh.conf.example", import.meta.url))

// Turns every commented-out `#name = default` line of the example into a real assignment.
const uncommented = (text: string) => text.replace(/^#([a-z-]+ =.*)$/gm, "$1")

describe("renderNshConfExample", () => {
  it("matches the committed nsh.conf.example (regenerate: npx vitest run --project unit -u test/config/SettingsDoc.test.ts)", async () => {
    await expect(renderNshConfExample()).toMatchFileSnapshot(examplePath)
  })

  it("lists every setting, commented out, with its default", () => {
    const text = renderNshConfExample()
    for (const doc of SettingsTable) {
      const line = doc.default === "" ? `#${doc.key} =` : `#${doc.key} = ${doc.default}`
      assert.include(text.split("\n"), line, doc.key)
    }
  })
})

describe("renderSettingsMarkdown", () => {
  it("has a row per setting with its default", () => {
    const rows = renderSettingsMarkdown().trimEnd().split("\n")
    assert.strictEqual(rows.length, SettingsTable.length + 2)
    assert.include(rows, rows.find((r) => r.startsWith("| `slurm-api-port` | `6820` | Port of slurmrestd.")))
    assert.isTrue(rows.slice(2).every((r) => r.split(/(?<!\\)\|/).length === 5), "one cell per column")
  })
})

layer(NodeFileSystem.layer)("nsh.conf.example as a config file", (it) => {
  const defaults = (dir: string) => testSettings({ slurmStateDir: path.join(dir, "home/.local/state/nsh") })

  it.scoped("sets nothing: loading it yields the defaults with no warnings", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": renderNshConfExample() })
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.deepStrictEqual(loaded.settings, defaults(dir))
      assert.deepStrictEqual(loaded.warnings, [])
      assert.deepStrictEqual(loaded.files, [path.join(dir, "etc-nix/nsh.conf")])
    }))

  it.scoped("its documented defaults, uncommented, are valid and are the defaults", () =>
    Effect.gen(function*() {
      const text = uncommented(renderNshConfExample())
      assert.notStrictEqual(text, renderNshConfExample())
      const dir = yield* confTree({ "etc-nix/nsh.conf": text })
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.deepStrictEqual(loaded.settings, defaults(dir))
      assert.deepStrictEqual(loaded.warnings, [])
      // Every setting now comes from the file, but the empty token, which is no token at all.
      const fromDefault = [...loaded.sources].filter(([, s]) => s._tag !== "file").map(([key]) => key)
      assert.deepStrictEqual(fromDefault, ["slurm-jwt-token"])
    }))
})
