import { describe, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { assert } from "vitest"
import type { Settings } from "../../src/config/Settings.js"
import { type BuildOptions, defaultBuildOptions } from "../../src/dispatch/BuildOptions.js"
import { DefaultDerivationParams } from "../../src/job/DerivationParams.js"
import { extraSlurmParamsOf } from "../../src/job/ExtraParams.js"
import { hasTag, newJobIds, nshTagOf } from "../../src/job/JobTag.js"
import { jobSpecFor, mergedExtras, type SubmissionError } from "../../src/job/Submission.js"

/** The job's PATH: NixOS's, the default profile's, then the usual system directories. */
const jobPath = "/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin"
/** Minutes added to Nix's timeout for copying (the README: "plus 10 minutes"). */
const copyMargin = 10
import { type ApiVersion, ApiVersions, submitBody } from "../../src/slurm/dialects/index.js"
import type { JobSpec } from "../../src/slurm/JobSpec.js"
import type { Derivation } from "../../src/store/Derivation.js"
import { declaredJobKeys } from "../slurm/support/openapi.js"
import { testSettings } from "../support/settings.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

const drvPath = "/nix/store/00000000000000000000000000000000-hello-2.12.drv"
const ids = { tag: "nsh-0123456789abcdef", nonce: "fedcba9876543210fedcba9876543210" }

const drv = (env: Record<string, string> = {}, structuredAttrs?: Record<string, unknown>): Derivation => ({
  drvPath,
  outputs: [{ name: "out", path: "/nix/store/11111111111111111111111111111111-hello-2.12", hashAlgo: "", hash: "" }],
  inputDrvs: [],
  inputSrcs: [],
  system: "x86_64-linux",
  builder: "/bin/sh",
  args: [],
  env: { name: "hello-2.12", ...env },
  structuredAttrs
})

const specOk = (
  d: Derivation,
  settings: Partial<Settings> = {},
  options: BuildOptions = defaultBuildOptions,
  version: ApiVersion = "v0.0.38"
): JobSpec => {
  const result = jobSpecFor(d, testSettings(settings), options, ids, version)
  assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left.message : "")
  return Either.getOrThrow(result)
}

const specErr = (
  d: Derivation,
  settings: Partial<Settings> = {},
  options: BuildOptions = defaultBuildOptions,
  version: ApiVersion = "v0.0.38"
): SubmissionError => {
  const result = jobSpecFor(d, testSettings(settings), options, ids, version)
  assert.isTrue(Either.isLeft(result), "expected the job to be refused")
  return Either.getOrThrow(Either.flip(result))
}

describe("extraSlurmParamsOf", () => {
  it("reads a JSON string from env, or a JSON string or attribute set from structured attrs", () => {
    assert.deepStrictEqual(Either.getOrThrow(extraSlurmParamsOf(drv({ extraSlurmParams: "{\"cpus_per_task\":4}" }))), {
      cpus_per_task: 4
    })
    assert.deepStrictEqual(
      Either.getOrThrow(extraSlurmParamsOf(drv({}, { extraSlurmParams: "{\"partition\":\"debug\"}" }))),
      { partition: "debug" }
    )
    assert.deepStrictEqual(
      Either.getOrThrow(
        extraSlurmParamsOf(drv({}, { extraSlurmParams: { partition: "debug", memory_per_node: 4096 } }))
      ),
      { partition: "debug", memory_per_node: 4096 }
    )
  })

  it("treats an absent, empty or null value as no parameters", () => {
    assert.deepStrictEqual(Either.getOrThrow(extraSlurmParamsOf(drv())), {})
    assert.deepStrictEqual(Either.getOrThrow(extraSlurmParamsOf(drv({ extraSlurmParams: "" }))), {})
    assert.deepStrictEqual(Either.getOrThrow(extraSlurmParamsOf(drv({}, { extraSlurmParams: null }))), {})
    // With structured attrs, the env variable of the same name is not consulted.
    assert.deepStrictEqual(Either.getOrThrow(extraSlurmParamsOf(drv({ extraSlurmParams: "{bad" }, {}))), {})
  })

  it("refuses anything but a JSON object, naming the derivation and showing how to write it", () => {
    const cases: ReadonlyArray<[Derivation, string]> = [
      [drv({ extraSlurmParams: "--partition=debug --time=00:10:00" }), "looks like sbatch command-line options"],
      [drv({ extraSlurmParams: "[1,2]" }), "is not a JSON object"],
      [drv({ extraSlurmParams: "{\"a\":" }), "is not a JSON object"],
      [drv({}, { extraSlurmParams: ["--partition=debug"] }), "it is a list, not a JSON object"],
      [drv({}, { extraSlurmParams: 4 }), "it is a number (4), not a JSON object"]
    ]
    for (const [d, problem] of cases) {
      const error = Either.getOrThrow(Either.flip(extraSlurmParamsOf(d)))
      assert.strictEqual(error._tag, "ExtraSlurmParamsError")
      assert.include(error.message, drvPath)
      assert.include(error.message, problem)
      assert.include(error.message, "extraSlurmParams = builtins.toJSON { cpus_per_task = 4;")
    }
  })
})

