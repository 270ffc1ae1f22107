import { NodeFileSystem } from "@effect/platform-node"
import { describe, it, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as path from "node:path"
import { assert } from "vitest"
import { parseNshConfText, readNshConfFiles } from "../../src/config/NshConfParser.js"
import { confTree } from "./confTree.js"

const parseOk = (text: string) => {
  const result = parseNshConfText(text, "/etc/nix/nsh.conf")
  assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left.message : "")
  return Either.getOrThrow(result)
}

const parseErr = (text: string) => {
  const result = parseNshConfText(text, "/etc/nix/nsh.conf")
  assert.isTrue(Either.isLeft(result), "expected a syntax error")
  return Either.getOrThrow(Either.flip(result))
}

describe("parseNshConfText", () => {
  it("reads name = value lines, joining value tokens with single spaces", () => {
    const directives = parseOk("system-features =   big\t  kvm  \r\nslurm-api-host = h\n")
    assert.deepStrictEqual(directives, [
      { _tag: "Set", key: "system-features", value: "big kvm", line: 1 },
      { _tag: "Set", key: "slurm-api-host", value: "h", line: 2 }
    ])
  })

  it("drops comments anywhere on a line and blank lines, keeping line numbers", () => {
    const directives = parseOk(
      "# header\n\n   \nsystem = x86_64-linux # trailing\n  # indented comment\nmax-jobs = 3#glued\n"
    )
    assert.deepStrictEqual(directives, [
      { _tag: "Set", key: "system", value: "x86_64-linux", line: 4 },
      { _tag: "Set", key: "max-jobs", value: "3", line: 6 }
    ])
  })

  it("accepts an empty value, as Nix does", () => {
    assert.deepStrictEqual(parseOk("remote-nix-bin-dir =\n"), [
      { _tag: "Set", key: "remote-nix-bin-dir", value: "", line: 1 }
    ])
  })

  it("reads include and !include", () => {
    assert.deepStrictEqual(parseOk("include a.conf\n!include /abs/b.conf\n"), [
      { _tag: "Include", path: "a.conf", optional: false, line: 1 },
      { _tag: "Include", path: "/abs/b.conf", optional: true, line: 2 }
    ])
  })

  it("rejects a line without ' = ', naming file and line", () => {
    const e = parseErr("system = x\nslurm-api-host\n")
    assert.strictEqual(e.file, "/etc/nix/nsh.conf")
    assert.strictEqual(e.line, 2)
    assert.strictEqual(e.message, "/etc/nix/nsh.conf:2: syntax error: expected 'name = value'")
  })

  it("rejects '=' without spaces (as Nix does) and says so", () => {
    const e = parseErr("\n\nslurm-api-port=6820\n")
    assert.strictEqual(e.line, 3)
    assert.include(e.message, "with spaces around '='")
  })

  it("rejects a line with an empty name", () => {
    assert.strictEqual(parseErr("= value\n").line, 1)
  })

  it("rejects include with no path or several", () => {
    assert.include(parseErr("include\n").message, "/etc/nix/nsh.conf:1: syntax error: expected 'include PATH'")
    assert.include(parseErr("x = 1\n!include a b\n").message, ":2: syntax error: expected '!include PATH'")
  })

  it("never quotes the malformed line (it may hold a token)", () => {
    const e = parseErr("slurm-jwt-token=eyJhbGciOiJIUzI1NiJ9.SECRET.sig\n")
    assert.notInclude(e.message, "SECRET")
    assert.notInclude(JSON.stringify(e), "SECRET")
    const e2 = parseErr("eyJhbGciOiJIUzI1NiJ9.SECRET.sig\n")
    assert.notInclude(e2.message, "SECRET")
  })
})

