/**
 * A build that fails on the node: nix-build exits 100 (a build failure, not an nsh error), the
 * user sees the log's tail and nsh's reason, and no output is registered anywhere.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  assertCleanedUp,
  buildEnv,
  endedJob,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs,
  validOnNode1
} from "./support/build.js"
import { hookFailureExitCode, run } from "./support/cluster.js"

describe("nsh building a derivation whose builder fails", () => {
  it.scopedLive(
    "fails with exit code 100 (1 on Nix >= 2.29) and shows the tail of the build log",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("failure")
        // -Q: Nix then prints the log's last 10 lines with the error, which needs the log on fd 4.
        // log-lines: 10 is Nix 2.8's default, 25 that of later ones.
        const build = yield* nshBuild(env, "failing", ["-Q", "--option", "log-lines", "10"], 120_000)
        assert.strictEqual(build.code, hookFailureExitCode(100), build.stderr)
        assert.strictEqual(build.stdout, "")

        const [drvPath] = plannedDerivations(build)
        assert.match(drvPath ?? "", /-nsh-e2e-failing\.drv$/, build.stderr)
        const jobs = submittedJobs(build)
        assert.deepStrictEqual(jobs.map((j) => j.drvPath), [drvPath])
        const jobId = jobs[0]!.jobId
        assert.include(
          build.stderr,
          `nsh: the build of '${drvPath}' failed on node1 (Slurm job ${jobId}, nix-store exit code 100)`
        )
        // "last 10 log lines:" up to Nix 2.2x, "Last 10 log lines:" later.
        const tail = build.stderr.match(/last 10 log lines:\n((?: +> .*\n)+)/i)?.[1]
        assert.isDefined(tail, build.stderr)
        assert.include(tail, "> failing: line 29 of 30\n")
        assert.include(tail, "> failing: line 30 of 30\n")
        assert.include(tail, `> failing: giving up ${env.nonce}\n`)
        assert.notInclude(tail, "> failing: line 20 of 30\n")

        // The job itself failed, with nix-store's exit code.
        const job = yield* endedJob(jobId)
        assert.strictEqual(job["JobState"], "FAILED")
        assert.strictEqual(job["ExitCode"], "100:0")

        const [out] = yield* outputsOf(drvPath!)
        const local = yield* Effect.promise(() => run("nix-store", ["--check-validity", out!]))
        assert.notStrictEqual(local.code, 0, `${out} is valid in the local store after a failed build`)
        assert.isFalse(yield* validOnNode1(out!), `${out} is valid in node1's store after a failed build`)
        yield* assertCleanedUp(env, [jobId])
      }),
    180_000
  )
})