describe("jobSpecFor", () => {
  it("builds the base job: name, comment, cwd, environment, log file, default time limit", () => {
    const spec = specOk(drv(), { slurmStateDir: "/home/u/.local/state/nsh", slurmDefaultTimeLimit: 120 })
    assert.strictEqual(spec.name, "nix-build-hello-2.12")
    assert.strictEqual(spec.comment, `nsh:${ids.tag} ${drvPath}`)
    assert.strictEqual(spec.currentWorkingDirectory, "/tmp")
    assert.deepStrictEqual(spec.environment, { PATH: jobPath, HOME: "/home/u/.local/state/nsh", NSH_TAG: ids.tag })
    assert.strictEqual(spec.standardOutput, `/home/u/.local/state/nsh/${ids.tag}.log`)
    assert.isUndefined(spec.standardError)
    assert.strictEqual(spec.timeLimitMinutes, 120)
    assert.deepStrictEqual(spec.extra, {})
    assert.include(spec.script, `nonce=${ids.nonce}`)
  })

  it("puts remote-nix-bin-dir first on PATH", () => {
    const spec = specOk(drv(), { remoteNixBinDir: "/shared/nix/bin" })
    assert.strictEqual(spec.environment["PATH"], `/shared/nix/bin:${jobPath}`)
  })

  it("keeps the job name to safe characters and 100 of them", () => {
    const odd = specOk(drv({ name: "it's $(rm -rf) `x`\nnext é" }))
    assert.strictEqual(odd.name, "nix-build-it_s___rm_-rf___x__next__")
    const long = specOk(drv({ name: "a".repeat(300) }))
    assert.strictEqual(long.name.length, 100)
  })

  it("escapes % in the log path, which Slurm would expand", () => {
    assert.strictEqual(specOk(drv(), { slurmStateDir: "/s/100%j" }).standardOutput, `/s/100%%j/${ids.tag}.log`)
    assert.strictEqual(specOk(drv(), { slurmStateDir: "/s/a\\b%j" }).standardOutput, `/s/a\\\\b%j/${ids.tag}.log`)
  })

  it("derives the time limit from Nix's timeout plus a copy margin", () => {
    assert.strictEqual(
      specOk(drv(), {}, { ...defaultBuildOptions, timeout: 3600 }).timeLimitMinutes,
      60 + copyMargin
    )
    assert.strictEqual(
      specOk(drv(), {}, { ...defaultBuildOptions, timeout: 3601 }).timeLimitMinutes,
      61 + copyMargin
    )
    assert.strictEqual(
      specOk(drv(), {}, { ...defaultBuildOptions, timeout: 1 }).timeLimitMinutes,
      1 + copyMargin
    )
  })

  it("refuses absurd time limits before sending anything", () => {
    const huge = specErr(drv(), {}, { ...defaultBuildOptions, timeout: 10 * 365 * 24 * 3600 })
    assert.strictEqual(huge._tag, "JobSpecError")
    assert.include(huge.message, "Nix's timeout of 315360000 s")
    assert.include(
      specErr(drv(), { slurmDefaultTimeLimit: 0 }).message,
      "slurm-default-time-limit 0 must be a whole number"
    )
    for (const bad of [0, -5, 1.5, "60", { infinite: true }, { set: false, number: 60 }]) {
      const error = specErr(drv({ extraSlurmParams: JSON.stringify({ time_limit: bad }) }))
      assert.include(error.message, "time_limit", JSON.stringify(bad))
    }
    // The {set, number} form of the newer API versions is checked like a number.
    assert.deepStrictEqual(
      specOk(drv(), { slurmExtraSubmissionParams: { time_limit: { set: true, number: 30 } } }).extra,
      {
        time_limit: { set: true, number: 30 }
      }
    )
  })

  it("merges extras with precedence base < extraSlurmParams < slurm-extra-submission-params", () => {
    const spec = specOk(
      drv({ extraSlurmParams: JSON.stringify({ partition: "from-drv", cpus_per_task: 4, time_limit: 30 }) }),
      {
        slurmExtraSubmissionParams: { partition: "from-conf", account: "physics" }
      }
    )
    assert.deepStrictEqual(spec.extra, { partition: "from-conf", cpus_per_task: 4, time_limit: 30, account: "physics" })
    // In the request body, extras replace the base fields of the same name.
    const job = submitBody("v0.0.38", spec)["job"] as Record<string, unknown>
    assert.strictEqual(job["time_limit"], 30)
    assert.strictEqual(job["partition"], "from-conf")
    assert.strictEqual(job["cpus_per_task"], 4)
    assert.strictEqual(job["standard_output"], spec.standardOutput)
  })

  it("refuses extras that would break the job protocol, naming where they came from", () => {
    const fromDrv = specErr(drv({ extraSlurmParams: JSON.stringify({ script: "#!/bin/sh\n" }) }))
    assert.include(fromDrv.message, `the derivation's extraSlurmParams sets "script", which nsh sets itself`)
    const fromConf = specErr(drv(), { slurmExtraSubmissionParams: { standard_error: "/tmp/err" } })
    assert.include(fromConf.message, `slurm-extra-submission-params in nsh.conf sets "standard_error"`)
  })

  it("passes a bad extraSlurmParams on as ExtraSlurmParamsError", () => {
    assert.strictEqual(specErr(drv({ extraSlurmParams: "--partition=x" }))._tag, "ExtraSlurmParamsError")
  })
})

