/**
 * nsh's own, API-version-independent view of a Slurm job. Dialects (src/slurm/dialects/)
 * map these to and from each slurmrestd version's JSON.
 */

/** What nsh submits. `extra` is merged verbatim over the version's `job` object. */
export interface JobSpec {
  /** Readable in squeue, e.g. `nix-build-hello-2.12`. */
  readonly name: string
  /** Tags the job as nsh's: `nsh:<tag> <drvPath>`, then any comment the user asked for; the tag is unique per submission. */
  readonly comment: string
  readonly script: string
  readonly currentWorkingDirectory: string
  readonly environment: Readonly<Record<string, string>>
  /** Unique per job (contains the tag), on the node. */
  readonly standardOutput: string
  readonly standardError?: string
  readonly timeLimitMinutes: number
  readonly cpusPerTask?: number
  readonly memoryPerNodeMb?: number
  readonly partition?: string
  /** The derivation's extraSlurmParams merged with slurm-extra-submission-params (which wins). */
  readonly extra: Readonly<Record<string, unknown>>
}

/** Slurm's base job states (exactly one per job). */
export const BaseStates = [
  "PENDING",
  "RUNNING",
  "SUSPENDED",
  "COMPLETED",
  "CANCELLED",
  "FAILED",
  "TIMEOUT",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "OUT_OF_MEMORY"
] as const
export type BaseState = (typeof BaseStates)[number]

/** A process's end as Slurm reports it. */
export type ExitStatus =
  | { readonly _tag: "Exited"; readonly code: number }
  | { readonly _tag: "Signaled"; readonly signal: number }

/** One observation of a job (GET /job/{id}). */
export interface JobInfo {
  readonly jobId: number
  readonly name: string
  readonly comment: string
  /** The base state when known; v0.0.38/39 report some flags (e.g. COMPLETING) instead of the base. */
  readonly state: BaseState | undefined
  /** Flags and raw state strings as reported (COMPLETING, REQUEUED, ...). */
  readonly flags: ReadonlyArray<string>
  /** The raw state as the server wrote it, for messages. */
  readonly rawState: string
  readonly reason: string
  /** Empty until the job has an allocation. */
  readonly batchHost: string
  readonly exit: ExitStatus | undefined
  /** Epoch seconds; 0 when unknown. For a pending job start is the expected start, if any. */
  readonly submitTime: number
  readonly startTime: number
  readonly endTime: number
  readonly restartCount: number
  readonly userName: string
}

/** How a finished job ended, in nsh's terms. */
export type JobOutcome =
  | { readonly _tag: "Succeeded" }
  | { readonly _tag: "Failed"; readonly exit: ExitStatus | undefined; readonly reason: string }
  | { readonly _tag: "Cancelled"; readonly reason: string }
  | { readonly _tag: "TimedOut"; readonly reason: string }
  | { readonly _tag: "OutOfMemory"; readonly reason: string }
  /** NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE-free infrastructure failures: worth resubmitting. */
  | { readonly _tag: "Retryable"; readonly state: string; readonly reason: string }
  | { readonly _tag: "Deadline"; readonly reason: string }
