/**
 * What the watchdog does when its hook vanished without saying `finished`: cancel the job (found by
 * its tag when the hook died before learning the id), wait for it to end, delete its files on the
 * node, and only when all that worked, the hook's journal entry (else `nsh cancel --orphans`
 * finds it later).
 */
import { Data, Duration, Effect, Option, Schedule } from "effect"
import { hasTag } from "../job/JobTag.js"
import { defaultHttpOptions } from "../slurm/http/SlurmHttp.js"
import { phaseOf } from "../slurm/JobStates.js"
import { SlurmApi, type SlurmApiService } from "../slurm/SlurmApi.js"
import type { SlurmError } from "../slurm/SlurmErrors.js"
import { FileRemover } from "./FileRemover.js"
import type { Abandoned } from "./WatchdogProtocol.js"

/** Timing of the clean-up. */
export interface AbandonOptions {
  /** With no job id from the hook, how long to keep looking for the tag: a submit in flight may still land. */
  readonly lookupFor: Duration.DurationInput
  /** Delays between tries of a cancel or a removal; bounds how long the watchdog keeps at it. */
  readonly retry: Schedule.Schedule<unknown, unknown>
  /** How long to wait for a cancelled job to end before deleting its files anyway. */
  readonly endWait: Duration.DurationInput
  /** Delay between two looks at a cancelled job. */
  readonly pollEvery: Duration.DurationInput
  /** Delay between two looks at the job list for an unreported job: slurmrestd reads the whole cluster's. */
  readonly lookupEvery: Duration.DurationInput
}

/**
 * How long a job may still appear after the hook let go of its submission without a job id: the
 * submit's request may be in flight for up to the request timeout, then the hook looks for a lost
 * answer's job (as long again) instead of sending it twice, and slurmctld may be slow to queue it.
 */
export const submitLandingWindow: Duration.Duration = Duration.times(
  Duration.decode(defaultHttpOptions.requestTimeout),
  3
)

/** Tries for ~30 s, 0.5 s then doubling up to 5 s apart; looks for an unreported job for `submitLandingWindow`. */
export const defaultAbandonOptions: AbandonOptions = {
  lookupFor: submitLandingWindow,
  retry: Schedule.exponential("500 millis").pipe(
    Schedule.union(Schedule.spaced("5 seconds")),
    Schedule.upTo("30 seconds")
  ),
  endWait: "60 seconds",
  pollEvery: "500 millis",
  lookupEvery: "2 seconds"
}

/** What was done, for the tests (the watchdog has nobody to tell). */
export interface AbandonReport {
  /** The jobs cancelled (already-ended ones included: cancelling is idempotent). */
  readonly cancelled: ReadonlyArray<number>
  /** Where the job ran, if it did. */
  readonly node: Option.Option<string>
  /** What could not be done, worded; empty means everything is gone, the journal entry included. */
  readonly problems: ReadonlyArray<string>
}

class NotQueuedYet extends Data.TaggedError("NotQueuedYet")<{}> {}

/** The submission's jobs, looked up by tag for `lookupFor` (none found means nothing was queued). */
const findByTag = (api: SlurmApiService, tag: string, options: AbandonOptions) =>
  api.listJobs.pipe(
    Effect.map((jobs) => jobs.filter(hasTag(tag)).map((job) => job.jobId)),
    Effect.filterOrFail((ids) => ids.length > 0, () => new NotQueuedYet()),
    Effect.retry(Schedule.spaced(options.lookupEvery).pipe(Schedule.upTo(options.lookupFor))),
    Effect.catchTag("NotQueuedYet", () => Effect.succeed<ReadonlyArray<number>>([]))
  )

interface Look {
  readonly done: boolean
  readonly host: string
}

/** Polls a cancelled job until it has ended (or `endWait` passed): its batch host, "" if it never ran. */
const ended = (api: SlurmApiService, jobId: number, options: AbandonOptions): Effect.Effect<Option.Option<string>> => {
  const look: Effect.Effect<Look, SlurmError> = api.getJob(jobId).pipe(
    Effect.map((info) => ({ done: phaseOf(info)._tag === "Done", host: info.batchHost })),
    Effect.catchTag("SlurmJobNotFound", () => Effect.succeed({ done: true, host: "" }))
  )
  return Effect.repeat(look, Schedule.recurUntil((s: Look) => s.done).pipe(Schedule.addDelay(() => options.pollEvery)))
    .pipe(
      Effect.timeoutOption(options.endWait),
      Effect.map(Option.map((s) => s.host)),
      Effect.orElseSucceed(() => Option.none<string>())
    )
}

/** Cancels and removes everything of an abandoned submission; never fails, reports instead. */
export const abandon = (
  plan: Abandoned,
  options: AbandonOptions = defaultAbandonOptions
): Effect.Effect<AbandonReport, never, SlurmApi | FileRemover> =>
  Effect.gen(function*() {
    const api = yield* SlurmApi
    const remover = yield* FileRemover
    const { start } = plan
    const problems: Array<string> = []

    const lookup: Effect.Effect<ReadonlyArray<number>, SlurmError> = Option.isSome(plan.jobId)
      ? Effect.succeed([plan.jobId.value])
      : findByTag(api, start.tag, options)
    const jobs = yield* lookup.pipe(
      Effect.catchAll((e) => {
        problems.push(`could not look for the job tagged ${start.tag}: ${e.message}`)
        return Effect.succeed<ReadonlyArray<number>>([])
      })
    )

    const cancelled: Array<number> = []
    for (const jobId of jobs) {
      const outcome = yield* Effect.either(Effect.retry(api.cancel(jobId), options.retry))
      if (outcome._tag === "Left") problems.push(`could not cancel job ${jobId}: ${outcome.left.message}`)
      else cancelled.push(jobId)
    }

    // Files go once the job script is dead (a dying build could still add its GC root); if the cancel
    // failed they go anyway: its lease goes stale all the same, and the job gives up by itself.
    let node = plan.node
    for (const jobId of cancelled) {
      const host = yield* ended(api, jobId, options)
      if (Option.isNone(node) && Option.isSome(host) && host.value !== "") node = host
    }

    if (Option.isSome(node) && start.nodeFiles.length > 0) {
      const removed = yield* Effect.either(
        Effect.retry(remover.removeOnNode(node.value, start.nodeFiles, start.sshArgs), options.retry)
      )
      if (removed._tag === "Left") problems.push(removed.left.message)
    }

    if (problems.length === 0) {
      const removed = yield* Effect.either(remover.removeLocal(start.localFiles))
      if (removed._tag === "Left") problems.push(removed.left.message)
    }
    return { cancelled, node, problems }
  })
