import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { layer } from "@effect/vitest"
import { Cause, Effect, Option, Redacted } from "effect"
import * as path from "node:path"
import { inspect } from "node:util"
import { assert } from "vitest"
import { loadSettings } from "../../src/config/ConfigLive.js"
import type { LoadedSettings } from "../../src/config/Settings.js"
import { confTree, isolatedEnv } from "./confTree.js"

const SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.S3CR3T-sig"

const tokenText = (loaded: LoadedSettings) =>
  Option.getOrNull(Option.map(loaded.settings.slurmJwtToken, Redacted.value))

// Every way a LoadedSettings or an error may end up printed.
const renderings = (value: unknown): ReadonlyArray<string> => [
  String(value),
  JSON.stringify(value),
  inspect(value, { depth: null }),
  value instanceof Error ? value.message : "",
  value instanceof Error ? Cause.pretty(Cause.fail(value)) : ""
]

const assertNoSecret = (value: unknown) => {
  for (const text of renderings(value)) {
    assert.notInclude(text, "S3CR3T")
    assert.notInclude(text, "c2VjcmV0")
  }
}

const writeToken = (file: string, text: string, mode: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    yield* fs.writeFileString(file, text)
    yield* fs.chmod(file, mode)
  })

layer(NodeFileSystem.layer)("token sourcing", (it) => {
  it.scoped("slurm-jwt-token wins over the token file and SLURM_JWT", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "etc-nix/nsh.conf": `slurm-jwt-token = ${SECRET}\nslurm-jwt-token-file = /nonexistent/token\n`
      })
      const loaded = yield* loadSettings(isolatedEnv(dir, { SLURM_JWT: "from-env" }))
      assert.strictEqual(tokenText(loaded), SECRET)
      assert.deepStrictEqual(loaded.sources.get("slurm-jwt-token"), {
        _tag: "file",
        file: path.join(dir, "etc-nix/nsh.conf"),
        line: 1
      })
      assertNoSecret(loaded)
      assertNoSecret(loaded.settings)
      assertNoSecret(loaded.warnings)
    }))

  it.scoped("the token file wins over SLURM_JWT; it is trimmed and a leading SLURM_JWT= is dropped", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": "\nslurm-jwt-token-file = ~/token\n" })
      yield* writeToken(path.join(dir, "home/token"), `SLURM_JWT=${SECRET}\n`, 0o600)
      const loaded = yield* loadSettings(isolatedEnv(dir, { SLURM_JWT: "from-env" }))
      assert.strictEqual(tokenText(loaded), SECRET)
      assert.deepStrictEqual(loaded.sources.get("slurm-jwt-token"), {
        _tag: "file",
        file: path.join(dir, "etc-nix/nsh.conf"),
        line: 2
      })
      assert.deepStrictEqual(loaded.warnings, [])
      assertNoSecret(loaded)
    }))

  it.scoped("a token file readable by others gives a warning suggesting chmod 600", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": "slurm-jwt-token-file = ~/token\n" })
      const tokenFile = path.join(dir, "home/token")
      yield* writeToken(tokenFile, SECRET, 0o644)
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.strictEqual(tokenText(loaded), SECRET)
      assert.deepStrictEqual(loaded.warnings, [
        `the token file '${tokenFile}' (slurm-jwt-token-file in ${
          path.join(dir, "etc-nix/nsh.conf")
        }:1) is readable by group or others (mode 0644); run 'chmod 600 ${tokenFile}'`
      ])
      assertNoSecret(loaded)
    }))

  it.scoped("a missing token file is no config error (it may be being rewritten): no token, a warning naming it", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": "system = x\nslurm-jwt-token-file = /nonexistent/token\n" })
      const loaded = yield* loadSettings(isolatedEnv(dir, { SLURM_JWT: SECRET }))
      assert.isTrue(Option.isNone(loaded.settings.slurmJwtToken))
      assert.deepStrictEqual(loaded.sources.get("slurm-jwt-token"), {
        _tag: "file",
        file: path.join(dir, "etc-nix/nsh.conf"),
        line: 2
      })
      const [warning] = loaded.warnings
      assert.include(warning, "cannot read the token file '/nonexistent/token' (no such file; slurm-jwt-token-file in ")
      assert.include(warning, "nsh reads it again when it needs the token")
      assertNoSecret(loaded)
    }))

  it.scoped("an unreadable or empty token file is a warning that never quotes the file's content", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "etc-nix/nsh.conf": "slurm-jwt-token-file = ~/token\n",
        "home/token/inside": SECRET
      })
      const notAFile = yield* loadSettings(isolatedEnv(dir))
      assert.include(notAFile.warnings[0], "(not a regular file;")
      assertNoSecret(notAFile)
      const dir2 = yield* confTree({ "etc-nix/nsh.conf": "slurm-jwt-token-file = ~/token\n" })
      yield* writeToken(path.join(dir2, "home/token"), "SLURM_JWT=\n", 0o600)
      const empty = yield* loadSettings(isolatedEnv(dir2))
      assert.include(empty.warnings[0], "(it is empty;")
      assert.isTrue(Option.isNone(empty.settings.slurmJwtToken))
    }))

  it.scoped("SLURM_JWT is the last resort, with env provenance", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({})
      const loaded = yield* loadSettings(isolatedEnv(dir, { SLURM_JWT: ` ${SECRET}\n` }))
      assert.strictEqual(tokenText(loaded), SECRET)
      assert.deepStrictEqual(loaded.sources.get("slurm-jwt-token"), { _tag: "env", variable: "SLURM_JWT" })
      assertNoSecret(loaded)
    }))

  it.scoped("no token anywhere is none, from the default", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({})
      const loaded = yield* loadSettings(isolatedEnv(dir, { SLURM_JWT: "" }))
      assert.isTrue(Option.isNone(loaded.settings.slurmJwtToken))
      assert.deepStrictEqual(loaded.sources.get("slurm-jwt-token"), { _tag: "default" })
    }))

  it.scoped("errors on or near the token line never carry the token", () =>
    Effect.gen(function*() {
      for (
        const text of [
          `slurm-jwt-token=${SECRET}\n`,
          `slurm-jwt-token ${SECRET}\n`,
          `${SECRET}\n`,
          `slurm-jwt-token = ${SECRET}\nslurm-api-port = x\n`,
          `include ${SECRET}\n`.replace(SECRET, "missing.conf") + `slurm-jwt-token = ${SECRET}\n`
        ]
      ) {
        const dir = yield* confTree({ "etc-nix/nsh.conf": text })
        const e = yield* Effect.flip(loadSettings(isolatedEnv(dir)))
        assertNoSecret(e)
      }
    }))

  it.scoped("a misspelled token key is warned about by name only", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": `slurm-jwt-tokn = ${SECRET}\n` })
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.strictEqual(loaded.warnings.length, 1)
      assertNoSecret(loaded)
    }))
})
