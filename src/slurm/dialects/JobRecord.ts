/**
 * A job record of GET /job/{id} and GET /jobs, in any version's shape, as a JobInfo.
 * Only the fields nsh reads are decoded; the other ~100 are ignored.
 */
import { Either, Schema } from "effect"
import type { JobInfo } from "../JobSpec.js"
import { ExitCode, exitOf, JobState, NoValNumber, numberOf, OptionalInt, splitState, Text } from "./Fields.js"

const Flagged = Schema.optionalWith(NoValNumber, { nullable: true })

const JobRecord = Schema.Struct({
  job_id: Schema.Number,
  name: Text,
  comment: Text,
  job_state: Schema.optionalWith(JobState, { nullable: true }),
  state_reason: Text,
  batch_host: Text,
  exit_code: Schema.optionalWith(ExitCode, { nullable: true }),
  submit_time: Flagged,
  start_time: Flagged,
  end_time: Flagged,
  restart_cnt: OptionalInt,
  user_name: Text
})

const JobsBody = Schema.Struct({
  jobs: Schema.optionalWith(Schema.Array(JobRecord), { nullable: true, default: () => [] })
})

const toJobInfo = (job: typeof JobRecord.Type): JobInfo => ({
  jobId: job.job_id,
  name: job.name,
  comment: job.comment,
  ...splitState(job.job_state),
  reason: job.state_reason,
  batchHost: job.batch_host,
  exit: exitOf(job.exit_code),
  submitTime: numberOf(job.submit_time) ?? 0,
  startTime: numberOf(job.start_time) ?? 0,
  endTime: numberOf(job.end_time) ?? 0,
  restartCount: job.restart_cnt ?? 0,
  userName: job.user_name
})

/** The `jobs[]` of a body; Left with the decoding problem when a record lacks what nsh needs. */
export const jobsOf = (body: unknown): Either.Either<ReadonlyArray<JobInfo>, string> =>
  Schema.decodeUnknownEither(JobsBody)(body).pipe(
    Either.mapLeft((e) => e.message),
    Either.map(({ jobs }) => jobs.map(toJobInfo))
  )

const isOwnedBy = (userName: string) => (record: unknown): boolean =>
  typeof record === "object" && record !== null && (record as { user_name?: unknown }).user_name === userName

/**
 * The `jobs[]` of `userName` in a body of the whole cluster's jobs. Others' records are dropped
 * before decoding: on a big cluster they are nearly all, and an odd one must not fail the list.
 */
export const ownJobsOf = (body: unknown, userName: string): Either.Either<ReadonlyArray<JobInfo>, string> => {
  const jobs = typeof body === "object" && body !== null ? (body as { jobs?: unknown }).jobs : undefined
  return jobsOf(Array.isArray(jobs) ? { jobs: jobs.filter(isOwnedBy(userName)) } : body)
}
