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

/**
 * The per-job limits of an association or QOS, as Slurm names them (job_state_reason_string): "The
 * CPU request exceeds the maximum each job is allowed to use for the requested QOS", "The request
 * exceeds the maximum number of CPUs each node in a job allocation is allowed to use …", "The limit
 * on the amount of wall time a job can request has been exceeded …", "The CPU request does not meet
 * the minimum each job is allowed to use …". The job's own request is out of bounds: other jobs
 * ending changes nothing. (Aggregate `Grp` limits and per-user limits are waited on.)
 */
const PerJobLimits: ReadonlyArray<string> = [
  ...["Assoc", "QOS"].flatMap((of) => [
    `${of}MaxBBMinutesPerJob`,
    `${of}MaxBBPerJob`,
    `${of}MaxBBPerNode`,
    `${of}MaxBillingMinutesPerJob`,
    `${of}MaxBillingPerJob`,
    `${of}MaxBillingPerNode`,
    `${of}MaxCpuMinutesPerJobLimit`,
    `${of}MaxCpuPerJobLimit`,
    `${of}MaxCpuPerNode`,
    `${of}MaxEnergyMinutesPerJob`,
    `${of}MaxEnergyPerJob`,
    `${of}MaxEnergyPerNode`,
    `${of}MaxGRESMinutesPerJob`,
    `${of}MaxGRESPerJob`,
    `${of}MaxGRESPerNode`,
    `${of}MaxLicenseMinutesPerJob`,
    `${of}MaxLicensePerJob`,
    `${of}MaxNodeMinutesPerJob`,
    `${of}MaxNodePerJobLimit`,
    `${of}MaxUnknownMinutesPerJob`,
    `${of}MaxUnknownPerJob`,
    `${of}MaxUnknownPerNode`,
    `${of}MaxWallDurationPerJobLimit`
  ]),
  "AssocMaxMemMinutesPerJob",
  "AssocMaxMemPerJob",
  "AssocMaxMemPerNode",
  "QOSMaxMemoryMinutesPerJob",
  "QOSMaxMemoryPerJob",
  "QOSMaxMemoryPerNode",
  ...["BB", "Billing", "CpuNotSatisfied", "Energy", "GRES", "License", "Memory", "Node", "Unknown"].map((r) =>
    `QOSMin${r}`
  )
]

/**
 * Pending reasons that waiting can never resolve, in the words of Slurm's documentation
 * (doc/html/job_reason_codes.shtml). Every other reason is waited on and shown, notably
 * ReqNodeNotAvail ("Some node specifically required by the job is not currently available. The
 * node may currently be in use, reserved for another job, in an advanced reservation, DOWN,
 * DRAINED, or not responding": a job overlapping a maintenance reservation starts after it),
 * PartitionNodeLimit ("Can also indicate that required nodes are DOWN or DRAINED"), NodeDown,
 * PartitionDown, PartitionInactive, and JobHeldAdmin / JobHeldUser (someone may release the hold).
 */
const HopelessReasons: ReadonlySet<string> = new Set([
  // "The job's requirements cannot be satisfied. Used in cases when the job is never expected to be runnable".
  "BadConstraints",
  // "This job has a dependency on another job that will never be satisfied."
  "DependencyNeverSatisfied",
  // "The job requested a reservation that is no longer on the system."
  "ReservationDeleted",
  // "The job's account is invalid." / "The job's QOS is invalid."
  "InvalidAccount",
  "InvalidQOS",
  // "Job is in an account not allowed in a partition."
  "AccountNotAllowed",
  // "The job requests a QOS is not allowed by the requested association or partition."
  "QOSNotAllowed",
  // "Fallback reason when the job violates some limit on the partition" (e.g. more CPUs than its nodes have).
  "PartitionConfig",
  // "The job's time limit exceeds its partition's current time limit."
  "PartitionTimeLimit",
  // "The job violates the limit on the maximum amount of Memory per-CPU or per-Node."
  "MaxMemPerLimit",
  ...PerJobLimits
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
