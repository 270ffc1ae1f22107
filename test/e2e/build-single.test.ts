/**
 * nsh builds one derivation on the cluster: Nix hands it to nsh, nsh submits a Slurm job, the
 * build runs on node1, its log reaches nix-build's stderr and the output lands in the local store.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs
} from "./support/build.js"

describe("nsh building a single derivation", () => {
  it.scopedLive("builds it in a Slurm job on node1 and copies the output back", () =>
    Effect.gen(function*() {
      const env = yield* buildEnv("single")
      const build = yield* nshBuild(env, "single", [], 120_000)
      assert.strictEqual(build.code, 0, build.stderr)

      const [drvPath] = plannedDerivations(build)
      assert.match(drvPath ?? "", /-nsh-e2e-single\.drv$/, build.stderr)
      const jobs = submittedJobs(build)
      assert.deepStrictEqual(jobs.map((j) => j.drvPath), [drvPath])
      const jobId = jobs[0]!.jobId
      assert.include(build.stderr, `building '${drvPath}' on 'slurm job ${jobId} (127.0.0.1)'`)
      assert.include(build.stderr, `nsh: Slurm job ${jobId} is running on node1`)
      // Both of the builder's streams reach the user.
      assert.include(build.stderr, `\nsingle: stdout line ${env.nonce}\n`)
      assert.include(build.stderr, `\nsingle: stderr line ${env.nonce}\n`)

      const outputs = yield* outputsOf(drvPath!)
      assert.deepStrictEqual([build.stdout.trim()], outputs)
      const [content] = yield* assertBuiltOnNode1(outputs)
      assert.strictEqual(content, `node1\n${env.nonce}\n`)
      yield* assertCleanedUp(env, [jobId])
    }), 180_000)
})