describe("newJobIds", () => {
  it.effect("makes a tag nsh-<16 hex> and a 32-hex nonce, fresh each time", () =>
    Effect.gen(function*() {
      const a = yield* newJobIds
      const b = yield* newJobIds
      assert.match(a.tag, /^nsh-[0-9a-f]{16}$/)
      assert.match(a.nonce, /^[0-9a-f]{32}$/)
      assert.notStrictEqual(a.tag, b.tag)
      assert.notStrictEqual(a.nonce, b.nonce)
    }))
})

describe("mergedExtras", () => {
  const featureParams = {
    cuda: { gres: "gpu:1", partition: "gpu", cpus_per_task: 8 },
    "big-parallel": { cpus_per_task: 32, qos: "feature" },
    kvm: { constraint: "kvm" }
  }

  it("merges base < features (alphabetically) < extraSlurmParams < slurm-extra-submission-params", () => {
    const d = drv({
      requiredSystemFeatures: "nsh cuda big-parallel",
      extraSlurmParams: JSON.stringify({ partition: "drv", qos: "drv" })
    })
    const settings = testSettings({ slurmFeatureParams: featureParams, slurmExtraSubmissionParams: { qos: "conf" } })
    const { extra, sources } = Either.getOrThrow(mergedExtras(d, settings, "v0.0.38"))
    assert.deepStrictEqual(extra, { cpus_per_task: 8, qos: "conf", gres: "gpu:1", partition: "drv" })
    assert.deepStrictEqual(sources, {
      cpus_per_task: { _tag: "feature", feature: "cuda" },
      qos: { _tag: "conf" },
      gres: { _tag: "feature", feature: "cuda" },
      partition: { _tag: "derivation" }
    })
    // The submitted job carries the merge; kvm's params apply only to derivations requiring kvm.
    const spec = specOk(d, { slurmFeatureParams: featureParams, slurmExtraSubmissionParams: { qos: "conf" } })
    assert.deepStrictEqual(spec.extra, extra)
    assert.notProperty(spec.extra, "constraint")
  })

  it("refuses a feature's params that set a field of nsh's job protocol", () => {
    const e = specErr(drv({ requiredSystemFeatures: "cuda" }), {
      slurmFeatureParams: { cuda: { standard_output: "x" } }
    })
    assert.include(e.message, `slurm-feature-params for "cuda" in nsh.conf sets "standard_output"`)
  })
})

