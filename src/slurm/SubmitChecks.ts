/**
 * Values nsh refuses to send: slurmrestd accepts some of them silently (a time limit of -5 became
 * TimeLimit=2982611-04:17:00 in the lab), so they are checked before the request.
 */
import { Either } from "effect"
import type { JobSpec } from "./JobSpec.js"
import { SlurmInvalidSubmission } from "./SlurmErrors.js"

const positiveInt = (n: unknown): boolean => typeof n === "number" && Number.isInteger(n) && n >= 1

// `extra` may restate a number in either shape: plain (v0.0.38) or {set, number} (later versions).
const extraNumber = (value: unknown): unknown =>
  typeof value === "object" && value !== null && "number" in value ? (value as { number: unknown }).number : value

/** The spec, or every reason it cannot be right. */
export const checkSubmission = (spec: JobSpec): Either.Either<JobSpec, SlurmInvalidSubmission> => {
  const problems: Array<string> = []
  const number = (label: string, value: unknown, unit: string) => {
    if (value !== undefined && !positiveInt(value)) {
      problems.push(`${label} is ${JSON.stringify(value)}, but must be a whole number of ${unit} of at least 1`)
    }
  }
  number("the time limit", spec.timeLimitMinutes, "minutes")
  number("the extra time_limit", extraNumber(spec.extra["time_limit"]), "minutes")
  number("cpus_per_task", spec.cpusPerTask, "CPUs")
  number("memory_per_node", spec.memoryPerNodeMb, "megabytes")
  if (spec.script.trim() === "") problems.push("the job script is empty")
  if (!spec.currentWorkingDirectory.startsWith("/")) {
    problems.push(`the working directory ${JSON.stringify(spec.currentWorkingDirectory)} is not an absolute path`)
  }
  return problems.length === 0
    ? Either.right(spec)
    : Either.left(new SlurmInvalidSubmission({ jobName: spec.name, problems }))
}
