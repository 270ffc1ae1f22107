import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Config } from "../../src/config/Config.js"
import { NshConfError } from "../../src/config/ConfigErrors.js"
import { defaultBuildOptions } from "../../src/dispatch/BuildOptions.js"
import { NixLog, Verbosity } from "../../src/dispatch/NixLog.js"
import { route, type RoutingSettings } from "../../src/dispatch/Routing.js"
import { type BuildRequest, TryHandler } from "../../src/dispatch/TryHandler.js"
import { TryHandlerLive, TryHandlerWithoutConfig } from "../../src/dispatch/TryHandlerLive.js"
import { loadClusterHandler } from "../../src/layers/Hook.js"
import { TestConfig, testLoaded } from "../support/settings.js"

const request = (neededSystem: string, requiredFeatures: ReadonlyArray<string>): BuildRequest => ({
  amWilling: true,
  neededSystem,
  drvPath: "/nix/store/00000000000000000000000000000000-x.drv",
  requiredFeatures
})

const cluster = (
  systemFeatures: ReadonlyArray<string>,
  mandatorySystemFeatures: ReadonlyArray<string> = []
): RoutingSettings => ({
  system: "x86_64-linux",
  systemFeatures,
  mandatorySystemFeatures
})

describe("route", () => {
  const table: ReadonlyArray<readonly [string, BuildRequest, RoutingSettings, string | undefined]> = [
    ["no features needed", request("x86_64-linux", []), cluster(["nsh"]), undefined],
    ["required feature offered", request("x86_64-linux", ["nsh"]), cluster(["nsh", "big-parallel"]), undefined],
    [
      "all required features offered",
      request("x86_64-linux", ["nsh", "big-parallel"]),
      cluster(["big-parallel", "nsh"]),
      undefined
    ],
    ["mandatory feature required", request("x86_64-linux", ["nsh"]), cluster(["nsh"], ["nsh"]), undefined],
    [
      "other system",
      request("aarch64-linux", []),
      cluster(["nsh"]),
      "derivation needs system 'aarch64-linux', nsh.conf system is 'x86_64-linux'"
    ],
    [
      "system checked before features",
      request("aarch64-linux", ["kvm"]),
      cluster(["nsh"]),
      "derivation needs system 'aarch64-linux', nsh.conf system is 'x86_64-linux'"
    ],
    [
      "missing features",
      request("x86_64-linux", ["nsh", "kvm", "cuda"]),
      cluster(["nsh"]),
      "derivation requires 'kvm', 'cuda', not in nsh.conf system-features ('nsh')"
    ],
    [
      "feature with no system-features at all",
      request("x86_64-linux", ["kvm"]),
      cluster([]),
      "derivation requires 'kvm', not in nsh.conf system-features (empty)"
    ],
    [
      "mandatory feature not required",
      request("x86_64-linux", []),
      cluster(["nsh"], ["nsh"]),
      "derivation does not require 'nsh', which nsh.conf mandatory-system-features demands"
    ]
  ]
  for (const [name, req, settings, reason] of table) {
    it(name, () => {
      assert.deepStrictEqual(
        route(req, settings),
        reason === undefined ? { _tag: "Accept" } : { _tag: "Decline", reason }
      )
    })
  }
})

/** A NixLog double recording "level text". */
const recordingLog = (lines: Array<string>) =>
  Layer.succeed(
    NixLog,
    NixLog.of({
      log: (level, text) => Effect.sync(() => void lines.push(`${level} ${text}`)),
      activity: () => Effect.die("unused"),
      buildLog: () => Effect.void
    })
  )

describe("TryHandlerLive (interim)", () => {
  it.effect("declines a mismatching derivation and says why at talkative level", () => {
    const lines: Array<string> = []
    return Effect.gen(function*() {
      const handler = yield* TryHandler
      const answer = yield* handler.answer(request("aarch64-linux", []), defaultBuildOptions)
      assert.deepStrictEqual(answer, {
        _tag: "Decline",
        reason: "derivation needs system 'aarch64-linux', nsh.conf system is 'x86_64-linux'"
      })
      assert.deepStrictEqual(lines, [
        `4 nsh: not building '${
          request("", []).drvPath
        }' on the cluster: derivation needs system 'aarch64-linux', nsh.conf system is 'x86_64-linux'`
      ])
    }).pipe(
      Effect.provide(
        TryHandlerLive(loadClusterHandler).pipe(Layer.provide(Layer.merge(TestConfig(), recordingLog(lines))))
      )
    )
  })

  it.effect("hands what routing accepts to the Slurm handler, which declines a .drv it cannot read", () => {
    const lines: Array<string> = []
    return Effect.gen(function*() {
      const handler = yield* TryHandler
      const answer = yield* handler.answer(request("x86_64-linux", ["nsh"]), defaultBuildOptions)
      assert.strictEqual(answer._tag, "Decline")
      assert.match(answer._tag === "Decline" ? answer.reason : "", /^cannot read derivation .*-x\.drv: no such file/)
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^0 nsh: not building .* on the cluster: cannot read derivation/)
    }).pipe(
      Effect.provide(
        TryHandlerLive(loadClusterHandler).pipe(Layer.provide(Layer.merge(TestConfig(), recordingLog(lines))))
      )
    )
  })

  it.effect("shows nsh.conf's warnings at Nix's warning level once per hook process, with the first answer", () => {
    const lines: Array<string> = []
    const warnings = [
      "unknown setting 'slurm-api-hots' (/etc/nix/nsh.conf:2)",
      "the token file '/t' is readable by others"
    ]
    return Effect.gen(function*() {
      const handler = yield* TryHandler
      assert.deepStrictEqual(lines, [])
      yield* handler.answer(request("aarch64-linux", []), defaultBuildOptions)
      yield* handler.answer(request("aarch64-linux", []), defaultBuildOptions)
      assert.deepStrictEqual(lines.filter((line) => line.startsWith(`${Verbosity.warn} `)), [
        `${Verbosity.warn} nsh: ${warnings[0]}`,
        `${Verbosity.warn} nsh: ${warnings[1]}`
      ])
    }).pipe(
      Effect.provide(
        TryHandlerLive(loadClusterHandler).pipe(
          Layer.provide(Layer.merge(Config.fromLoaded({ ...testLoaded(), warnings }), recordingLog(lines)))
        )
      )
    )
  })

  it.effect("with an invalid nsh.conf: declines permanently and logs the error once", () => {
    const lines: Array<string> = []
    const error = new NshConfError({
      file: "/etc/nix/nsh.conf",
      line: 3,
      key: "slurm-api-port",
      reason: "expected an integer"
    })
    return Effect.gen(function*() {
      const handler = yield* TryHandler
      const first = yield* handler.answer(request("x86_64-linux", []), defaultBuildOptions)
      yield* handler.answer(request("x86_64-linux", []), defaultBuildOptions)
      assert.strictEqual(first._tag, "DeclinePermanently")
      assert.deepStrictEqual(lines, [
        "0 nsh: nsh.conf is invalid: /etc/nix/nsh.conf:3: slurm-api-port: expected an integer. Fix it to build on the cluster; until then Nix builds without nsh."
      ])
    }).pipe(Effect.provide(TryHandlerWithoutConfig(error).pipe(Layer.provide(recordingLog(lines)))))
  })
})
