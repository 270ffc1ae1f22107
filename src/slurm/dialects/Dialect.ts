/**
 * What differs between slurmrestd API version families, as one interface. Decoding of job records,
 * errors and pings is shared (see JobRecord.ts, Envelope.ts): their codecs accept every version's shape.
 */
import type { JobSpec } from "../JobSpec.js"
import type { SlurmMessage } from "./Envelope.js"

/** The API versions nsh speaks, oldest first. */
export const ApiVersions = [
  "v0.0.38",
  "v0.0.39",
  "v0.0.40",
  "v0.0.41",
  "v0.0.42",
  "v0.0.43",
  "v0.0.44",
  "v0.0.45"
] as const
export type ApiVersion = (typeof ApiVersions)[number]

/** What a submit answer says, whatever its HTTP status. */
export interface SubmitReply {
  /** Present (> 0) whenever slurmctld queued a job, even next to errors. */
  readonly jobId: number | undefined
  readonly errors: ReadonlyArray<SlurmMessage>
  readonly warnings: ReadonlyArray<string>
}

/** One version's request body and the answers whose shape depends on the version. */
export interface Dialect {
  readonly version: ApiVersion
  /** The exact JSON body of POST /slurm/<version>/job/submit. */
  readonly submitBody: (spec: JobSpec) => Record<string, unknown>
  readonly submitReply: (body: unknown) => SubmitReply
  /** The per-job failures of a DELETE /job/{id} answer. */
  readonly cancelErrors: (body: unknown) => ReadonlyArray<SlurmMessage>
}
