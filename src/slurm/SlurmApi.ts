/**
 * SlurmApi: submit, observe and cancel jobs through slurmrestd. One implementation talks HTTP
 * (src/slurm/http/), choosing a dialect per API version (src/slurm/dialects/); tests and
 * `--dry-run` substitute recording doubles.
 */
import { Context, type Effect } from "effect"
import type { ApiVersion } from "./dialects/index.js"
import type { JobInfo, JobSpec } from "./JobSpec.js"
import type { SlurmError } from "./SlurmErrors.js"

export interface SubmittedJob {
  readonly jobId: number
  /** Non-fatal notes from slurmrestd (warnings[]), already worded. */
  readonly warnings: ReadonlyArray<string>
}

export interface SlurmApiService {
  /** The API version in use (negotiated once per process when slurm-api-version = auto). */
  readonly apiVersion: Effect.Effect<ApiVersion, SlurmError>
  /** The exact JSON body `submit` would send for a spec, for --dry-run and tests. */
  readonly renderSubmission: (spec: JobSpec) => Effect.Effect<unknown, SlurmError>
  /** Checks reachability and the token with one authenticated round trip. */
  readonly ping: Effect.Effect<void, SlurmError>
  /** Never retried blindly: an outcome-unknown submit is looked up by the spec's comment first. */
  readonly submit: (spec: JobSpec) => Effect.Effect<SubmittedJob, SlurmError>
  readonly getJob: (jobId: number) => Effect.Effect<JobInfo, SlurmError>
  /** Idempotent: cancelling a finished job succeeds. */
  readonly cancel: (jobId: number) => Effect.Effect<void, SlurmError>
  /**
   * The user's jobs (for `nsh jobs`, the reaper, the watchdog's look for a tag). slurmrestd's
   * GET /jobs cannot filter by user in any API version (update_time and flags only), so the answer
   * is bounded in size and others' jobs are dropped before decoding.
   */
  readonly listJobs: Effect.Effect<ReadonlyArray<JobInfo>, SlurmError>
}

export class SlurmApi extends Context.Tag("nsh/SlurmApi")<SlurmApi, SlurmApiService>() {}
