/**
 * A derivation's `extraSlurmParams` (v0.0.38 job fields) reach Slurm: the job nsh submitted has
 * the time limit and CPUs per task the derivation asked for, and the build gets those CPUs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  endedJob,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs
} from "./support/build.js"

describe("nsh submitting a derivation with extraSlurmParams", () => {
  it.scopedLive("submits a job with time_limit 7 and cpus_per_task 2", () =>
    Effect.gen(function*() {
      const env = yield* buildEnv("extra-params")
      const build = yield* nshBuild(env, "extraParams", [], 120_000)
      assert.strictEqual(build.code, 0, build.stderr)

      const [drvPath] = plannedDerivations(build)
      assert.match(drvPath ?? "", /-nsh-e2e-extra-params\.drv$/, build.stderr)
      const jobs = submittedJobs(build)
      assert.deepStrictEqual(jobs.map((j) => j.drvPath), [drvPath])
      const jobId = jobs[0]!.jobId

      // Finished jobs stay known to slurmctld for MinJobAge, long enough to look right after.
      const job = yield* endedJob(jobId)
      assert.strictEqual(job["JobState"], "COMPLETED")
      assert.strictEqual(job["TimeLimit"], "00:07:00")
      assert.strictEqual(job["CPUs/Task"], "2")
      assert.strictEqual(job["NumCPUs"], "2")
      assert.match(job["Comment"] ?? "", /^nsh:nsh-[0-9a-f]{16} \S+$/)
      assert.isTrue(job["Comment"]?.endsWith(` ${drvPath}`), job["Comment"])

      const [content] = yield* assertBuiltOnNode1(yield* outputsOf(drvPath!))
      // nix-store --cores $SLURM_CPUS_ON_NODE: the build got the job's two CPUs.
      assert.strictEqual(content, "node1\n2\n")
      assert.include(build.stderr, "\nextra-params: 2 cores\n")
      yield* assertCleanedUp(env, [jobId])
    }), 180_000)
})
