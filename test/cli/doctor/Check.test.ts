import { describe, it } from "@effect/vitest"
import { assert } from "vitest"
import { allPassed, checksJson, fail, pass, renderChecks, skip } from "../../../src/cli/doctor/Check.js"

describe("nsh doctor's report", () => {
  const results = [
    pass("nsh.conf", "/etc/nix/nsh.conf", ["warning: unknown setting 'x'"]),
    fail("token", "the token expired at 2026-01-01T00:00:00Z", "get a new one with `scontrol token`"),
    skip("job", "not run: add --job")
  ]

  it("marks each check ✓, ✗ or -, with its details and the fix under a failure", () => {
    assert.strictEqual(
      renderChecks(results),
      [
        "✓ nsh.conf  /etc/nix/nsh.conf",
        "            warning: unknown setting 'x'",
        "✗ token     the token expired at 2026-01-01T00:00:00Z",
        "            fix: get a new one with `scontrol token`",
        "- job       not run: add --job",
        "",
        "1 check failed"
      ].join("\n")
    )
  })

  it("passes only when nothing failed; skipped checks do not count against it", () => {
    assert.isFalse(allPassed(results))
    assert.isTrue(allPassed([results[0]!, results[2]!]))
    assert.deepStrictEqual(checksJson([results[0]!]), { ok: true, checks: [results[0]!] })
  })
})
