/**
 * v0.0.40–v0.0.45 (Slurm 23.11–26.05): data_parser with state lists and verbose exit codes. For
 * submit/poll/cancel they differ only in where answers put things: v0.0.40/41 also nest the submit
 * answer in `result`, and from v0.0.42 DELETE reports per-job failures in `status[]` (on 24.11+
 * with HTTP 200 even for an unknown job).
 */
import { Schema } from "effect"
import type { ApiVersion, Dialect } from "./Dialect.js"
import { envelopeOf, type SlurmMessage } from "./Envelope.js"
import { NoValNumber, numberOf, OptionalInt, Text } from "./Fields.js"
import { structuredSubmitBody } from "./V0039.js"

const SubmitBody = Schema.Struct({
  job_id: OptionalInt,
  job_submit_user_msg: Text,
  result: Schema.optionalWith(Schema.Struct({ job_id: OptionalInt, job_submit_user_msg: Text }), { nullable: true })
})

const KillStatus = Schema.Struct({
  status: Schema.optionalWith(
    Schema.Array(
      Schema.Struct({
        error: Schema.optionalWith(Schema.Struct({ code: OptionalInt, string: Text, message: Text }), {
          nullable: true
        }),
        job_id: Schema.optionalWith(NoValNumber, { nullable: true })
      })
    ),
    { nullable: true, default: () => [] }
  )
})

const killFailures = (body: unknown): ReadonlyArray<SlurmMessage> => {
  const decoded = Schema.decodeUnknownOption(KillStatus)(body)
  if (decoded._tag === "None") return []
  return decoded.value.status.flatMap((entry) => {
    const code = entry.error?.code
    if (code === undefined || code === 0) return []
    const job = numberOf(entry.job_id)
    const words = entry.error?.message || entry.error?.string || "signal failed"
    return [{ code, text: `${job === undefined ? "" : `job ${job}: `}${words} (Slurm error ${code})` }]
  })
}

const nonZeroReturn = "Job submission resulted in non-zero return code: "
// ESLURM_REQUESTED_PART_CONFIG_UNAVAILABLE: more than the partition's nodes can give.
const neverRuns = new Set(["Requested partition configuration not available now"])

/** The dialect of one data_parser version from v0.0.40 on. */
export const dataParserDialect = (version: ApiVersion): Dialect => ({
  version,
  submitBody: structuredSubmitBody,
  submitReply: (body) => {
    const { errors, warnings } = envelopeOf(body)
    const reply = Schema.decodeUnknownOption(SubmitBody)(body)
    if (reply._tag === "None") return { jobId: undefined, errors, warnings }
    const { job_id, job_submit_user_msg, result } = reply.value
    const jobId = job_id ?? result?.job_id
    const userMessage = job_submit_user_msg || result?.job_submit_user_msg || ""
    // Slurm 26.05 answers a job slurmctld queued although it can never run (what 22.05 reported
    // as an error, lab 41/42) with errors empty and the reason in a warning: the same case, an
    // error. Other reasons there (a held job, a node down for now) are the job's to wait out.
    const failed = warnings.flatMap((w) =>
      w.startsWith(nonZeroReturn) && neverRuns.has(w.slice(nonZeroReturn.length)) ? [w.slice(nonZeroReturn.length)] : []
    )
    const rest = warnings.filter((w) => !failed.some((f) => w === f || w === nonZeroReturn + f))
    return {
      jobId: jobId !== undefined && jobId > 0 ? jobId : undefined,
      errors: [...errors, ...failed.map((text): SlurmMessage => ({ code: undefined, text }))],
      warnings: userMessage === "" ? rest : [...rest, userMessage]
    }
  },
  cancelErrors: (body) => [...envelopeOf(body).errors, ...killFailures(body)]
})
