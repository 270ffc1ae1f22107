/**
 * The last line of defence when the hook AND its watchdog die (a crash, an OOM kill of both): the
 * job, still pending, starts later, finds neither its derivation nor a fresh lease, and exits by
 * itself (code 3) within job-lease-timeout instead of holding node1; `nsh cancel --orphans` then
 * removes the journal entry and the job's files.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { buildEnv, scontrolJob, slurmTime } from "./support/build.js"
import { cluster, drvNameOf, run, squeueJobs, waitFor } from "./support/cluster.js"
import {
  assertNothingLeft,
  buildEnded,
  fillNode1,
  goneFromQueue,
  hookOf,
  journalEntry,
  killHookGroup,
  processGone,
  queueState,
  startBuild,
  submission,
  watchdogOf
} from "./support/faults.js"

const leaseTimeout = 10

describe("a job whose hook and watchdog both died", () => {
  it.scopedLive(
    "gives up by itself within job-lease-timeout once it starts, and nsh cancel --orphans cleans up",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("lease", `job-lease-timeout = ${leaseTimeout}`)
        const nsh = (...args: Array<string>) =>
          Effect.promise(() =>
            run(cluster().nshBin, args, { env: { ...process.env, NSH_CONF: env.confPath }, timeoutMs: 60_000 })
          )
        const filler = yield* fillNode1
        const build = yield* startBuild(env, "quick")
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)
        assert.strictEqual(yield* queueState(job.jobId), "PENDING")

        // The watchdog first (its session), then the hook's group: nothing is left to cancel the job.
        process.kill(-watchdogPid, "SIGKILL")
        yield* Effect.promise(() => waitFor(() => processGone(watchdogPid), 5_000, "the watchdog to die"))
        yield* killHookGroup(hookPid, "SIGKILL")
        const ended = yield* buildEnded(build, 30_000)
        assert.notStrictEqual(ended.code, 0, ended.stderr)
        assert.strictEqual((yield* journalEntry(env, job.tag))?.jobId, job.jobId, "the journal lost the orphan's entry")

        // `nsh jobs` lists it (its layout is the CLI's; the job's id, state and derivation are on its line).
        const listed = yield* nsh("jobs")
        assert.strictEqual(listed.code, 0, listed.stderr)
        const row = listed.stdout.split("\n").find((l) => new RegExp(`(^|\\s)${job.jobId}\\s`).test(l))
        assert.isDefined(row, listed.stdout)
        assert.include(row, "PENDING")
        assert.isTrue(row!.endsWith(` ${drvNameOf(job.drvPath)}`), row)

        // Still pending when node1 frees up (nobody cancelled it: it ends FAILED with exit 3 below,
        // not CANCELLED): the job starts without its derivation and with no lease ever renewed.
        assert.strictEqual(yield* queueState(job.jobId), "PENDING", "the job left the queue before node1 was freed")
        yield* filler.release
        const freedAt = performance.now()
        yield* Effect.promise(() =>
          waitFor(
            async () => (await squeueJobs()).find((j) => j.id === job.jobId)?.state !== "PENDING",
            60_000,
            `job ${job.jobId} to start`
          )
        )
        const goneMs = yield* goneFromQueue(job.jobId, freedAt, (leaseTimeout + 60) * 1000)
        const info = yield* scontrolJob(job.jobId)
        assert.strictEqual(info["JobState"], "FAILED", JSON.stringify(info))
        assert.strictEqual(info["ExitCode"], "3:0")
        const ranSeconds = (slurmTime(info["EndTime"]) - slurmTime(info["StartTime"])) / 1000
        // It waited out the lease (whole seconds, so allow one less) and not much longer.
        assert.isAtLeast(ranSeconds, leaseTimeout - 1)
        assert.isAtMost(ranSeconds, leaseTimeout + 15, "the job kept node1 busy well past job-lease-timeout")
        console.info(
          `[faults-lease] job ${job.jobId} ran ${ranSeconds} s on node1 and gave up (exit 3); ` +
            `gone from squeue ${
              (goneMs / 1000).toFixed(1)
            } s after node1 was freed (job-lease-timeout = ${leaseTimeout})`
        )

        // What it left: its log (saying why) and the journal entry, until nsh cancel --orphans.
        const logFile = `${env.stateDir}/${job.tag}.log`
        assert.isTrue(existsSync(logFile), `no ${logFile}`)
        assert.include(readFileSync(logFile, "utf8"), "nsh: giving up: ")
        assert.isDefined(yield* journalEntry(env, job.tag))

        const traces = { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid }
        const unclean = yield* Effect.exit(assertNothingLeft(env, traces, 500))
        assert.isTrue(unclean._tag === "Failure", "the leftover check does not see the orphan's log and journal entry")

        const reaped = yield* nsh("cancel", "--orphans")
        assert.strictEqual(reaped.code, 0, `nsh cancel --orphans: ${reaped.stdout}${reaped.stderr}`)
        assert.include(reaped.stdout, `${job.drvPath}`, reaped.stdout)
        console.info(`[faults-lease] nsh cancel --orphans: ${reaped.stdout.trim()}`)
        yield* assertNothingLeft(env, traces, 10_000)

        const again = yield* nsh("cancel", "--orphans")
        assert.strictEqual(again.code, 0, again.stderr)
        assert.include(again.stdout, "no orphaned jobs")
      }),
    240_000
  )
})
