/**
 * Dialects: one module per slurmrestd API version family, mapping JobSpec/JobInfo to and from
 * that version's JSON. (Skeleton: only the request body, in the shape every version accepts.)
 */
import type { JobSpec } from "../JobSpec.js"

/** The API versions nsh speaks, oldest first. */
export const ApiVersions = ["v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"] as const
export type ApiVersion = (typeof ApiVersions)[number]

/** The exact JSON body of POST /slurm/<version>/job/submit for a spec. */
export const submitBody = (_version: ApiVersion, spec: JobSpec): Record<string, unknown> => ({
  script: spec.script,
  job: {
    name: spec.name,
    comment: spec.comment,
    current_working_directory: spec.currentWorkingDirectory,
    environment: spec.environment,
    standard_output: spec.standardOutput,
    ...(spec.standardError === undefined ? {} : { standard_error: spec.standardError }),
    time_limit: spec.timeLimitMinutes,
    ...(spec.cpusPerTask === undefined ? {} : { cpus_per_task: spec.cpusPerTask }),
    ...(spec.memoryPerNodeMb === undefined ? {} : { memory_per_node: spec.memoryPerNodeMb }),
    ...(spec.partition === undefined ? {} : { partition: spec.partition }),
    ...spec.extra
  }
})
