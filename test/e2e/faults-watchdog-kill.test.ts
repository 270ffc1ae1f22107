/**
 * The watchdog killed while the job builds (issue 11's fault table, "watchdog SIGKILL" and
 * "both"). The watchdog alone: the hook still finishes the build and cleans up everything itself
 * (the journal entry too, although the watchdog can no longer be told `finished`). The hook and
 * the watchdog together: nothing is left to cancel the job, so the job stops its build when its
 * lease lapses (job-lease-timeout, 10 s here) and ends by itself; the next hook that starts (a
 * build of another derivation) reaps the orphan's journal entry and files, with no
 * `nsh cancel --orphans`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { buildEnv, scontrolJob, slurmTime } from "./support/build.js"
import { waitFor } from "./support/cluster.js"
import {
  assertNothingLeft,
  assertTickedOk,
  buildEnded,
  goneFromQueue,
  journalEntry,
  killHookGroup,
  printRow,
  processesMentioning,
  processGone,
  queueState,
  startBuild,
  startFollowed,
  submission
} from "./support/faults.js"

/** faults.nix's `log`: 40 lines, 0.5 s apart. */
const ticks = 40
const leaseTimeout = 10

/** SIGKILL to the watchdog's whole session (its idle shell and anything it started). */
const killWatchdog = (watchdogPid: number) =>
  Effect.promise(async () => {
    process.kill(-watchdogPid, "SIGKILL")
    await waitFor(() => processGone(watchdogPid), 5_000, "the watchdog to die")
  })

describe("the watchdog killed while building", () => {
  it.scopedLive(
    "the watchdog alone: the build succeeds and the hook cleans up everything",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("watchdog-kill")
        const { build, hookPid, job, watchdogPid } = yield* startFollowed(env, "log", new RegExp(`^tick 3/${ticks} `))

        yield* killWatchdog(watchdogPid)
        // Building still: the fault came in the phase this test names.
        assert.strictEqual(yield* queueState(job.jobId), "RUNNING")
        assert.notInclude(build.stderr(), `tick ${ticks}/${ticks} `)

        const ended = yield* buildEnded(build, 120_000)
        printRow("faults-watchdog-kill", "watchdog SIGKILL x building", ended)
        yield* assertTickedOk(ended, env, job, ticks)
        assert.strictEqual((yield* scontrolJob(job.jobId))["JobState"], "COMPLETED")
        // Nothing may wait for a reaper: the journal entry, the job's files are gone once nix-build returned.
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    180_000
  )

  it.scopedLive(
    "hook and watchdog both: the job stops by its lease (10 s), the next hook reaps what is left",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("both-kill", `job-lease-timeout = ${leaseTimeout}`)
        const { build, hookPid, job, watchdogPid } = yield* startFollowed(env, "building", /^tick 3\/120 /)

        yield* killWatchdog(watchdogPid)
        yield* killHookGroup(hookPid, "SIGKILL")
        const killedAt = performance.now()
        const ended = yield* buildEnded(build, 30_000)
        printRow("faults-watchdog-kill", "hook + watchdog SIGKILL x building", ended)
        assert.notStrictEqual(ended.code, 0, ended.stderr)
        assert.notInclude(ended.stderr, "tick 120/120 ", "the build was over before the kill")
        assert.strictEqual(yield* queueState(job.jobId), "RUNNING", "someone cancelled the job")

        // The job notices the lapsed lease (checked every second) and stops its build: exit 3.
        const goneMs = yield* goneFromQueue(job.jobId, killedAt, (leaseTimeout + 30) * 1000)
        const info = yield* scontrolJob(job.jobId)
        assert.strictEqual(info["JobState"], "FAILED", JSON.stringify(info))
        assert.strictEqual(info["ExitCode"], "3:0")
        const ranSeconds = (slurmTime(info["EndTime"]) - slurmTime(info["StartTime"])) / 1000
        assert.isBelow(ranSeconds, 60, "the build ran to its end instead of stopping")
        console.info(
          `[faults-watchdog-kill] job ${job.jobId} left squeue ${
            (goneMs / 1000).toFixed(1)
          } s after both were killed ` +
            `(job-lease-timeout = ${leaseTimeout})`
        )
        const logFile = `${env.stateDir}/${job.tag}.log`
        assert.include(readFileSync(logFile, "utf8"), "nsh: stopping the build: the hook's lease was not renewed")
        assert.deepStrictEqual(processesMentioning(job.tag), [], "the build's processes outlived the job")

        // Left for the reaper: the journal entry and the job's log and lease.
        assert.strictEqual((yield* journalEntry(env, job.tag))?.jobId, job.jobId)
        assert.isTrue(existsSync(`${env.stateDir}/${job.tag}.lease`))

        // The next hook start (another derivation, under the same nsh.conf) reaps them.
        const next = yield* startBuild(env, "quick")
        const nextJob = yield* submission(next)
        const nextEnded = yield* buildEnded(next, 120_000)
        assert.strictEqual(nextEnded.code, 0, nextEnded.stderr)
        yield* assertNothingLeft(env, {
          jobIds: [job.jobId, nextJob.jobId],
          tags: [job.tag, nextJob.tag],
          hookPid,
          watchdogPid
        }, 10_000)
      }),
    180_000
  )
})
