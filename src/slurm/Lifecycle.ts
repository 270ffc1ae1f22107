/**
 * Following a submitted job until it has an allocation or has ended, by polling GET /job/{id}:
 * fast right after submit (a trivial job starts within ~1 s on slurmctld's scheduling tick) and
 * slower later, so a long build costs one request per 2 s at most.
 */
import { Clock, Duration, Effect, Option, Schedule } from "effect"
import type { JobInfo, JobOutcome } from "./JobSpec.js"
import { isRequeued, type JobPhase, phaseOf } from "./JobStates.js"
import { SlurmApi } from "./SlurmApi.js"
import type { SlurmError } from "./SlurmErrors.js"

/** Delays between polls: 50 ms, then ×1.5 each time (75, 112, 169 ms, …), at most 2 s. */
export const pollSchedule: Schedule.Schedule<Duration.Duration> = Schedule.exponential("50 millis", 1.5).pipe(
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(2)))
)

/** How to poll (defaults: `pollSchedule`, tolerate 2 minutes of slurmrestd being unreachable). */
export interface PollOptions {
  readonly schedule?: Schedule.Schedule<unknown, unknown>
  /**
   * How long polls may keep failing with SlurmUnreachable (a slurmrestd restart), or with a
   * rejected token from a file nsh reads again at each poll (being renewed), before giving up.
   */
  readonly outageTolerance?: Duration.DurationInput
}

/** A failure a later poll may not meet: slurmrestd away, or an expired token whose file is being renewed. */
const isOutage = (error: SlurmError): boolean =>
  error._tag === "SlurmUnreachable" || (error._tag === "SlurmAuthError" && error.renewable === true)

/** Told of every observation of a job still waiting in the queue (the caller shows it to the user). */
export type OnQueued = (info: JobInfo) => Effect.Effect<void>

/** How waiting for an allocation ended. `polls` counts GET /job requests. */
export type Allocation =
  | { readonly _tag: "Allocated"; readonly batchHost: string; readonly info: JobInfo; readonly polls: number }
  /** The job ended before nsh saw it running (a very short job, or cancelled by someone). */
  | { readonly _tag: "Ended"; readonly outcome: JobOutcome; readonly info: JobInfo; readonly polls: number }
  /** It will not start by itself (PartitionConfig, held by an admin, ...): nsh should cancel it. */
  | { readonly _tag: "Stuck"; readonly why: string; readonly info: JobInfo; readonly polls: number }

/** How a job ended. `polls` counts GET /job requests. */
export interface JobEnd {
  readonly outcome: JobOutcome
  readonly info: JobInfo
  readonly polls: number
}

/**
 * Polls `jobId` until `decide` has an answer, passing the other observations to `observe`. The
 * schedule restarts when the job starts winding down (COMPLETING), so its end is seen within
 * ~50 ms rather than one long delay later.
 */
const watch = <A>(
  jobId: number,
  options: PollOptions,
  decide: (info: JobInfo, phase: JobPhase) => Option.Option<A>,
  observe: (info: JobInfo) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<{ readonly result: A; readonly polls: number }, SlurmError, SlurmApi> =>
  Effect.gen(function*() {
    const api = yield* SlurmApi
    const driver = yield* Schedule.driver(options.schedule ?? pollSchedule)
    const tolerance = Duration.toMillis(options.outageTolerance ?? "2 minutes")
    // A caller's finite schedule starts over rather than ending the wait.
    const wait = driver.next(undefined).pipe(Effect.catchAll(() => driver.reset))
    let polls = 0
    let lastTag = ""
    let outageSince: number | undefined
    while (true) {
      polls++
      const observed = yield* Effect.either(api.getJob(jobId))
      if (observed._tag === "Left") {
        const now = yield* Clock.currentTimeMillis
        outageSince ??= now
        if (!isOutage(observed.left) || now - outageSince >= tolerance) return yield* observed.left
        yield* wait
        continue
      }
      outageSince = undefined
      const info = observed.right
      const phase = phaseOf(info)
      const answer = decide(info, phase)
      if (Option.isSome(answer)) return { result: answer.value, polls }
      yield* observe(info)
      if (phase._tag === "Ending" && lastTag !== "Ending") yield* driver.reset
      lastTag = phase._tag
      yield* wait
    }
  })

/**
 * Waits until the job runs with a known batch host, has ended, or cannot start, telling `onQueued`
 * of each observation while it waits (`PENDING (Resources)`, expected start).
 */
export const waitForAllocation = (
  jobId: number,
  options: PollOptions & { readonly onQueued?: OnQueued } = {}
): Effect.Effect<Allocation, SlurmError, SlurmApi> =>
  Effect.gen(function*() {
    const { polls, result } = yield* watch(
      jobId,
      options,
      (info, phase): Option.Option<(polls: number) => Allocation> => {
        switch (phase._tag) {
          case "Allocated":
            return Option.some((polls) => ({ _tag: "Allocated", batchHost: phase.batchHost, info, polls }))
          case "Done":
            return Option.some((polls) => ({ _tag: "Ended", outcome: phase.outcome, info, polls }))
          case "Stuck":
            return Option.some((polls) => ({ _tag: "Stuck", why: phase.why, info, polls }))
          default:
            return Option.none()
        }
      },
      options.onQueued
    )
    return result(polls)
  })

/**
 * Waits until the job has ended, through COMPLETING. A requeue (node failure, preemption) ends
 * the wait too, as Retryable: the attempt nsh was following is gone. Meant for a job that has
 * started (after `waitForAllocation`): a job stuck in the queue is not reported here.
 */
export const waitForEnd = (
  jobId: number,
  options: PollOptions & {
    /** The restart count when the job was seen allocated: a requeue since (before this wait, too) ends it. */
    readonly restartCount?: number
  } = {}
): Effect.Effect<JobEnd, SlurmError, SlurmApi> =>
  Effect.gen(function*() {
    let firstRestarts = options.restartCount
    const { polls, result } = yield* watch(jobId, options, (info, phase) => {
      firstRestarts ??= info.restartCount
      if (phase._tag === "Done") return Option.some({ outcome: phase.outcome, info })
      if (isRequeued(info) || info.restartCount > firstRestarts) {
        const outcome: JobOutcome = { _tag: "Retryable", state: "REQUEUED", reason: info.reason }
        return Option.some({ outcome, info })
      }
      return Option.none()
    })
    return { ...result, polls }
  })
