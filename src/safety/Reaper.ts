/**
 * Finding and cancelling nsh's orphaned jobs: those whose hook is gone from this login host while
 * the journal still records them (the watchdog normally cleans up; this covers a watchdog that
 * died too, e.g. in a crash). Jobs are matched by their tag, so even a job whose id was never
 * recorded is found.
 *
 * Another login host's entries (a journal in a shared home) are that host's to clean up: none of
 * its jobs is ever cancelled here, and its files and entry are removed only once Slurm no longer
 * knows the job and the entry is older than the job lease, so a host that never comes back leaves
 * nothing that lasts, and a live one loses nothing.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Effect } from "effect"
import { Config } from "../config/Config.js"
import { allJobFiles, jobFiles } from "../job/JobFiles.js"
import { hasTag } from "../job/JobTag.js"
import type { JobInfo } from "../slurm/JobSpec.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import type { SlurmError } from "../slurm/SlurmErrors.js"
import { isEntryOf, isHookAlive, Journal, type JournalEntry, thisLoginHost } from "./Journal.js"

/** The journal's entries whose hook has died on this login host. */
export const orphanEntries = Effect.gen(function*() {
  const journal = yield* Journal
  const entries = yield* journal.list
  return yield* Effect.filter(entries, (entry) => Effect.map(isHookAlive(entry), (alive) => !alive))
})

/** Another login host's entries old enough that, if Slurm no longer knows their job, they are abandoned. */
const staleForeignEntries = Effect.gen(function*() {
  const journal = yield* Journal
  const { settings } = yield* Config
  const here = yield* thisLoginHost
  const now = yield* Clock.currentTimeMillis
  const entries = yield* journal.list
  return entries.filter((entry) => !isEntryOf(here)(entry) && now - entry.createdAt > settings.jobLeaseTimeout * 1000)
})

export interface Reaped {
  readonly entry: JournalEntry
  /** The job cancelled, if one was found. */
  readonly jobId: number | undefined
  /** An entry of another login host, whose job Slurm no longer knows: only its files were removed. */
  readonly abandoned: boolean
}

/**
 * Cancels the jobs of dead hooks and removes their files and journal entries, and removes what
 * another login host's abandoned entries left. Asks slurmrestd only when there is such an entry,
 * so a hook start costs nothing in the common case.
 */
export const reapOrphans = Effect.gen(function*() {
  const orphans = yield* orphanEntries
  const foreign = yield* staleForeignEntries
  if (orphans.length === 0 && foreign.length === 0) return [] as ReadonlyArray<Reaped>
  const api = yield* SlurmApi
  const journal = yield* Journal
  const fs = yield* FileSystem.FileSystem
  const { settings } = yield* Config
  // The list of the user's jobs only when an entry has no job id: on a big cluster it is heavy.
  const listed = [...orphans, ...foreign].some((entry) => entry.jobId === undefined) ? yield* api.listJobs : []
  /** The jobs in Slurm that still carry the entry's tag (a recorded id may name someone else's job by now). */
  const jobsOf = (entry: JournalEntry): Effect.Effect<ReadonlyArray<JobInfo>, SlurmError> =>
    Effect.map(
      entry.jobId === undefined ? Effect.succeed([]) : api.getJob(entry.jobId).pipe(
        Effect.map((job) => [job]),
        Effect.catchTag("SlurmJobNotFound", () => Effect.succeed([]))
      ),
      (recorded) => [...recorded, ...listed].filter(hasTag(entry.tag))
    )
  const removeFiles = (entry: JournalEntry) =>
    Effect.zipRight(
      // The state directory is usually shared with the nodes: removing the files here removes them there.
      Effect.forEach(allJobFiles(jobFiles(settings.slurmStateDir, entry.tag), entry.outputs), (f) =>
        fs.remove(f, { force: true }).pipe(Effect.ignore), { discard: true }),
      journal.remove(entry.tag)
    )
  const reaped = yield* Effect.forEach(orphans, (entry) =>
    Effect.gen(function*() {
      const ids = [...new Set((yield* jobsOf(entry)).map((j) => j.jobId))]
      yield* Effect.forEach(ids, (id) => api.cancel(id), { discard: true })
      yield* removeFiles(entry)
      return { entry, jobId: ids[0], abandoned: false } satisfies Reaped
    }))
  const abandoned = yield* Effect.forEach(foreign, (entry) =>
    Effect.gen(function*() {
      if ((yield* jobsOf(entry)).length > 0) return []
      yield* removeFiles(entry)
      return [{ entry, jobId: undefined, abandoned: true } satisfies Reaped]
    }))
  return [...reaped, ...abandoned.flat()]
})
