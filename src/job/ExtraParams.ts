/**
 * A derivation's `extraSlurmParams`: slurmrestd `job` fields the derivation asks for (partition,
 * cpus_per_task, memory_per_node, ...), written as a JSON object.
 */
import { Data, Either } from "effect"
import type { Derivation } from "../store/Derivation.js"
import { decodeJsonObject, isJsonObject, type JsonObject } from "../util/Json.js"

/** The derivation's extraSlurmParams is not a JSON object. */
export class ExtraSlurmParamsError extends Data.TaggedError("ExtraSlurmParamsError")<{
  readonly drvPath: string
  readonly problem: string
}> {
  override get message() {
    return `the extraSlurmParams of ${this.drvPath} is not usable: ${this.problem}. It must be a JSON object of slurmrestd job fields, e.g. extraSlurmParams = builtins.toJSON { cpus_per_task = 4; partition = "debug"; }`
  }
}

const describe = (value: unknown): string =>
  Array.isArray(value) ? "a list" : `a ${typeof value} (${JSON.stringify(value)})`

const fromText = (drvPath: string, text: string): Either.Either<JsonObject, ExtraSlurmParamsError> =>
  decodeJsonObject(text).pipe(
    Either.mapLeft(
      (problem) =>
        new ExtraSlurmParamsError({
          drvPath,
          problem: text.trimStart().startsWith("-")
            ? `${JSON.stringify(text)} looks like sbatch command-line options, which nsh does not read (${problem})`
            : `${JSON.stringify(text)} is not a JSON object (${problem})`
        })
    )
  )

/**
 * The fields the derivation asks for: from structured attrs (a JSON string or an attribute set)
 * or from the `extraSlurmParams` environment variable (a JSON string). None: an empty object.
 */
export const extraSlurmParamsOf = (drv: Derivation): Either.Either<JsonObject, ExtraSlurmParamsError> => {
  // Without structured attrs Nix turns null/false into "", so "" means "not set" too.
  const raw: unknown = drv.structuredAttrs === undefined
    ? drv.env["extraSlurmParams"]
    : drv.structuredAttrs["extraSlurmParams"]
  if (raw === undefined || raw === null || raw === "") return Either.right({})
  if (typeof raw === "string") return fromText(drv.drvPath, raw)
  if (isJsonObject(raw)) return Either.right(raw)
  return Either.left(
    new ExtraSlurmParamsError({ drvPath: drv.drvPath, problem: `it is ${describe(raw)}, not a JSON object` })
  )
}
