import { describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { assert } from "vitest"
import { renderSettingsMarkdown } from "../../src/config/SettingsDoc.js"

describe("README", () => {
  it("documents every setting exactly as the Settings table says", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const section = /<!-- settings:begin[^\n]*-->\n([\s\S]*?)<!-- settings:end -->/.exec(readme)
    assert.isNotNull(section, "README.md has no settings section")
    assert.strictEqual(section![1], renderSettingsMarkdown())
  })
})