layer(NodeFileSystem.layer)("readNshConfFiles", (it) => {
  it.scoped("splices includes in at their line, relative to the including file", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "main.conf": "system = a\ninclude sub/inc.conf\nmax-jobs = 1\n",
        "sub/inc.conf": "system = b\ninclude ../leaf.conf\n",
        "leaf.conf": "slurm-api-host = leaf\n"
      })
      const main = path.join(dir, "main.conf")
      const parsed = yield* readNshConfFiles([{ path: main }])
      assert.deepStrictEqual(
        parsed.entries.map((e) => [e.key, e.value, path.relative(dir, e.file), e.line]),
        [
          ["system", "a", "main.conf", 1],
          ["system", "b", "sub/inc.conf", 1],
          ["slurm-api-host", "leaf", "leaf.conf", 1],
          ["max-jobs", "1", "main.conf", 3]
        ]
      )
      assert.deepStrictEqual(parsed.files, [main, path.join(dir, "sub/inc.conf"), path.join(dir, "leaf.conf")])
      assert.deepStrictEqual(parsed.warnings, [])
    }))

  it.scoped("!include of a missing file is skipped silently", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "main.conf": "!include nope.conf\nsystem = a\n" })
      const parsed = yield* readNshConfFiles([{ path: path.join(dir, "main.conf") }])
      assert.deepStrictEqual(parsed.entries.map((e) => e.key), ["system"])
      assert.deepStrictEqual(parsed.warnings, [])
    }))

  it.scoped("include of a missing file is an error naming the including file and line", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "main.conf": "system = a\ninclude nope.conf\n" })
      const e = yield* Effect.flip(readNshConfFiles([{ path: path.join(dir, "main.conf") }]))
      assert.strictEqual(e.file, path.join(dir, "main.conf"))
      assert.strictEqual(e.line, 2)
      assert.include(e.message, `included file '${path.join(dir, "nope.conf")}' does not exist`)
    }))

  it.scoped("an include cycle is an error, not a hang", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "a.conf": "include b.conf\n", "b.conf": "x = 1\n\ninclude ./a.conf\n" })
      const e = yield* Effect.flip(readNshConfFiles([{ path: path.join(dir, "a.conf") }]))
      assert.strictEqual(e.file, path.join(dir, "b.conf"))
      assert.strictEqual(e.line, 3)
      assert.include(e.message, "include cycle")
    }))

  it.scoped("a file including itself is a cycle", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "a.conf": "!include a.conf\n" })
      const e = yield* Effect.flip(readNshConfFiles([{ path: path.join(dir, "a.conf") }]))
      assert.strictEqual(e.line, 1)
      assert.include(e.message, "include cycle")
    }))

  it.scoped("the same file included twice, not in a cycle, is read twice", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "main.conf": "include common.conf\ninclude other.conf\n",
        "other.conf": "include common.conf\n",
        "common.conf": "max-jobs = 2\n"
      })
      const parsed = yield* readNshConfFiles([{ path: path.join(dir, "main.conf") }])
      assert.strictEqual(parsed.entries.length, 2)
    }))

  it.scoped("a missing top-level file is skipped; an unreadable one is skipped with a warning", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "dir.conf/x": "", "ok.conf": "system = a\n" })
      const parsed = yield* readNshConfFiles([
        { path: path.join(dir, "missing.conf") },
        { path: path.join(dir, "dir.conf") },
        { path: path.join(dir, "ok.conf") }
      ])
      assert.deepStrictEqual(parsed.files, [path.join(dir, "ok.conf")])
      assert.deepStrictEqual(parsed.warnings, [
        `cannot read '${path.join(dir, "dir.conf")}' (not a regular file); skipping it`
      ])
    }))

  it.scoped("an included file that exists but cannot be read is skipped with a warning", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "main.conf": "include d.conf\nsystem = a\n", "d.conf/x": "" })
      const main = path.join(dir, "main.conf")
      const parsed = yield* readNshConfFiles([{ path: main }])
      assert.deepStrictEqual(parsed.entries.map((e) => e.key), ["system"])
      assert.deepStrictEqual(parsed.warnings, [
        `cannot read '${path.join(dir, "d.conf")}' included from ${main}:1 (not a regular file); skipping it`
      ])
    }))

  it.scoped("a required file (NSH_CONF) that is missing is an error", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({})
      const file = path.join(dir, "missing.conf")
      const e = yield* Effect.flip(readNshConfFiles([{ path: file, requiredBy: "NSH_CONF" }]))
      assert.strictEqual(e.file, file)
      assert.strictEqual(e.line, 0)
      assert.strictEqual(
        e.message,
        `${file}: cannot read this file, which NSH_CONF names (no such file); fix or unset NSH_CONF`
      )
    }))

  it.scoped("a syntax error in an included file names that file and line", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "main.conf": "include inc.conf\n", "inc.conf": "\n\nbroken\n" })
      const e = yield* Effect.flip(readNshConfFiles([{ path: path.join(dir, "main.conf") }]))
      assert.strictEqual(e.file, path.join(dir, "inc.conf"))
      assert.strictEqual(e.line, 3)
    }))
})
