/**
 * The Slurm job nsh submits for one derivation.
 *
 * Precedence of job fields, lowest first: nsh's base job < the job fields nsh.conf's
 * `slurm-feature-params` gives the features the derivation requires < the derivation's
 * `extraSlurmParams` < nsh.conf's `slurm-extra-submission-params`. The extras are merged shallowly into
 * `JobSpec.extra`, which the dialects spread over the base fields: a key there replaces the
 * base field of the same name in the request body (e.g. `time_limit`). Two fields are nsh's and
 * only added to: `environment` (entries merged into nsh's) and `comment` (after nsh's tag). The
 * fields the job protocol depends on (`script`, the output files) are refused from every source,
 * and a derivation may set only the keys of `slurm-derivation-params` (DerivationParams.ts).
 */
import { Data, Either } from "effect"
import type { Settings } from "../config/Settings.js"
import type { BuildOptions } from "../dispatch/BuildOptions.js"
import type { ApiVersion } from "../slurm/dialects/index.js"
import type { JobSpec } from "../slurm/JobSpec.js"
import { type Derivation, derivationName, requiredSystemFeatures } from "../store/Derivation.js"
import { isJsonObject, type JsonObject } from "../util/Json.js"
import { derivationParamsProblem, environmentEntries } from "./DerivationParams.js"
import { type ExtraSlurmParamsError, extraSlurmParamsOf } from "./ExtraParams.js"
import { jobFiles } from "./JobFiles.js"
import { jobScript } from "./JobScript.js"
import { jobComment, type JobIds } from "./JobTag.js"

/** Minutes added to Nix's `timeout` for copying inputs in and outputs out within the job. */
export const CopyMarginMinutes = 10

/** The largest time limit nsh sends (one year), also the bound of slurm-default-time-limit. */
export const MaxTimeLimitMinutes = 525600

/** Where the job's PATH looks for programs after remote-nix-bin-dir (NixOS first). */
export const JobPath = "/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin"

/** `job` fields the job protocol relies on: the script, the log in standard_output. */
const ProtocolFields = ["script", "standard_output", "standard_error"]

/** The job nsh would submit is not acceptable (a bad time limit, a protocol field overridden, a field a derivation may not set). */
export class JobSpecError extends Data.TaggedError("JobSpecError")<{
  readonly drvPath: string
  readonly reason: string
}> {
  override get message() {
    return `cannot submit ${this.drvPath}: ${this.reason}`
  }
}

/** Why nsh will not submit a job for a derivation. */
export type SubmissionError = ExtraSlurmParamsError | JobSpecError

/** `nix-build-<name>` with only characters every Slurm tool shows plainly, at most 100 long. */
export const jobName = (drv: Derivation): string =>
  `nix-build-${derivationName(drv)}`.replace(/[^A-Za-z0-9._+-]/g, "_").slice(0, 100)

/** A file name for Slurm's standard_output, which expands `%x` patterns unless it holds a `\`. */
const slurmFileName = (path: string): string =>
  path.includes("\\") ? path.replace(/\\/g, "\\\\") : path.replace(/%/g, "%%")

const WholeMinutes = `must be a whole number of minutes from 1 to ${MaxTimeLimitMinutes}`

const timeLimitProblem = (minutes: unknown): string | undefined =>
  typeof minutes === "number" && Number.isInteger(minutes) && minutes >= 1 && minutes <= MaxTimeLimitMinutes
    ? undefined
    : WholeMinutes

/** Checks the time limit the request body will carry, whoever set it. */
const checkTimeLimit = (
  drvPath: string,
  base: number,
  timeout: number,
  extra: JsonObject
): Either.Either<void, JobSpecError> => {
  const fail = (reason: string) => Either.left(new JobSpecError({ drvPath, reason }))
  const given = extra["time_limit"]
  if (given === undefined) {
    const problem = timeLimitProblem(base)
    if (problem === undefined) return Either.void
    return fail(
      timeout > 0
        ? `Nix's timeout of ${timeout} s gives a Slurm time limit of ${base} minutes, which ${problem} (lower the timeout)`
        : `slurm-default-time-limit ${base} ${problem}`
    )
  }
  // The later API versions write numbers as {set, infinite, number}; nsh always bounds a job.
  const minutes = isJsonObject(given) && given["set"] === true && given["infinite"] !== true ? given["number"] : given
  const problem = timeLimitProblem(minutes)
  return problem === undefined
    ? Either.void
    : fail(`the time_limit ${JSON.stringify(given)} from the extra Slurm parameters ${problem}`)
}

const checkProtocolFields = (drvPath: string, extra: JsonObject, source: string): Either.Either<void, JobSpecError> => {
  const clash = ProtocolFields.find((key) => Object.hasOwn(extra, key))
  return clash === undefined
    ? Either.void
    : Either.left(
      new JobSpecError({
        drvPath,
        reason: `${source} sets "${clash}", which nsh sets itself (its job protocol depends on it); remove it`
      })
    )
}