describe("what a derivation may set (slurm-derivation-params)", () => {
  const withParams = (params: Record<string, unknown>) => drv({ extraSlurmParams: JSON.stringify(params) })

  it("refuses user_id, current_working_directory and environment.PATH on every API version, naming the key and the setting", () => {
    for (const version of ApiVersions) {
      for (
        const [params, named] of [
          [{ user_id: "0" }, `"user_id"`],
          [{ current_working_directory: "/root" }, `"current_working_directory"`],
          [{ environment: { PATH: "/evil/bin" } }, "environment.PATH"],
          [{ environment: ["LD_PRELOAD=/tmp/x.so"] }, "environment.LD_PRELOAD"],
          [{ environment: { NIX_CONF_DIR: "/tmp" } }, "environment.NIX_CONF_DIR"]
        ] as const
      ) {
        const error = specErr(withParams(params), {}, defaultBuildOptions, version)
        assert.strictEqual(error._tag, "JobSpecError", version)
        assert.include(error.message, drvPath)
        assert.include(error.message, `the derivation's extraSlurmParams sets ${named}`, version)
        assert.include(error.message, "slurm-extra-submission-params", version)
        if (!named.startsWith("environment")) assert.include(error.message, "slurm-derivation-params", version)
      }
    }
  })

  it("accepts each version's default keys, all of which that version's OpenAPI schema declares", () => {
    for (const version of ApiVersions) {
      const declared = declaredJobKeys(version)
      const defaults = DefaultDerivationParams[version]
      assert.deepStrictEqual(defaults.filter((key) => !declared.includes(key)), [], version)
      for (const key of ["cpus_per_task", "memory_per_node", "time_limit", "partition", "qos", "account"]) {
        assert.include(defaults, key, version)
      }
    }
    assert.include(DefaultDerivationParams["v0.0.38"], "gres")
    assert.include(DefaultDerivationParams["v0.0.40"], "tres_per_node")
    assert.include(DefaultDerivationParams["v0.0.41"], "exclusive")
    assert.notInclude(DefaultDerivationParams["v0.0.42"], "exclusive")
    const spec = specOk(
      withParams({ cpus_per_task: 4, tres_per_node: "gres/gpu:1", shared: ["none"] }),
      {},
      undefined,
      "v0.0.44"
    )
    assert.deepStrictEqual(spec.extra, { cpus_per_task: 4, tres_per_node: "gres/gpu:1", shared: ["none"] })
  })

  it("widens with `default KEY`, narrows with `-KEY` or a list of its own", () => {
    const reservation = withParams({ reservation: "maint" })
    assert.include(specErr(reservation).message, `sets "reservation"`)
    assert.deepStrictEqual(specOk(reservation, { slurmDerivationParams: ["default", "reservation"] }).extra, {
      reservation: "maint"
    })
    const account = withParams({ account: "physics" })
    assert.deepStrictEqual(specOk(account).extra, { account: "physics" })
    const narrowed = specErr(account, { slurmDerivationParams: ["default", "-account"] })
    assert.include(narrowed.message, `sets "account"`)
    assert.notInclude(narrowed.message.split("for v0.0.38 now: ")[1] ?? "", "account")
    assert.include(
      specErr(withParams({ qos: "high" }), { slurmDerivationParams: ["cpus_per_task"] }).message,
      "now: cpus_per_task)"
    )
  })

  it("leaves nsh.conf's own params unrestricted", () => {
    const spec = specOk(drv(), {
      slurmExtraSubmissionParams: { user_id: "1000", environment: { PATH: "/site/bin" } },
      slurmDerivationParams: []
    })
    assert.deepStrictEqual(spec.extra, { user_id: "1000" })
    assert.strictEqual(spec.environment["PATH"], "/site/bin")
  })

  it("merges a derivation's environment into nsh's, in either shape, and never replaces it", () => {
    const fromObject = specOk(withParams({ environment: { OMP_NUM_THREADS: "4" } }), { slurmStateDir: "/s" })
    assert.deepStrictEqual(fromObject.environment, {
      PATH: jobPath,
      HOME: "/s",
      NSH_TAG: ids.tag,
      OMP_NUM_THREADS: "4"
    })
    assert.notProperty(fromObject.extra, "environment")
    const fromList = specOk(withParams({ environment: ["A=1=2"] }), {}, undefined, "v0.0.40")
    assert.strictEqual(fromList.environment["A"], "1=2")
    assert.strictEqual(fromList.environment["PATH"], jobPath)
    // The body carries nsh's variables too, in the version's shape.
    const job = submitBody("v0.0.40", fromList)["job"] as Record<string, unknown>
    assert.includeMembers(job["environment"] as Array<string>, ["A=1=2", `PATH=${jobPath}`, `NSH_TAG=${ids.tag}`])
    assert.include(specErr(withParams({ environment: { A: 1 } })).message, "environment.A is 1, not a string")
  })

  it("keeps a user's comment after nsh's tag, where nsh's job listing still finds the job", () => {
    const spec = specOk(withParams({ comment: "project x, run 7" }))
    assert.strictEqual(spec.comment, `nsh:${ids.tag} ${drvPath} project x, run 7`)
    assert.notProperty(spec.extra, "comment")
    const info = { ...jobInfo(), comment: spec.comment }
    assert.deepStrictEqual(nshTagOf(info), Option.some({ tag: ids.tag, drvPath }))
    assert.isTrue(hasTag(ids.tag)(info))
    assert.isFalse(hasTag("nsh-0123456789abcde")(info))
    // nsh.conf's comment wins over the derivation's, after the tag too.
    assert.strictEqual(
      specOk(withParams({ comment: "drv" }), { slurmExtraSubmissionParams: { comment: "site" } }).comment,
      `nsh:${ids.tag} ${drvPath} site`
    )
    assert.include(specErr(withParams({ comment: 7 })).message, `sets "comment" to 7, not a string`)
  })
})
