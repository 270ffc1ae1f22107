/**
 * `nsh jobs`: nsh's jobs in Slurm, each with whether the hook that submitted it still runs.
 */
import { Effect, Option } from "effect"
import { nshJobsOf, nshTagOf } from "../job/JobTag.js"
import type { JobInfo } from "../slurm/JobSpec.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import { isEntryOf, isHookAlive, Journal, thisLoginHost } from "./Journal.js"

/** One of nsh's jobs as `nsh jobs` shows it. */
export interface JobRow {
  readonly jobId: number
  readonly state: string
  /** Slurm's reason (why it is pending, or how it ended); "None" while running normally. */
  readonly reason: string
  readonly node: string
  /** Epoch seconds; 0 when unknown. */
  readonly submitTime: number
  readonly startTime: number
  readonly drvPath: string
  /**
   * "alive (pid N)", "gone", "on <host>" for another login host's (its liveness only that host can
   * tell), or "unknown" without a journal entry.
   */
  readonly hook: string
}

/** Whether a job still holds or waits for a node (finished jobs stay listed for MinJobAge). */
const isLive = (job: JobInfo) =>
  job.state === undefined || job.state === "PENDING" || job.state === "RUNNING" || job.state === "SUSPENDED"

/** nsh's jobs in Slurm (only live ones unless `all`), each with whether its hook still runs. */
export const listNshJobs = (all: boolean) =>
  Effect.gen(function*() {
    const api = yield* SlurmApi
    const journal = yield* Journal
    const entries = new Map((yield* journal.list).map((e) => [e.tag, e]))
    const here = yield* thisLoginHost
    const jobs = nshJobsOf(yield* api.listJobs).filter((job) => all || isLive(job))
    return yield* Effect.forEach(jobs, (job) =>
      Effect.gen(function*() {
        const { tag, drvPath } = Option.getOrThrow(nshTagOf(job))
        const entry = entries.get(tag)
        const hook = entry === undefined
          ? "unknown"
          : !isEntryOf(here)(entry)
          ? `on ${entry.host === here.host ? `${entry.host} (${entry.pidNamespace})` : entry.host}`
          : (yield* isHookAlive(entry))
          ? `alive (pid ${entry.hookPid})`
          : "gone"
        return {
          jobId: job.jobId,
          state: job.rawState,
          reason: job.reason,
          node: job.batchHost,
          submitTime: job.submitTime,
          startTime: job.startTime,
          drvPath,
          hook
        } satisfies JobRow
      }))
  })
