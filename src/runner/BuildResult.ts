/**
 * How a build's end becomes what Nix sees: an exit code (100 build failure, 101 timeout, which
 * Nix ≤ 2.28 distinguishes; 1 otherwise) and a message naming the Slurm state and reason.
 */
import type { BuildExit } from "../dispatch/TryHandler.js"
import type { JobInfo, JobOutcome } from "../slurm/JobSpec.js"

/** nix-store --realise's exit code on the node → the hook's exit code. */
export const exitForRealise = (code: number): BuildExit => {
  if (code === 0) return 0
  if (code === 101) return 101
  // 100 plus bits for hash mismatch (2) and non-determinism (4): a build failure.
  if (code >= 100 && code <= 111) return 100
  return 1
}

/** The exit code for a job that ended without the script's end marker. */
export const exitForOutcome = (outcome: JobOutcome): BuildExit => {
  switch (outcome._tag) {
    case "Succeeded":
      return 0
    case "TimedOut":
    case "Deadline":
      return 101
    default:
      return 1
  }
}

const stateOf = (info: JobInfo) => `${info.rawState}${info.reason && info.reason !== "None" ? ` (${info.reason})` : ""}`

/** A user-facing account of how the job ended, with what to do about it. */
export const outcomeMessage = (jobId: number, outcome: JobOutcome, info: JobInfo, stateDir: string): string => {
  const job = `Slurm job ${jobId}${info.batchHost ? ` on ${info.batchHost}` : ""}`
  switch (outcome._tag) {
    case "Succeeded":
      return `${job} ended before the build reported a result`
    case "TimedOut":
      return `${job} hit its Slurm time limit: ${stateOf(info)}; raise Nix's timeout or slurm-default-time-limit`
    case "Deadline":
      return `${job} missed its deadline: ${stateOf(info)}`
    case "OutOfMemory":
      return `${job} ran out of memory: ${stateOf(info)}; ask for more with extraSlurmParams, e.g. memory_per_node`
    case "Cancelled":
      return `${job} was cancelled: ${stateOf(info)}`
    case "Retryable":
      return `${job} failed through no fault of the build: ${stateOf(info)}`
    case "Failed": {
      const how = outcome.exit === undefined
        ? ""
        : outcome.exit._tag === "Exited"
        ? `, exit code ${outcome.exit.code}`
        : `, killed by signal ${outcome.exit.signal}`
      // A job that failed before its script ran most often could not open its log file (22.05
      // reports exit_code 4021 then, not a wait status); 22.05 also calls a job killed by
      // SIGKILL/SIGTERM a JobLaunchFailure, and that one did start.
      const killed = outcome.exit?._tag === "Signaled" && (outcome.exit.signal === 9 || outcome.exit.signal === 15)
      const hint = info.reason === "JobLaunchFailure" && !killed
        ? `; check that slurm-state-dir (${stateDir}) exists and is writable on the node`
        : ""
      return `${job} failed: ${stateOf(info)}${how}${hint}`
    }
  }
}
