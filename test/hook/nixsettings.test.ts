import { Either } from "effect"
import { readFileSync } from "node:fs"
import { assert, describe, it } from "vitest"
import { defaultBuildOptions } from "../../src/dispatch/BuildOptions.js"
import { buildersConfigured } from "../../src/hook/Fallback.js"
import { HookDecoder } from "../../src/hook/HookProtocol.js"
import { fromNixSettings } from "../../src/hook/NixSettings.js"

const goldenSettings = () => {
  const decoder = new HookDecoder()
  decoder.push(readFileSync(new URL("../fixtures/hook/nix-2.8-hook-stdin.bin", import.meta.url)))
  const first = Either.getOrThrow(decoder.next())
  if (first?._tag !== "Settings") throw new Error("no settings")
  return first.entries
}

describe("fromNixSettings", () => {
  it("reads Nix 2.8's settings", () => {
    const { buildOptions, host } = fromNixSettings(goldenSettings(), 3)
    assert.deepStrictEqual(buildOptions, {
      timeout: 0,
      maxSilentTime: 0,
      maxBuildLogSize: 0,
      buildersUseSubstitutes: false,
      cores: 2,
      store: "auto",
      verbosity: 3
    })
    assert.deepStrictEqual(host, {
      builders: "@/etc/nix/machines",
      system: "x86_64-linux",
      extraPlatforms: ["i686-linux", "x86_64-v1-linux", "x86_64-v2-linux", "x86_64-v3-linux"],
      systemFeatures: ["big-parallel", "slurm"],
      maxJobs: 1
    })
  })

  it("takes overridden values, ignores unknown names and bad values", () => {
    const { buildOptions } = fromNixSettings([
      ["timeout", "3600"],
      ["max-silent-time", "60"],
      ["max-build-log-size", "10000"],
      ["builders-use-substitutes", "true"],
      ["cores", "-4"],
      ["store", "/chroot"],
      ["build-hook-kill-timeout", "500"]
    ], 5)
    assert.deepStrictEqual(buildOptions, {
      timeout: 3600,
      maxSilentTime: 60,
      maxBuildLogSize: 10000,
      buildersUseSubstitutes: true,
      cores: defaultBuildOptions.cores,
      store: "/chroot",
      verbosity: 5
    })
  })
})

describe("buildersConfigured", () => {
  const files: Record<string, string> = {
    "/etc/nix/machines": "# only a comment\n\n",
    "/etc/nix/real": "# a comment\nssh://node1 x86_64-linux\n"
  }
  const read = (path: string) => files[path]
  const table: ReadonlyArray<readonly [string, boolean]> = [
    ["", false],
    ["  ", false],
    ["ssh://node1 x86_64-linux", true],
    ["; ;\n", false],
    ["@/etc/nix/missing", false],
    ["@/etc/nix/machines", false],
    ["@/etc/nix/real", true],
    ["@/etc/nix/machines; ssh://node2", true],
    ["# ssh://commented", false]
  ]
  for (const [builders, expected] of table) {
    it(`'${builders}' → ${expected}`, () => assert.strictEqual(buildersConfigured(builders, read), expected))
  }
})
