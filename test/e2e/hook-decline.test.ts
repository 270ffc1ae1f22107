/**
 * nsh as Nix 2.8's build hook, declining everything: Nix builds locally, and one hook process
 * answers every `try` of the session (it stays alive after each decline).
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildBundle, nixBuildWithHook } from "../fixtures/hook/nixBuild.js"

beforeAll(() => Effect.runPromise(buildBundle.pipe(Effect.provide(NodeContext.layer))), 120_000)

describe("nsh declining (system mismatch)", () => {
  it.scoped("Nix builds all three derivations locally after one nsh process declined each", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-hook-decline-" })
      yield* fs.writeFileString(`${dir}/nsh.conf`, "# test/e2e/hook-decline.test.ts\nsystem = aarch64-linux\n")
      const nonce = `decline-${Date.now()}-${Math.random().toString(36).slice(2)}`

      const result = yield* nixBuildWithHook("top", nonce, ["--option", "builders", "", "-v", "-v"], {
        NSH_CONF: `${dir}/nsh.conf`,
        NSH_DEBUG_LOG: `${dir}/decisions.log`
      })
      assert.strictEqual(result.exitCode, 0, result.stderr)
      const out = result.stdout.trim()
      assert.match(out, /^\/nix\/store\/[a-z0-9]{32}-nsh-e2e-top$/)
      assert.match(
        yield* fs.readFileString(out),
        new RegExp(`^top ${nonce} /nix/store/\\S+-nsh-e2e-dep-a /nix/store/\\S+-nsh-e2e-dep-b\\n$`)
      )
      // The reason reaches the user through Nix (talkative level, shown with -vv).
      assert.include(result.stderr, "derivation needs system 'x86_64-linux', nsh.conf system is 'aarch64-linux'")

      const decisions = (yield* fs.readFileString(`${dir}/decisions.log`)).trim().split("\n").map((l) => l.split(" "))
      const pids = new Set(decisions.map(([pid]) => pid))
      assert.strictEqual(pids.size, 1, `one hook process for the whole session, got ${[...pids].join(", ")}`)
      for (const [, nsh, reply] of decisions) {
        assert.strictEqual(nsh, "nsh=Decline")
        assert.strictEqual(reply, "reply=decline")
      }
      const drvs = new Set(decisions.map(([, , , drv]) => drv?.replace(/^\/nix\/store\/[a-z0-9]{32}-/, "")))
      assert.deepStrictEqual([...drvs].sort(), ["nsh-e2e-dep-a.drv", "nsh-e2e-dep-b.drv", "nsh-e2e-top.drv"])
    }).pipe(Effect.provide(NodeContext.layer)))
})
