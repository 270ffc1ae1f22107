/**
 * What a job observation means for nsh: waiting, stuck, allocated, ending or done (api-notes §9).
 * v0.0.38/39 report a flag *instead of* the base state (COMPLETING hides CANCELLED), so a
 * flag-only observation is never final.
 */
import { type BaseState, BaseStates, type JobInfo, type JobOutcome } from "./JobSpec.js"

/** Base states after which the job never runs again (unless Slurm requeues it): all but the first three. */
const FinalStates: ReadonlySet<BaseState> = new Set(
  BaseStates.filter((state) => state !== "PENDING" && state !== "RUNNING" && state !== "SUSPENDED")
)

/** Flags under which a job with a final base state is still being wound down or requeued. */
const WindingDownFlags = new Set([
  "COMPLETING",
  "STAGE_OUT",
  "SIGNALING",
  "REQUEUED",
  "REQUEUE_FED",
  "REQUEUE_HOLD",
  "SPECIAL_EXIT",
  "RESIZING",
  "EXPEDITING"
])

/** Flags (or v0.0.38/39 states) after which the job waits for a person, not for resources. */
const StuckFlags = new Set(["REQUEUE_HOLD", "SPECIAL_EXIT", "REVOKED"])

/** Flags of a job that was put back in the queue. */
const RequeueFlags = new Set(["REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD"])

/** Flags of an allocation that is not usable yet (nodes booting). */
const StartingFlags = new Set(["CONFIGURING", "POWER_UP_NODE"])

/** Pending reasons that no amount of waiting fixes (slurm job_state_reason.c). */
const HopelessReasons: ReadonlySet<string> = new Set([
  "PartitionConfig",
  "PartitionNodeLimit",
  "PartitionTimeLimit",
  "ReqNodeNotAvail",
  "BadConstraints",
  "DependencyNeverSatisfied",
  "InvalidAccount",
  "InvalidQOS",
  "QOSNotAllowed",
  "AccountNotAllowed",
  "JobHeldAdmin"
])

/** Where a job is, from nsh's point of view. */
export type JobPhase =
  | { readonly _tag: "Waiting" }
  | { readonly _tag: "Stuck"; readonly why: string }
  | { readonly _tag: "Allocated"; readonly batchHost: string }
  | { readonly _tag: "Ending" }
  | { readonly _tag: "Done"; readonly outcome: JobOutcome }

/** The outcome of a job whose base state is final. */
export const outcomeOf = (state: BaseState, info: JobInfo): JobOutcome | undefined => {
  const reason = info.reason
  switch (state) {
    case "COMPLETED":
      return info.exit === undefined || (info.exit._tag === "Exited" && info.exit.code === 0)
        ? { _tag: "Succeeded" }
        : { _tag: "Failed", exit: info.exit, reason }
    case "FAILED":
      return { _tag: "Failed", exit: info.exit, reason }
    case "CANCELLED":
      return { _tag: "Cancelled", reason }
    case "TIMEOUT":
      return { _tag: "TimedOut", reason }
    case "OUT_OF_MEMORY":
      return { _tag: "OutOfMemory", reason }
    case "NODE_FAIL":
    case "PREEMPTED":
    case "BOOT_FAIL":
      return { _tag: "Retryable", state, reason }
    case "DEADLINE":
      return { _tag: "Deadline", reason }
    default:
      return undefined
  }
}

/** The phase of one observation. */
export const phaseOf = (info: JobInfo): JobPhase => {
  const { state, flags } = info
  const stuckFlag = flags.find((f) => StuckFlags.has(f))
  if (stuckFlag !== undefined) return { _tag: "Stuck", why: stuckFlag }
  if (state !== undefined && FinalStates.has(state)) {
    const outcome = outcomeOf(state, info)
    return outcome !== undefined && !flags.some((f) => WindingDownFlags.has(f))
      ? { _tag: "Done", outcome }
      : { _tag: "Ending" }
  }
  if (state === "PENDING" && HopelessReasons.has(info.reason)) return { _tag: "Stuck", why: info.reason }
  if (state === "RUNNING" && info.batchHost !== "" && !flags.some((f) => StartingFlags.has(f))) {
    return { _tag: "Allocated", batchHost: info.batchHost }
  }
  // A flag reported instead of the base state while the job winds down (v0.0.38/39).
  if (state === undefined && flags.some((f) => WindingDownFlags.has(f) && !RequeueFlags.has(f))) {
    return { _tag: "Ending" }
  }
  return { _tag: "Waiting" }
}

/** True when the observation shows the job was put back in the queue. */
export const isRequeued = (info: JobInfo): boolean => info.flags.some((f) => RequeueFlags.has(f))

const clock = (epochSeconds: number): string =>
  new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC"

/** The state as a person reads it: `PENDING (Resources), expected start 2026-01-01 10:00:00 UTC`. */
export const describeState = (info: JobInfo, nowSeconds: number): string => {
  const reason = info.reason !== "" && info.reason !== "None" ? ` (${info.reason})` : ""
  const expected = info.state === "PENDING" && info.startTime > nowSeconds
    ? `, expected start ${clock(info.startTime)}`
    : ""
  return `${info.rawState}${reason}${expected}`
}
