/**
 * Finding and cancelling nsh's orphaned jobs: those whose hook is gone from this machine while
 * the journal still records them (the watchdog normally cleans up; this covers a watchdog that
 * died too, e.g. in a crash). Jobs are matched by their tag, so even a job whose id was never
 * recorded is found.
 */
import * as Os from "node:os"
import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { Config } from "../config/Config.js"
import type { JobInfo } from "../slurm/JobSpec.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import { allJobFiles, jobFiles } from "../job/JobFiles.js"
import { isHookAlive, Journal, type JournalEntry } from "./Journal.js"

/** An nsh job's tag and derivation, from the comment nsh gives every job (`nsh:<tag> <drvPath>`). */
export const nshTagOf = (info: JobInfo): Option.Option<{ readonly tag: string; readonly drvPath: string }> => {
  const match = /^nsh:(nsh-[0-9a-f]+) (.*)$/.exec(info.comment)
  return match === null ? Option.none() : Option.some({ tag: match[1]!, drvPath: match[2]! })
}

const nshJobs = (jobs: ReadonlyArray<JobInfo>) => jobs.filter((j) => Option.isSome(nshTagOf(j)))

/** The journal's entries whose hook has died on this machine. */
export const orphanEntries = Effect.gen(function* () {
  const journal = yield* Journal
  const entries = yield* journal.list
  return yield* Effect.filter(entries, (entry) => Effect.map(isHookAlive(entry), (alive) => !alive))
})

export interface Reaped {
  readonly entry: JournalEntry
  /** The job cancelled, if one was found. */
  readonly jobId: number | undefined
}

/**
 * Cancels the jobs of dead hooks and removes their files and journal entries. Asks slurmrestd
 * only when there is an orphan, so a hook start costs nothing in the common case.
 */
export const reapOrphans = Effect.gen(function* () {
  const orphans = yield* orphanEntries
  if (orphans.length === 0) return [] as ReadonlyArray<Reaped>
  const api = yield* SlurmApi
  const journal = yield* Journal
  const fs = yield* FileSystem.FileSystem
  const { settings } = yield* Config
  const live = nshJobs(yield* api.listJobs)
  return yield* Effect.forEach(orphans, (entry) =>
    Effect.gen(function* () {
      const jobs = live.filter((j) => Option.exists(nshTagOf(j), (t) => t.tag === entry.tag)).map((j) => j.jobId)
      const ids = [...new Set([...(entry.jobId === undefined ? [] : [entry.jobId]), ...jobs])]
      yield* Effect.forEach(ids, (id) => api.cancel(id), { discard: true })
      // The state directory is usually shared with the nodes: removing the files here removes them there.
      yield* Effect.forEach(allJobFiles(jobFiles(settings.slurmStateDir, entry.tag)), (f) => fs.remove(f, { force: true }).pipe(Effect.ignore), {
        discard: true
      })
      yield* journal.remove(entry.tag)
      return { entry, jobId: ids[0] } satisfies Reaped
    }))
})

/** One of nsh's jobs as `nsh jobs` shows it. */
export interface JobRow {
  readonly jobId: number
  readonly state: string
  readonly node: string
  readonly drvPath: string
  /** "alive (pid N)", "gone", "on <host>", or "unknown" without a journal entry here. */
  readonly hook: string
}

/** Whether a job still holds or waits for a node (finished jobs stay listed for MinJobAge). */
const isLive = (job: JobInfo) => job.state === undefined || job.state === "PENDING" || job.state === "RUNNING" || job.state === "SUSPENDED"

/** nsh's jobs in Slurm (only live ones unless `all`), each with whether its hook still runs. */
export const listNshJobs = (all: boolean) => Effect.gen(function* () {
  const api = yield* SlurmApi
  const journal = yield* Journal
  const entries = new Map((yield* journal.list).map((e) => [e.tag, e]))
  const jobs = nshJobs(yield* api.listJobs).filter((job) => all || isLive(job))
  return yield* Effect.forEach(jobs, (job) =>
    Effect.gen(function* () {
      const { tag, drvPath } = Option.getOrThrow(nshTagOf(job))
      const entry = entries.get(tag)
      const hook =
        entry === undefined
          ? "unknown"
          : entry.host !== Os.hostname()
            ? `on ${entry.host}`
            : (yield* isHookAlive(entry))
              ? `alive (pid ${entry.hookPid})`
              : "gone"
      return { jobId: job.jobId, state: job.rawState, node: job.batchHost, drvPath, hook } satisfies JobRow
    }))
})
