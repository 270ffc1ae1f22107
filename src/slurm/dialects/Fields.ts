/**
 * Lenient codecs for the slurmrestd fields nsh reads. Real bodies break their own OpenAPI schema
 * (null for unset, ints where strings are declared), and clients that accepted only one shape of
 * `job_state` broke when it changed from string to list (api-notes §12), so each codec takes
 * every shape any version sends.
 */
import { Schema } from "effect"
import { type BaseState, BaseStates, type ExitStatus } from "../JobSpec.js"

/** A string that real bodies sometimes send as null or leave out ("" then). */
export const Text = Schema.optionalWith(Schema.String, { nullable: true, default: () => "" })

/** An integer that may be null or absent. */
export const OptionalInt = Schema.optionalWith(Schema.Number, { nullable: true })

/** Slurm's "number with flags" (v0.0.39+): only `set` and not `infinite` makes `number` mean anything. */
const NoValStruct = Schema.Struct({
  set: Schema.optionalWith(Schema.Boolean, { nullable: true }),
  infinite: Schema.optionalWith(Schema.Boolean, { nullable: true }),
  number: OptionalInt
})

/** A plain number (v0.0.38) or a number with flags (v0.0.39+). */
export const NoValNumber = Schema.Union(Schema.Number, NoValStruct)

/** The value of a plain or flagged number; undefined when unset or infinite. */
export const numberOf = (value: typeof NoValNumber.Type | undefined): number | undefined => {
  if (value === undefined || typeof value === "number") return value
  return value.set !== false && value.infinite !== true ? value.number : undefined
}

/** `job_state`: one string (v0.0.38/39, a flag replacing the base) or base + flags (v0.0.40+). */
export const JobState = Schema.Union(Schema.String, Schema.Array(Schema.String))

const isBaseState = (s: string): s is BaseState => (BaseStates as ReadonlyArray<string>).includes(s)

/** Splits a reported state into Slurm's base state (when present) and the flags. */
export const splitState = (
  value: typeof JobState.Type | undefined
): { readonly state: BaseState | undefined; readonly flags: ReadonlyArray<string>; readonly rawState: string } => {
  const parts = value === undefined ? [] : typeof value === "string" ? [value] : value
  return {
    state: parts.find(isBaseState),
    flags: parts.filter((s) => !isBaseState(s)),
    rawState: parts.length > 0 ? parts.join(",") : "UNKNOWN"
  }
}

/** v0.0.40+ `process_exit_code_verbose`. */
const VerboseExit = Schema.Struct({
  status: Schema.Array(Schema.String),
  return_code: Schema.optionalWith(NoValNumber, { nullable: true }),
  signal: Schema.optionalWith(
    Schema.Struct({ id: Schema.optionalWith(NoValNumber, { nullable: true }) }),
    { nullable: true }
  )
})

/** `exit_code`: a raw wait status as int (v0.0.38) or flagged number (v0.0.39), or the verbose object (v0.0.40+). */
export const ExitCode = Schema.Union(Schema.Number, VerboseExit, NoValStruct)

const fromWaitStatus = (status: number): ExitStatus =>
  (status & 0x7f) === 0 ? { _tag: "Exited", code: (status >> 8) & 0xff } : { _tag: "Signaled", signal: status & 0x7f }

/** How the process ended; undefined while Slurm does not know (yet). */
export const exitOf = (value: typeof ExitCode.Type | undefined): ExitStatus | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "number") return fromWaitStatus(value)
  if ("status" in value) {
    if (value.status.includes("SIGNALED") || value.status.includes("CORE_DUMPED")) {
      const signal = numberOf(value.signal?.id)
      return signal === undefined ? undefined : { _tag: "Signaled", signal }
    }
    if (value.status.includes("SUCCESS") || value.status.includes("ERROR")) {
      return { _tag: "Exited", code: numberOf(value.return_code) ?? 0 }
    }
    return undefined
  }
  const status = numberOf(value)
  return status === undefined ? undefined : fromWaitStatus(status)
}
