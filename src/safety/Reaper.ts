/**
 * Finding and cancelling nsh's orphaned jobs: those whose hook is gone from this machine while
 * the journal still records them (the watchdog normally cleans up; this covers a watchdog that
 * died too, e.g. in a crash). Jobs are matched by their tag, so even a job whose id was never
 * recorded is found.
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { Config } from "../config/Config.js"
import { allJobFiles, jobFiles } from "../job/JobFiles.js"
import { hasTag } from "../job/JobTag.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import { isHookAlive, Journal, type JournalEntry } from "./Journal.js"

/** The journal's entries whose hook has died on this machine. */
export const orphanEntries = Effect.gen(function*() {
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
export const reapOrphans = Effect.gen(function*() {
  const orphans = yield* orphanEntries
  if (orphans.length === 0) return [] as ReadonlyArray<Reaped>
  const api = yield* SlurmApi
  const journal = yield* Journal
  const fs = yield* FileSystem.FileSystem
  const { settings } = yield* Config
  // The list of the user's jobs only when an entry has no job id: on a big cluster it is heavy.
  const listed = orphans.some((entry) => entry.jobId === undefined) ? yield* api.listJobs : []
  return yield* Effect.forEach(orphans, (entry) =>
    Effect.gen(function*() {
      const recorded = entry.jobId === undefined ? [] : yield* api.getJob(entry.jobId).pipe(
        Effect.map((job) => [job]),
        Effect.catchTag("SlurmJobNotFound", () => Effect.succeed([]))
      )
      // Only jobs that still carry the entry's tag: after a controller reset or the ids wrapping
      // around, the recorded id may name someone else's job.
      const ids = [...new Set([...recorded, ...listed].filter(hasTag(entry.tag)).map((j) => j.jobId))]
      yield* Effect.forEach(ids, (id) => api.cancel(id), { discard: true })
      // The state directory is usually shared with the nodes: removing the files here removes them there.
      yield* Effect.forEach(allJobFiles(jobFiles(settings.slurmStateDir, entry.tag), entry.outputs), (f) =>
        fs.remove(f, { force: true }).pipe(Effect.ignore), {
        discard: true
      })
      yield* journal.remove(entry.tag)
      return { entry, jobId: ids[0] } satisfies Reaped
    }))
})
