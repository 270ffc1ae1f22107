/**
 * v0.0.39 (Slurm 23.02–24.05): the first data_parser version. Numbers with flags
 * (`{set, infinite, number}`), `environment` as a `K=V` list, `script` inside `job`. A submit
 * that queued a job with a non-fatal error answers HTTP 500 with `job_id` (api-notes §3.2).
 */
import type { JobSpec } from "../JobSpec.js"
import type { Dialect } from "./Dialect.js"
import { envelopeOf } from "./Envelope.js"
import { commonJobFields, plainSubmitReply } from "./V0038.js"

// `set` must be true or slurmrestd ignores the number (api-notes §3.1).
const flagged = (n: number) => ({ set: true, infinite: false, number: n })

/** The submit body of v0.0.39 and later, in the shape their OpenAPI schemas declare. */
export const structuredSubmitBody = (spec: JobSpec): Record<string, unknown> => ({
  job: {
    ...commonJobFields(spec),
    script: spec.script,
    environment: Object.entries(spec.environment).map(([k, v]) => `${k}=${v}`),
    time_limit: flagged(spec.timeLimitMinutes),
    ...(spec.memoryPerNodeMb === undefined ? {} : { memory_per_node: flagged(spec.memoryPerNodeMb) }),
    ...spec.extra
  }
})

/** The v0.0.39 dialect. */
export const V0039: Dialect = {
  version: "v0.0.39",
  submitBody: structuredSubmitBody,
  submitReply: plainSubmitReply,
  cancelErrors: (body) => envelopeOf(body).errors
}