/** Who set a field of the job's extras, for `--dry-run`. */
export type ExtraSource =
  | { readonly _tag: "feature"; readonly feature: string }
  | { readonly _tag: "derivation" }
  | { readonly _tag: "conf" }

/** The merged extra job fields and, for each, the source whose value won. */
export interface MergedExtras {
  /** Every field but `environment` and `comment`, which are nsh's and only added to. */
  readonly extra: JsonObject
  /** For `environment`: the last source that added entries; for `comment`: the one that won. */
  readonly sources: Readonly<Record<string, ExtraSource>>
  /** Entries merged into nsh's environment, later sources winning. */
  readonly environment: Readonly<Record<string, string>>
  /** The comment that follows nsh's tag ("" = none). */
  readonly comment: string
}

const describeSource = (source: ExtraSource): string =>
  source._tag === "feature"
    ? `slurm-feature-params for "${source.feature}" in nsh.conf`
    : source._tag === "derivation"
    ? "the derivation's extraSlurmParams"
    : "slurm-extra-submission-params in nsh.conf"

/**
 * The extra job fields of `drv` for the API version `version`, merged lowest first: the params of
 * each feature it requires (alphabetically), its extraSlurmParams (only the keys
 * slurm-derivation-params allows), slurm-extra-submission-params.
 */
export const mergedExtras = (
  drv: Derivation,
  settings: Settings,
  version: ApiVersion
): Either.Either<MergedExtras, SubmissionError> =>
  Either.gen(function*() {
    const fail = (reason: string) => Either.left(new JobSpecError({ drvPath: drv.drvPath, reason }))
    const features = requiredSystemFeatures(drv).flatMap((feature) => {
      const params = settings.slurmFeatureParams[feature]
      return params === undefined ? [] : [{ source: { _tag: "feature", feature } as const, params }]
    })
    const fromDrv = yield* extraSlurmParamsOf(drv)
    const layers: ReadonlyArray<{ readonly source: ExtraSource; readonly params: JsonObject }> = [
      ...features,
      { source: { _tag: "derivation" }, params: fromDrv },
      { source: { _tag: "conf" }, params: settings.slurmExtraSubmissionParams }
    ]
    for (const { params, source } of layers) {
      yield* checkProtocolFields(drv.drvPath, params, describeSource(source))
    }
    const refused = derivationParamsProblem(fromDrv, version, settings.slurmDerivationParams)
    if (refused !== undefined) return yield* fail(refused)
    const extra: Record<string, unknown> = {}
    const sources: Record<string, ExtraSource> = {}
    const environment: Record<string, string> = {}
    let comment = ""
    for (const { params, source } of layers) {
      for (const [key, value] of Object.entries(params)) {
        if (key === "environment") {
          const entries = environmentEntries(value)
          if (typeof entries === "string") return yield* fail(`${describeSource(source)}: ${entries}`)
          Object.assign(environment, entries)
        } else if (key === "comment") {
          if (typeof value !== "string") {
            return yield* fail(`${describeSource(source)} sets "comment" to ${JSON.stringify(value)}, not a string`)
          }
          comment = value
        } else {
          extra[key] = value
        }
        sources[key] = source
      }
    }
    return { extra, sources, environment, comment }
  })

/** The job for building `drv`: base fields, the script, and the extras merged (mergedExtras). */
export const jobSpecFor = (
  drv: Derivation,
  settings: Settings,
  options: BuildOptions,
  ids: JobIds,
  version: ApiVersion
): Either.Either<JobSpec, SubmissionError> =>
  Either.gen(function*() {
    const { comment, environment, extra } = yield* mergedExtras(drv, settings, version)
    const timeLimitMinutes = options.timeout > 0
      ? Math.ceil(options.timeout / 60) + CopyMarginMinutes
      : settings.slurmDefaultTimeLimit
    yield* checkTimeLimit(drv.drvPath, timeLimitMinutes, options.timeout, extra)
    return {
      name: jobName(drv),
      comment: jobComment(ids.tag, drv.drvPath, comment),
      script: jobScript(drv.drvPath, settings, options, ids),
      // Mandatory since Slurm 23.11; /tmp exists on every node.
      currentWorkingDirectory: "/tmp",
      environment: {
        PATH: settings.remoteNixBinDir === "" ? JobPath : `${settings.remoteNixBinDir}:${JobPath}`,
        // Slurm sets no HOME for a job submitted this way; nix-store keeps its caches there, and
        // the state directory is the one per-user directory known to exist on the node.
        HOME: settings.slurmStateDir,
        NSH_TAG: ids.tag,
        ...environment
      },
      // No standard_error: Slurm then writes both streams into this one file, the build log.
      standardOutput: slurmFileName(jobFiles(settings.slurmStateDir, ids.tag).log),
      timeLimitMinutes,
      extra
    }
  })
