/**
 * v0.0.38 (Slurm 22.05–23.11): the hand-written plugin. Plain scalars; `script` only at the top
 * level; `environment` must be an object; unknown keys are rejected (lab 32–38).
 */
import { Schema } from "effect"
import type { JobSpec } from "../JobSpec.js"
import type { Dialect, SubmitReply } from "./Dialect.js"
import { envelopeOf, type SlurmMessage } from "./Envelope.js"
import { OptionalInt, Text } from "./Fields.js"

/** The `job` fields every version names alike; `extra` is spread last so its keys win. */
export const commonJobFields = (spec: JobSpec): Record<string, unknown> => ({
  name: spec.name,
  comment: spec.comment,
  current_working_directory: spec.currentWorkingDirectory,
  standard_output: spec.standardOutput,
  ...(spec.standardError === undefined ? {} : { standard_error: spec.standardError }),
  ...(spec.cpusPerTask === undefined ? {} : { cpus_per_task: spec.cpusPerTask }),
  ...(spec.partition === undefined ? {} : { partition: spec.partition })
})

const SubmitBody = Schema.Struct({ job_id: OptionalInt, job_submit_user_msg: Text })

// 2016 NODES_BUSY and 2042 JOB_HELD (e.g. `hold: true`) only mean "queued, starts later"; later
// versions report them as warnings themselves (api-notes §3.2).
const queuedAnyway = new Set([2016, 2042])

/** The submit answer of v0.0.38 and v0.0.39: `job_id` at the top, a user message from job_submit plugins. */
export const plainSubmitReply = (body: unknown): SubmitReply => {
  const { errors, warnings } = envelopeOf(body)
  const reply = Schema.decodeUnknownOption(SubmitBody)(body)
  const jobId = reply._tag === "Some" ? reply.value.job_id : undefined
  const userMessage = reply._tag === "Some" ? reply.value.job_submit_user_msg : ""
  const benign = (e: SlurmMessage) => jobId !== undefined && e.code !== undefined && queuedAnyway.has(e.code)
  return {
    jobId: jobId !== undefined && jobId > 0 ? jobId : undefined,
    errors: errors.filter((e) => !benign(e)),
    warnings: [...warnings, ...errors.filter(benign).map((e) => e.text), ...(userMessage === "" ? [] : [userMessage])]
  }
}

/** The v0.0.38 dialect. */
export const V0038: Dialect = {
  version: "v0.0.38",
  submitBody: (spec) => ({
    script: spec.script,
    job: {
      ...commonJobFields(spec),
      environment: spec.environment,
      time_limit: spec.timeLimitMinutes,
      ...(spec.memoryPerNodeMb === undefined ? {} : { memory_per_node: spec.memoryPerNodeMb }),
      ...spec.extra
    }
  }),
  submitReply: plainSubmitReply,
  cancelErrors: (body) => envelopeOf(body).errors
}
