/**
 * `max-jobs` and the job commands on the real cluster. With `max-jobs = 1` and Nix willing to run
 * three builds, nsh submits one job, answers the other offers `postpone` (Nix asks again later)
 * and never has two jobs in Slurm at once; meanwhile `nsh jobs` lists the live job with its hook's
 * pid, `nsh cancel --orphans` leaves it alone, and afterwards `nsh jobs --all` still lists the
 * finished jobs that plain `nsh jobs` no longer shows. Checked by what the commands say about each
 * job, not by their layout.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref } from "effect"
import { assertBuiltOnNode1, assertCleanedUp, buildEnv, outputsOf, submittedJobs } from "./support/build.js"
import { cluster, drvNameOf, nodeExec, run, squeueJobs, waitFor } from "./support/cluster.js"
import { buildEnded, journalEntry, processGone, startBuildOf, submission } from "./support/faults.js"

const fixture = () => `${cluster().repoRoot}test/fixtures/e2e-build/builds.nix`

/** The line of `nsh jobs` output naming job `jobId`. */
const lineOf = (stdout: string, jobId: number) =>
  stdout.split("\n").find((l) => new RegExp(`(^|\\s)${jobId}(\\s|$)`).test(l))

describe("max-jobs and the job commands", () => {
  it.scopedLive(
    "max-jobs = 1: one job at a time, postpone for the rest; nsh jobs [--all] and cancel --orphans on live and finished jobs",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("max-jobs", "max-jobs = 1")
        const nsh = (...args: Array<string>) =>
          Effect.promise(() =>
            run(cluster().nshBin, args, { env: { ...process.env, NSH_CONF: env.confPath }, timeoutMs: 60_000 })
          )
        const gate = `/tmp/nsh-e2e-gate-${env.nonce}`
        yield* Effect.addFinalizer(() => Effect.promise(() => nodeExec(`rm -f '${gate}'`)))
        const ourJobs = async () => (await squeueJobs()).filter((j) => j.name.startsWith("nix-build-nsh-e2e-ten-"))
        // Most of this build's jobs seen in Slurm at once, sampled all along.
        const most = yield* Ref.make(0)
        const sampler = yield* Effect.fork(
          Effect.promise(ourJobs).pipe(
            Effect.flatMap((jobs) => Ref.update(most, (m) => Math.max(m, jobs.length))),
            Effect.zipRight(Effect.sleep("200 millis")),
            Effect.forever
          )
        )
        const live = yield* startBuildOf(
          fixture(),
          env,
          "ten",
          ["-v", "--max-jobs", "3", "--arg", "count", "3", "--argstr", "gate", gate],
          240_000
        )

        const first = yield* submission(live)
        const postponed = yield* Effect.promise(() =>
          waitFor(() => live.lines.some((l) => /^nsh: postponing '\S+\.drv': max-jobs \(1\)/.test(l.text)), 60_000)
            .then(() => true, () => false)
        )
        assert.isTrue(postponed, `no postpone while job ${first.jobId} held the only slot:\n${live.stderr()}`)
        assert.lengthOf(live.lines.filter((l) => l.text.startsWith("nsh: submitted ")), 1, live.stderr())

        // nsh jobs: the live job, with the pid of the hook that submitted it.
        const hookPid = (yield* journalEntry(env, first.tag))?.hookPid ?? assert.fail("no journal entry")
        assert.isFalse(processGone(hookPid))
        const listed = yield* nsh("jobs")
        assert.strictEqual(listed.code, 0, listed.stderr)
        const row = lineOf(listed.stdout, first.jobId) ??
          assert.fail(`job ${first.jobId} not listed:\n${listed.stdout}`)
        assert.isTrue(row.endsWith(` ${drvNameOf(first.drvPath)}`), row)
        assert.include(row, String(hookPid))
        assert.match(row, /PENDING|RUNNING/)
        // cancel --orphans: a live hook's job is not an orphan.
        const reaped = yield* nsh("cancel", "--orphans")
        assert.strictEqual(reaped.code, 0, reaped.stderr)
        assert.notInclude(reaped.stdout, String(first.jobId), reaped.stdout)
        assert.isTrue(
          (yield* Effect.promise(ourJobs)).some((j) => j.id === first.jobId),
          "cancel --orphans cancelled it"
        )

        yield* Effect.promise(() => nodeExec(`touch '${gate}'`))
        const build = yield* buildEnded(live, 180_000)
        yield* Fiber.interrupt(sampler)
        assert.strictEqual(build.code, 0, build.stderr)
        const jobs = submittedJobs(build)
        assert.lengthOf(jobs, 3, build.stderr)
        assert.strictEqual(yield* Ref.get(most), 1, "two of the build's jobs were in Slurm at once")
        const outputs = (yield* Effect.forEach(jobs, (j) => outputsOf(j.drvPath))).flat()
        yield* assertBuiltOnNode1(outputs)
        yield* assertCleanedUp(env, jobs.map((j) => j.jobId))

        // Finished: only --all lists them (Slurm remembers them for MinJobAge).
        const now = yield* nsh("jobs")
        assert.strictEqual(now.code, 0, now.stderr)
        const all = yield* nsh("jobs", "--all")
        assert.strictEqual(all.code, 0, all.stderr)
        for (const job of jobs) {
          assert.isUndefined(lineOf(now.stdout, job.jobId), `finished job ${job.jobId} listed without --all`)
          const done = lineOf(all.stdout, job.jobId) ?? assert.fail(`job ${job.jobId} not in --all:\n${all.stdout}`)
          assert.include(done, "COMPLETED")
          assert.isTrue(done.endsWith(` ${drvNameOf(job.drvPath)}`), done)
        }
      }),
    300_000
  )
})
