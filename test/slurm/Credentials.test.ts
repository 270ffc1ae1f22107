import { execFileSync } from "node:child_process"
/**
 * Reading the JWT's claims, choosing the user name, wording a rejection.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as path from "node:path"
import type { Settings, SettingSource } from "../../src/config/Settings.js"
import {
  claimsOf,
  credentialsOf,
  isExpired,
  rejectionReason,
  rereadCredentials,
  tokenSourceOf
} from "../../src/slurm/http/Credentials.js"
import { isPassingFault } from "../../src/slurm/SlurmErrors.js"
import { testSettings } from "../support/settings.js"
import { jwt } from "./support/jwt.js"

describe("claimsOf", () => {
  it("reads exp and sun from the payload", () => {
    assert.deepStrictEqual(claimsOf(Redacted.make(jwt({ exp: 1795583515, iat: 1795581715, sun: "alice" }))), {
      exp: 1795583515,
      sun: "alice"
    })
  })

  it("has no claims for a token that is not a JWT", () => {
    assert.deepStrictEqual(claimsOf(Redacted.make("garbage")), {})
    assert.deepStrictEqual(claimsOf(Redacted.make("a.!!!.c")), {})
  })
})

describe("credentialsOf", () => {
  const token = Redacted.make(jwt({ exp: 2000, sun: "alice" }))

  it.effect("reads a token file that could not be read at start again, each time, until it holds a token", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(Os.tmpdir(), "nsh-credentials-"))
      const file = path.join(dir, "token")
      const settings = testSettings({ slurmJwtToken: Option.none(), slurmJwtTokenFile: file })
      const missing = yield* Effect.flip(credentialsOf(settings))
      assert.strictEqual(missing._tag, "SlurmTokenUnreadable")
      assert.isTrue(isPassingFault(missing))
      assert.include(missing.message, `'${file}' (no such file)`)
      writeFileSync(file, "SLURM_JWT=\n")
      assert.include((yield* Effect.flip(credentialsOf(settings))).message, "(it is empty)")
      writeFileSync(file, `SLURM_JWT=${Redacted.value(token)}\n`)
      const read = Option.getOrThrow(yield* credentialsOf(settings))
      assert.strictEqual(Redacted.value(read.token), Redacted.value(token))
      assert.strictEqual(read.userName, "alice")
      rmSync(dir, { recursive: true })
    }))

  it.effect("prefers slurm-user-name, then the token's sun", () =>
    Effect.gen(function*() {
      const named = yield* credentialsOf(testSettings({ slurmJwtToken: Option.some(token), slurmUserName: "bob" }))
      assert.strictEqual(Option.getOrThrow(named).userName, "bob")
      const fromToken = yield* credentialsOf(testSettings({ slurmJwtToken: Option.some(token) }))
      assert.deepInclude(Option.getOrThrow(fromToken), { userName: "alice", expiresAt: 2000 })
    }))

  it.effect("falls back to the OS user for a token without sun", () =>
    Effect.gen(function*() {
      const creds = yield* credentialsOf(testSettings({ slurmJwtToken: Option.some(Redacted.make("opaque")) }))
      // The user this test runs as, by another route than the code's (id(1) reads the passwd database).
      assert.strictEqual(Option.getOrThrow(creds).userName, execFileSync("id", ["-un"], { encoding: "utf8" }).trim())
    }))

  it.effect("is none without a token", () =>
    Effect.map(credentialsOf(testSettings()), (creds) => assert.isTrue(Option.isNone(creds))))
})

describe("rejectionReason", () => {
  const creds = { token: Redacted.make("x"), userName: "alice", expiresAt: 2000 }
  it("says when the token expired", () => {
    assert.isTrue(isExpired(creds, 2_000_000))
    assert.strictEqual(rejectionReason(creds, 2_000_000), "expired at 1970-01-01T00:33:20Z")
  })
  it("suspects the signature or user when it has not expired", () => {
    assert.isFalse(isExpired(creds, 1_999_999))
    assert.match(rejectionReason(creds, 1_000_000), /^not yet expired: wrong signature or another user's token\?/)
  })
  it("says a token without expiry is not a readable JWT", () => {
    assert.match(rejectionReason({ ...creds, expiresAt: undefined }, 0), /not a readable JWT/)
  })
})

describe("tokenSourceOf and rereadCredentials", () => {
  const old = jwt({ exp: 1000, sun: "alice" })
  const fresh = jwt({ exp: 4000000000, sun: "alice" })
  const loadedWith = (settings: Partial<Settings>, sources: ReadonlyArray<[string, SettingSource]>) => ({
    settings: testSettings(settings),
    sources: new Map(sources),
    files: [],
    warnings: [],
    absent: []
  })
  const fileLine: SettingSource = { _tag: "file", file: "/etc/nix/nsh.conf", line: 4 }

  it.effect("reads SLURM_JWT again, and nothing for a token from nsh.conf", () =>
    Effect.gen(function*() {
      const fromEnv = loadedWith({ slurmJwtToken: Option.some(Redacted.make(old)) }, [
        ["slurm-jwt-token", { _tag: "env", variable: "SLURM_JWT" }]
      ])
      assert.deepStrictEqual(tokenSourceOf(fromEnv), { _tag: "Env" })
      const saved = process.env["SLURM_JWT"]
      process.env["SLURM_JWT"] = `SLURM_JWT=${fresh}`
      const again = yield* rereadCredentials(fromEnv.settings, { _tag: "Env" }).pipe(
        Effect.ensuring(
          Effect.sync(() => saved === undefined ? delete process.env["SLURM_JWT"] : (process.env["SLURM_JWT"] = saved))
        )
      )
      assert.strictEqual(Option.map(again, (c) => Redacted.value(c.token)).pipe(Option.getOrUndefined), fresh)

      // slurm-jwt-token in nsh.conf wins over a token file, and is what it is.
      const fromConf = loadedWith({ slurmJwtToken: Option.some(Redacted.make(old)), slurmJwtTokenFile: "/t" }, [
        ["slurm-jwt-token", { ...fileLine, line: 3 }],
        ["slurm-jwt-token-file", fileLine]
      ])
      assert.deepStrictEqual(tokenSourceOf(fromConf), { _tag: "Setting" })
      assert.isTrue(Option.isNone(yield* rereadCredentials(fromConf.settings, { _tag: "Setting" })))
      // The file's token carries the file line's source.
      const fromFile = loadedWith({ slurmJwtToken: Option.some(Redacted.make(old)), slurmJwtTokenFile: "/t" }, [
        ["slurm-jwt-token", fileLine],
        ["slurm-jwt-token-file", fileLine]
      ])
      assert.deepStrictEqual(tokenSourceOf(fromFile), { _tag: "File", file: "/t" })
    }))
})
