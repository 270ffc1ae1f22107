/**
 * nsh declines, Nix's `builders` names node1: nsh hands the `try` to Nix's own build-remote
 * (on Nix 2.8: `nix __build-remote` is unknown, so libexec/nix/build-remote), which builds on node1.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildBundle, nixBuildWithHook } from "../fixtures/hook/nixBuild.js"

beforeAll(() => Effect.runPromise(buildBundle.pipe(Effect.provide(NodeContext.layer))), 120_000)

describe("nsh's fallback to Nix's build-remote", () => {
  it.scoped("builds on node1 through build-remote when nsh declines and builders is set", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-hook-fallback-" })
      yield* fs.writeFileString(`${dir}/nsh.conf`, "# test/e2e/hook-fallback.test.ts\nsystem = aarch64-linux\n")
      const nonce = `fallback-${Date.now()}-${Math.random().toString(36).slice(2)}`

      const result = yield* nixBuildWithHook("hostname", nonce, [
        "--option",
        "builders",
        "ssh://node1 x86_64-linux",
        "--max-jobs",
        "0"
      ], {
        NSH_CONF: `${dir}/nsh.conf`,
        NSH_DEBUG_LOG: `${dir}/decisions.log`
      })
      assert.strictEqual(result.exitCode, 0, result.stderr)
      assert.include(result.stderr, "on 'ssh://node1'")
      const out = result.stdout.trim()
      assert.match(out, /^\/nix\/store\/[a-z0-9]{32}-nsh-e2e-hostname$/)
      assert.strictEqual(yield* fs.readFileString(out), "node1\n")
      // build-remote's "unknown command" from `nix __build-remote` on Nix 2.8 is not shown.
      assert.notInclude(result.stderr, "__build-remote")

      const decisions = (yield* fs.readFileString(`${dir}/decisions.log`)).trim().split("\n")
      assert.strictEqual(decisions.length, 1)
      assert.match(decisions[0]!, /^\d+ nsh=Decline reply=fallback-accept \/nix\/store\/\S+-nsh-e2e-hostname\.drv$/)
    }).pipe(Effect.provide(NodeContext.layer)))
})
