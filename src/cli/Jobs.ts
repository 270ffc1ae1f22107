/**
 * `nsh jobs` and `nsh cancel --orphans`: nsh's jobs in Slurm, and cleaning up after dead hooks.
 */
import { Clock, Console, Effect } from "effect"
import { type JobRow, listNshJobs } from "../safety/JobList.js"
import { reapOrphans } from "../safety/Reaper.js"

/** `/nix/store/<hash>-hello-2.12.drv` → `hello-2.12`. */
export const drvName = (drvPath: string): string =>
  drvPath.replace(/^.*\//, "").replace(/^[0-9a-z]{32}-/, "").replace(/\.drv$/, "")

/** A duration in seconds as people read it in a table: 42s, 5m12s, 3h04m, 2d05h. */
export const age = (seconds: number): string => {
  const s = Math.max(0, Math.floor(seconds))
  const two = (n: number) => String(n).padStart(2, "0")
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`
}

/** Columns padded to their widest cell; the last one is left ragged. */
export const alignColumns = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd())
    .join("\n")
}

/** The table `nsh jobs` prints, with ages counted from `now` (epoch seconds). */
export const jobsTable = (rows: ReadonlyArray<JobRow>, now: number): string =>
  alignColumns([
    ["JOBID", "STATE", "REASON", "NODE", "AGE", "HOOK", "DERIVATION"],
    ...rows.map((r) => [
      String(r.jobId),
      r.state,
      r.reason === "" ? "-" : r.reason,
      r.node || "-",
      r.submitTime > 0 ? age(now - r.submitTime) : "-",
      r.hook,
      drvName(r.drvPath)
    ])
  ])

/** Prints nsh's jobs (a table, or a JSON array with the full derivation paths). */
export const showJobs = (options: { readonly all: boolean; readonly json: boolean }) =>
  Effect.gen(function*() {
    const rows = yield* listNshJobs(options.all)
    if (options.json) return yield* Console.log(JSON.stringify(rows, null, 2))
    const now = (yield* Clock.currentTimeMillis) / 1000
    yield* Console.log(
      rows.length === 0 ? `no ${options.all ? "" : "pending or running "}Slurm jobs of nsh` : jobsTable(rows, now)
    )
  })

/** Cancels the jobs whose hook is gone and says which. */
export const cancelOrphans = Effect.gen(function*() {
  const reaped = yield* reapOrphans
  if (reaped.length === 0) return yield* Console.log("no orphaned jobs: every recorded job's hook is alive")
  for (const { abandoned, entry, jobId } of reaped) {
    yield* Console.log(
      abandoned
        ? `removed the record and files of ${entry.tag} (${entry.drvPath}) left by ${entry.host}: Slurm no longer knows its job`
        : jobId === undefined
        ? `removed the record of ${entry.tag} (${entry.drvPath}): no job in Slurm`
        : `cancelled Slurm job ${jobId} unless it had already ended (${entry.drvPath}): its hook (pid ${entry.hookPid}) is gone`
    )
  }
})
