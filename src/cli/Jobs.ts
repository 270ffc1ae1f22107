/**
 * `nsh jobs` and `nsh cancel --orphans`: nsh's jobs in Slurm, and cleaning up after dead hooks.
 */
import { Console, Effect } from "effect"
import { type JobRow, listNshJobs } from "../safety/JobList.js"
import { reapOrphans } from "../safety/Reaper.js"

const table = (rows: ReadonlyArray<JobRow>): string => {
  const header = ["JOBID", "STATE", "NODE", "HOOK", "DERIVATION"]
  const cells = [header, ...rows.map((r) => [String(r.jobId), r.state, r.node || "-", r.hook, r.drvPath])]
  const widths = header.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)))
  return cells.map((c) => c.map((cell, i) => (i === c.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join(
    "\n"
  )
}

/** Prints nsh's jobs with state, node, derivation and whether their hook still runs. */
export const showJobs = (all: boolean) =>
  Effect.gen(function*() {
    const rows = yield* listNshJobs(all)
    yield* Console.log(rows.length === 0 ? `no ${all ? "" : "pending or running "}Slurm jobs of nsh` : table(rows))
  })

/** Cancels the jobs whose hook is gone and says which. */
export const cancelOrphans = Effect.gen(function*() {
  const reaped = yield* reapOrphans
  if (reaped.length === 0) return yield* Console.log("no orphaned jobs: every recorded job's hook is alive")
  for (const { entry, jobId } of reaped) {
    yield* Console.log(
      jobId === undefined
        ? `removed the record of ${entry.tag} (${entry.drvPath}): no job in Slurm`
        : `cancelled Slurm job ${jobId} unless it had already ended (${entry.drvPath}): its hook (pid ${entry.hookPid}) is gone`
    )
  }
})
