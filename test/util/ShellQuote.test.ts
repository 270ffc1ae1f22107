import { execFileSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { forAnyLoginShell, shellQuote } from "../../src/util/ShellQuote.js"

// What sshd does with a remote command: hands it to the user's login shell as `SHELL -c COMMAND`.
const loginShells = ["/bin/sh", "/bin/bash", "/usr/bin/tcsh", "/bin/csh"]

// Everything csh parses differently from sh: `!`, newlines, `$`, quotes, `( … ) &`, `3<&0`.
const command = [
  `x='a b'; printf '%s|' "$x" "it's" 'a!b' "\\$y"`,
  `exec 3<&0 </dev/null; (echo sub >&2) & wait; exec 3<&-`,
  `printf '%s\\n' ${shellQuote("two\nlines")}`
].join("\n")

describe("forAnyLoginShell", () => {
  for (const shell of loginShells) {
    it(`runs the command under /bin/sh when the login shell is ${shell}`, () => {
      const out = execFileSync(shell, ["-c", forAnyLoginShell(command)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"]
      })
      expect(out).toBe("a b|it's|a!b|$y|two\nlines\n")
    })
  }

  it("is what csh cannot run unwrapped (so the wrapping is what makes it work)", () => {
    expect(() => execFileSync("/usr/bin/tcsh", ["-c", command], { stdio: "ignore" })).toThrow()
  })
})
