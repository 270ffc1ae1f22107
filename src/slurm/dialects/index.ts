/**
 * Dialects: one module per slurmrestd API version family, mapping JobSpec to that version's
 * request body and reading the answers whose shape depends on the version.
 */
import type { JobSpec } from "../JobSpec.js"
import { type ApiVersion, ApiVersions, type Dialect } from "./Dialect.js"
import { V0038 } from "./V0038.js"
import { V0039 } from "./V0039.js"
import { dataParserDialect } from "./V0040.js"

export { type ApiVersion, ApiVersions, type Dialect } from "./Dialect.js"
export { pingsOf } from "./Envelope.js"
export { jobsOf, ownJobsOf } from "./JobRecord.js"

const dialects: Readonly<Record<ApiVersion, Dialect>> = {
  "v0.0.38": V0038,
  "v0.0.39": V0039,
  "v0.0.40": dataParserDialect("v0.0.40"),
  "v0.0.41": dataParserDialect("v0.0.41"),
  "v0.0.42": dataParserDialect("v0.0.42"),
  "v0.0.43": dataParserDialect("v0.0.43"),
  "v0.0.44": dataParserDialect("v0.0.44"),
  "v0.0.45": dataParserDialect("v0.0.45")
}

/** The dialect of an API version. */
export const dialectFor = (version: ApiVersion): Dialect => dialects[version]

/** True for the versions nsh speaks (e.g. a value of slurm-api-version other than `auto`). */
export const isApiVersion = (s: string): s is ApiVersion => (ApiVersions as ReadonlyArray<string>).includes(s)

/** The exact JSON body of POST /slurm/<version>/job/submit for a spec. */
export const submitBody = (version: ApiVersion, spec: JobSpec): Record<string, unknown> =>
  dialectFor(version).submitBody(spec)
