/**
 * Ten independent derivations with `--max-jobs 10`: nsh submits each job as soon as Nix offers
 * the derivation, without waiting for earlier builds, Slurm runs them side by side as far as
 * node1's CPUs go, and all ten outputs come back. The builds wait for a gate file the test creates
 * only once all ten submissions were reported: a hook that waited for its job before answering Nix
 * would never let the ten submissions happen, and the build would time out. Prints the build's
 * wall time against the sum of the jobs' run times.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  endedJob,
  outputsOf,
  plannedDerivations,
  slurmTime,
  submittedJobs
} from "./support/build.js"
import { cluster, nodeExec, waitFor } from "./support/cluster.js"
import { buildEnded, startBuildOf } from "./support/faults.js"

const fixture = () => `${cluster().repoRoot}test/fixtures/e2e-build/builds.nix`

describe("nsh building ten independent derivations with --max-jobs 10", () => {
  it.scopedLive(
    "submits all ten jobs while none can end, and builds all ten on node1",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("parallel")
        // In node1's own /tmp, where its builds can look (the build users cannot read /root).
        const gate = `/tmp/nsh-e2e-gate-${env.nonce}`
        const onNode1 = (cmd: string) =>
          Effect.promise(() => nodeExec(cmd)).pipe(Effect.map((r) => assert.strictEqual(r.code, 0, r.stderr)))
        yield* Effect.addFinalizer(() => Effect.promise(() => nodeExec(`rm -f '${gate}'`)))
        const live = yield* startBuildOf(fixture(), env, "ten", ["--max-jobs", "10", "--argstr", "gate", gate], 240_000)

        const submitted = () => live.lines.filter((l) => /^nsh: submitted '\S+\.drv' as Slurm job \d+$/.test(l.text))
        let ended = false
        void live.ended.then(() => (ended = true), () => (ended = true))
        const all = yield* Effect.promise(() =>
          waitFor(() => submitted().length >= 10 || ended, 120_000, "ten submissions", 100).then(
            () => submitted().length >= 10,
            () => false
          )
        )
        assert.isTrue(
          all,
          `only ${submitted().length} of ten jobs submitted while the builds waited at the gate:\n${live.stderr()}`
        )
        assert.notMatch(live.stderr(), /^ten-\d: done$/m, "a build ended before the gate opened")
        yield* onNode1(`touch '${gate}'`)

        const build = yield* buildEnded(live, 180_000)
        assert.strictEqual(build.code, 0, build.stderr)
        const drvs = plannedDerivations(build)
        assert.lengthOf(drvs, 10, build.stderr)
        const jobs = submittedJobs(build)
        assert.sameMembers(jobs.map((j) => j.drvPath), [...drvs])
        assert.strictEqual(new Set(jobs.map((j) => j.jobId)).size, 10)
        for (let i = 0; i < 10; i++) assert.include(build.stderr, `\nten-${i}: done\n`)

        const times = yield* Effect.forEach(jobs, ({ jobId }) =>
          endedJob(jobId).pipe(
            Effect.map((job) => {
              assert.strictEqual(job["JobState"], "COMPLETED", `job ${jobId}`)
              return { start: slurmTime(job["StartTime"]), end: slurmTime(job["EndTime"]) }
            })
          ))

        const outputs = (yield* Effect.forEach(drvs, outputsOf)).flat()
        assert.sameMembers(build.stdout.trim().split("\n"), outputs)
        yield* assertBuiltOnNode1(outputs)

        const sumRunS = times.reduce((sum, t) => sum + (t.end - t.start) / 1000, 0)
        console.log(
          `[build-parallel] nix-build wall time ${(build.wallMs / 1000).toFixed(1)} s; ` +
            `sum of the 10 jobs' run times ${sumRunS} s (Slurm, whole seconds, gate wait included)`
        )
        yield* assertCleanedUp(env, jobs.map((j) => j.jobId))
      }),
    300_000
  )
})
