/**
 * slurmrestd gone while the job builds (issue 11's fault table, "slurmrestd gone for 3 minutes").
 * nsh follows the job through an outage for slurm-outage-timeout (300 s by default, so it rides
 * out 3 minutes); these tests scale it down to stay short: 30 s against an outage of 20 s, as 3
 * minutes is to 5, and 10 s against an outage that outlasts it.
 * - Within it: the log streams on over SSH, the build completes, every line arrives once.
 * - Beyond it: the build fails saying how long slurmrestd was away; the job is cancelled (by the
 *   watchdog, once slurmrestd is back) and nothing is left.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { buildEnv, scontrolJob } from "./support/build.js"
import {
  assertNothingLeft,
  assertTickedOk,
  buildEnded,
  goneFromQueue,
  printRow,
  slurmrestdAnswers,
  standInForSlurmrestd,
  startFollowed,
  stopSlurmrestd,
  waitLine
} from "./support/faults.js"

/** faults.nix's `log`: 40 lines, 0.5 s apart. */
const ticks = 40

describe("slurmrestd gone while building", () => {
  it.scopedLive(
    "for 20 s, within slurm-outage-timeout (30 s): the log streams on and the build completes",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("outage-short", "slurm-outage-timeout = 30")
        const { build, hookPid, job, watchdogPid } = yield* startFollowed(env, "log", new RegExp(`^tick 3/${ticks} `))

        const outage = yield* stopSlurmrestd
        const standIn = yield* standInForSlurmrestd
        assert.isFalse(yield* slurmrestdAnswers, "slurmrestd still answers")
        yield* Effect.sleep("20 seconds")
        const polls = standIn.arrivals.length
        yield* standIn.close
        yield* outage.restore
        const restoredAt = performance.now()
        // nsh kept asking (every 2 s) and met the outage each time.
        assert.isAtLeast(polls, 3, "nsh's polls did not meet the outage")

        const ended = yield* buildEnded(build, 120_000)
        printRow("faults-outage", "slurmrestd gone 20 s (slurm-outage-timeout 30) x building", ended)
        yield* assertTickedOk(ended, env, job, ticks)
        const during = ended.lines.filter((l) =>
          l.text.startsWith("tick ") && l.atMs > outage.stoppedAt - build.startedAt &&
          l.atMs < restoredAt - build.startedAt
        )
        assert.isAtLeast(during.length, 10, `the log did not stream during the outage:\n${ended.stderr}`)
        assert.notMatch(ended.stderr, /cannot follow/)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    180_000
  )

  it.scopedLive(
    "for longer than slurm-outage-timeout (10 s): the build fails saying so, the job is cancelled",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("outage-long", "slurm-outage-timeout = 10")
        const { build, hookPid, job, watchdogPid } = yield* startFollowed(env, "building", /^tick 3\/120 /)

        const outage = yield* stopSlurmrestd
        const [line] = yield* waitLine(build, /^nsh: cannot follow Slurm job \d+: .*$/, 60_000)
        // Still building, and slurmrestd still away, when nsh gave up.
        assert.notInclude(build.stderr(), "tick 120/120 ")
        assert.isFalse(yield* slurmrestdAnswers, "slurmrestd came back before nsh gave up")
        assert.match(
          line!,
          new RegExp(
            `^nsh: cannot follow Slurm job ${job.jobId}: slurmrestd at \\S+ was unreachable for 10 s ` +
              `\\(slurm-outage-timeout; last: .*\\); should it stay away, the job stops by itself about 60 s from now, ` +
              `its lease no longer renewed; cancelling the job$`
          )
        )
        const ended = yield* buildEnded(build, 30_000)
        printRow("faults-outage", "slurmrestd gone > slurm-outage-timeout (10 s) x building", ended)
        assert.strictEqual(ended.code, 1, ended.stderr)

        // slurmrestd back: the watchdog (still retrying) cancels the job and cleans up.
        yield* outage.restore
        const restoredAt = performance.now()
        yield* goneFromQueue(job.jobId, restoredAt, 40_000)
        const info = yield* scontrolJob(job.jobId)
        assert.strictEqual(info["JobState"], "CANCELLED", JSON.stringify(info))
        console.info(`[faults-outage] job ${job.jobId} ${info["JobState"]} once slurmrestd was back`)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    180_000
  )
})
