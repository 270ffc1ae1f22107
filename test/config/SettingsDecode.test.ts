import { describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { assert } from "vitest"
import type { ConfEntry } from "../../src/config/NshConfParser.js"
import { decodeSettings } from "../../src/config/SettingsDecode.js"
import { testSettings } from "../support/settings.js"

const home = "/home/alice"
const file = "/etc/nix/nsh.conf"

const entries = (...kvs: ReadonlyArray<readonly [string, string]>): Array<ConfEntry> =>
  kvs.map(([key, value], i) => ({ key, value, file, line: i + 1 }))

const decode = (...kvs: ReadonlyArray<readonly [string, string]>) => decodeSettings(entries(...kvs), home)

const failure = (...kvs: ReadonlyArray<readonly [string, string]>) => Effect.flip(decode(...kvs))

describe("decodeSettings", () => {
  it.effect("with no entries yields every default, ~ expanded", () =>
    Effect.gen(function*() {
      const { settings, sources, warnings } = yield* decode()
      assert.deepStrictEqual(settings, testSettings({ slurmStateDir: "/home/alice/.local/state/nsh" }))
      assert.deepStrictEqual(warnings, [])
      assert.deepStrictEqual(sources.get("slurm-api-port"), { _tag: "default" })
    }))

  it.effect("decodes each kind and records file:line provenance", () =>
    Effect.gen(function*() {
      const { settings, sources } = yield* decode(
        ["system", "aarch64-linux"],
        ["system-features", "nsh big-parallel"],
        ["collect-garbage", "true"],
        ["slurm-api-port", "6821"],
        ["slurm-api-version", "v0.0.38"],
        ["store-dir", "/nix/store/"],
        ["slurm-state-dir", "~/nsh-state"],
        ["slurm-extra-submission-params", `{"partition": "debug", "nodes": 1}`],
        ["slurm-jwt-token", "tok"]
      )
      assert.strictEqual(settings.system, "aarch64-linux")
      assert.deepStrictEqual(settings.systemFeatures, ["nsh", "big-parallel"])
      assert.strictEqual(settings.collectGarbage, true)
      assert.strictEqual(settings.slurmApiPort, 6821)
      assert.strictEqual(settings.slurmApiVersion, "v0.0.38")
      assert.strictEqual(settings.storeDir, "/nix/store")
      assert.strictEqual(settings.slurmStateDir, "/home/alice/nsh-state")
      assert.deepStrictEqual(settings.slurmExtraSubmissionParams, { partition: "debug", nodes: 1 })
      assert.strictEqual(Option.map(settings.slurmJwtToken, Redacted.value).pipe(Option.getOrNull), "tok")
      assert.deepStrictEqual(sources.get("slurm-api-port"), { _tag: "file", file, line: 4 })
    }))

  it.effect("accepts Nix's other boolean spellings", () =>
    Effect.gen(function*() {
      for (
        const [text, value] of [["yes", true], ["1", true], ["no", false], ["0", false], ["false", false]] as const
      ) {
        const { settings } = yield* decode(["collect-garbage", text])
        assert.strictEqual(settings.collectGarbage, value, text)
      }
    }))

  it.effect("a later assignment overrides an earlier one", () =>
    Effect.gen(function*() {
      const { settings, sources } = yield* decode(["max-jobs", "4"], ["max-jobs", "8"])
      assert.strictEqual(settings.maxJobs, 8)
      assert.deepStrictEqual(sources.get("max-jobs"), { _tag: "file", file, line: 2 })
    }))

  it.effect("extra- appends to a list setting, starting from its current value", () =>
    Effect.gen(function*() {
      const { settings, sources } = yield* decode(
        ["extra-system-features", "kvm"],
        ["extra-system-features", "big  gpu"],
        ["mandatory-system-features", "nsh"],
        ["extra-mandatory-system-features", "gpu"]
      )
      assert.deepStrictEqual(settings.systemFeatures, ["nsh", "kvm", "big", "gpu"])
      assert.deepStrictEqual(settings.mandatorySystemFeatures, ["nsh", "gpu"])
      assert.deepStrictEqual(sources.get("system-features"), { _tag: "file", file, line: 2 })
    }))

  it.effect("setting a list after extra- replaces it", () =>
    Effect.gen(function*() {
      const { settings } = yield* decode(["extra-system-features", "kvm"], ["system-features", "a"])
      assert.deepStrictEqual(settings.systemFeatures, ["a"])
    }))

  it.effect("an unknown setting, or extra- on a non-list, is a warning naming file and line", () =>
    Effect.gen(function*() {
      const { settings, warnings } = yield* decode(["foo", "1"], ["extra-slurm-api-host", "x"], ["max-jobs", "2"])
      assert.deepStrictEqual(warnings, [
        "unknown setting 'foo' in /etc/nix/nsh.conf:1",
        "unknown setting 'extra-slurm-api-host' in /etc/nix/nsh.conf:2"
      ])
      assert.strictEqual(settings.maxJobs, 2)
    }))

  it.effect("a bad integer names file, line, setting and the range", () =>
    Effect.gen(function*() {
      const e = yield* failure(["system", "x"], ["slurm-api-port", "http"])
      assert.strictEqual(
        e.message,
        "/etc/nix/nsh.conf:2: slurm-api-port: expected an integer between 1 and 65535, got 'http'"
      )
      assert.strictEqual(e.key, "slurm-api-port")
    }))

  it.effect("integers out of range, with junk or in other notations are refused", () =>
    Effect.gen(function*() {
      for (const bad of ["0", "65536", "1e3", "0x10", " 80", "80.0", "", "-1"]) {
        const e = yield* failure(["slurm-api-port", bad])
        assert.include(e.message, "expected an integer between 1 and 65535", bad)
      }
    }))

  it.effect("a bad boolean names what is accepted", () =>
    Effect.gen(function*() {
      const e = yield* failure(["collect-garbage", "maybe"])
      assert.strictEqual(e.message, "/etc/nix/nsh.conf:1: collect-garbage: expected true or false, got 'maybe'")
    }))

  it.effect("a bad enum value lists the accepted ones", () =>
    Effect.gen(function*() {
      const e = yield* failure(["job-scheduler", "pbs"])
      assert.strictEqual(e.message, "/etc/nix/nsh.conf:1: job-scheduler: expected one of slurm, got 'pbs'")
    }))

  it.effect("invalid JSON is an error naming file, line and setting", () =>
    Effect.gen(function*() {
      const e = yield* failure(["slurm-extra-submission-params", "{partition: debug}"])
      assert.strictEqual(e.line, 1)
      assert.strictEqual(e.key, "slurm-extra-submission-params")
      assert.match(
        e.message,
        /^\/etc\/nix\/nsh\.conf:1: slurm-extra-submission-params: expected a JSON object .* got invalid JSON \(.+\)$/
      )
    }))

  it.effect("JSON that is not an object is an error", () =>
    Effect.gen(function*() {
      for (
        const [json, kind] of [["[1, 2]", "a JSON array"], ["null", "null"], ["\"x\"", "a JSON string"], [
          "3",
          "a JSON number"
        ]]
      ) {
        const e = yield* failure(["slurm-extra-submission-params", json])
        assert.isTrue(e.message.endsWith(`got ${kind}`), e.message)
      }
    }))

  it.effect("slurm-feature-params maps features to objects of job fields, and refuses anything else", () =>
    Effect.gen(function*() {
      const { settings } = yield* decode([
        "slurm-feature-params",
        `{"cuda": {"gres": "nshgpu:1"}, "big-parallel": {"cpus_per_task": 32}}`
      ])
      assert.deepStrictEqual(settings.slurmFeatureParams, {
        cuda: { gres: "nshgpu:1" },
        "big-parallel": { cpus_per_task: 32 }
      })
      const e = yield* failure(["slurm-feature-params", `{"cuda": "gres=gpu:1"}`])
      assert.match(
        e.message,
        /slurm-feature-params: expected a JSON object of JSON objects .* got a JSON string for "cuda"$/
      )
    }))

  it.effect("paths: ~ is the home directory; relative and (where not optional) empty paths are refused", () =>
    Effect.gen(function*() {
      const { settings } = yield* decode(["slurm-jwt-token-file", "~/.config/nsh/token"], ["remote-nix-bin-dir", "~"])
      assert.strictEqual(settings.slurmJwtTokenFile, "/home/alice/.config/nsh/token")
      assert.strictEqual(settings.remoteNixBinDir, "/home/alice")
      const relative = yield* failure(["slurm-state-dir", "state"])
      assert.strictEqual(
        relative.message,
        "/etc/nix/nsh.conf:1: slurm-state-dir: expected an absolute path or one starting with ~/, got 'state'"
      )
      const empty = yield* failure(["store-dir", ""])
      assert.include(empty.message, "store-dir: expected an absolute path or one starting with ~/, got an empty value")
      const { settings: unset } = yield* decode(["remote-nix-bin-dir", ""])
      assert.strictEqual(unset.remoteNixBinDir, "")
    }))

  it.effect("a bad value fails even when a later line overrides it, as in Nix", () =>
    Effect.gen(function*() {
      const e = yield* failure(["max-jobs", "many"], ["max-jobs", "3"])
      assert.strictEqual(e.line, 1)
    }))

  it.effect("an empty token is no token", () =>
    Effect.gen(function*() {
      const { settings } = yield* decode(["slurm-jwt-token", ""])
      assert.isTrue(Option.isNone(settings.slurmJwtToken))
    }))
})
