/**
 * Nix's `timeout` on a build nsh runs: it becomes `--timeout` of the node's nix-store (and the
 * job's Slurm time limit, plus a margin for the copies), so a build that outlives it fails as a
 * timeout (nix-build exit 101 on Nix 2.8, 1 from 2.29 on) and leaves no job and no file behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildEnv, endedJob, scontrolJob } from "./support/build.js"
import { hookFailureExitCode } from "./support/cluster.js"
import { assertNothingLeft, buildEnded, hookOf, startBuild, submission, watchdogOf } from "./support/faults.js"

describe("Nix's timeout on an nsh build", () => {
  it.scopedLive(
    "a build sleeping 60 s under --option timeout 5 fails as a timeout and leaves nothing behind",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("timeout")
        const build = yield* startBuild(env, "sleeper", ["--option", "timeout", "5"])
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)
        // ceil(5 s / 60) minutes for the build plus src/job/Submission.ts's 10 for the copies.
        assert.strictEqual((yield* scontrolJob(job.jobId))["TimeLimit"], "00:11:00")

        const ended = yield* buildEnded(build, 90_000)
        assert.strictEqual(ended.code, hookFailureExitCode(101), ended.stderr)
        assert.include(ended.stderr, `sleeper: sleeping 60 s ${env.nonce}`)
        assert.notInclude(ended.stderr, "sleeper: woke up")
        assert.match(ended.stderr, /timed out/, ended.stderr)
        assert.strictEqual(ended.stdout, "")

        // The node's nix-store gave up (exit 101) and the script passed that on.
        const info = yield* endedJob(job.jobId)
        assert.strictEqual(info["JobState"], "FAILED", JSON.stringify(info))
        assert.strictEqual(info["ExitCode"], "101:0")
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    180_000
  )
})
