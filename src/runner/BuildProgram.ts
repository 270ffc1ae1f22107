/**
 * One accepted build, after Nix sent its inputs: wait for the job's allocation, reach the node
 * over SSH, copy the inputs in, stream the log while the job builds, copy the outputs back and
 * clean up. Every phase runs in the build's scope, so an interruption runs every finalizer; what
 * the attempt returns says whether its job ended by itself, which the scope's finalizers read
 * from its exit to decide whether to cancel it.
 */
import { Clock, Duration, Effect, Exit, Fiber, Option, Ref, Schedule } from "effect"
import { Config } from "../config/Config.js"
import type { Settings } from "../config/Settings.js"
import type { BuildOptions } from "../dispatch/BuildOptions.js"
import { ActivityType, NixLog, ResultType, Verbosity } from "../dispatch/NixLog.js"
import type { BuildExit } from "../dispatch/TryHandler.js"
import { allJobFiles, type JobFiles, jobFiles } from "../job/JobFiles.js"
import { renewLease } from "../job/Lease.js"
import type { WatchdogHandle } from "../safety/Watchdog.js"
import type { JobInfo, JobOutcome } from "../slurm/JobSpec.js"
import { waitForEnd } from "../slurm/Lifecycle.js"
import type { SlurmUnreachable } from "../slurm/SlurmErrors.js"
import { resilientConnection } from "../ssh/Reconnect.js"
import { type SshConnection, SshSession } from "../ssh/SshSession.js"
import type { Derivation } from "../store/Derivation.js"
import { NixStore } from "../store/NixStore.js"
import { shellCommand } from "../util/ShellQuote.js"
import { exitForOutcome, exitForRealise, outcomeMessage } from "./BuildResult.js"
import { drainHeld, followLog, initialProgress, type LogEnd, type LogProgress, tailCommand } from "./LogFollower.js"
import { waitShowingQueue } from "./QueueStatus.js"

/** A submitted job and what the build needs to know about it. */
export interface SubmittedBuild {
  readonly jobId: number
  readonly tag: string
  readonly nonce: string
  readonly drv: Derivation
  /** Cancels the job from outside Nix's process group if this process dies. */
  readonly watchdog: WatchdogHandle
  /** Closes the job's scope as ended by itself (it printed its end marker): nothing cancels it from then on. */
  readonly endedByItself: Effect.Effect<void>
}

/** The attempt has a result for Nix. */
export interface Done {
  readonly _tag: "Done"
  readonly exit: BuildExit
  /** The job ended by itself (or is ending: it printed its end marker), so nothing may cancel it. */
  readonly jobOver: boolean
}

/** The build could not finish through no fault of its own (the node failed, the job was preempted). */
export interface Retry {
  readonly _tag: "Retry"
  readonly reason: string
}

/** What one attempt ends with: Nix's exit code, or a request to submit the build again. */
export type AttemptResult = Done | Retry

const over = (exit: BuildExit): AttemptResult => ({ _tag: "Done", exit, jobOver: true })

/** What a job's scope closes with when the job ended by itself before the attempt did. */
export const jobOverResult: AttemptResult = over(0)
const stillRunning = (exit: BuildExit): AttemptResult => ({ _tag: "Done", exit, jobOver: false })

/** Whether the attempt whose scope closes with `exit` left a job that ended by itself. */
export const jobEndedBy = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isSuccess(exit) &&
  typeof exit.value === "object" &&
  exit.value !== null &&
  (exit.value as Partial<Done>)._tag === "Done" &&
  (exit.value as Done).jobOver

/** How long the log may lag behind the job's end before nsh stops waiting for the end marker. */
const markerGrace = Duration.seconds(5)

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1)

/** Reports a failure to the user; the attempt ends with exit 1. */
const reportAs = (result: AttemptResult) => (error: { readonly message: string }) =>
  NixLog.pipe(
    Effect.flatMap((log) => log.log(Verbosity.error, `nsh: ${error.message}`)),
    Effect.as(result)
  )

/** Runs the build of an accepted, submitted job to Nix's exit code; failures are reported, not raised. */
export const runBuild = (
  job: SubmittedBuild,
  inputs: ReadonlyArray<string>,
  wanted: ReadonlyArray<string>,
  options: BuildOptions
) =>
  Effect.gen(function*() {
    const { settings } = yield* Config
    const log = yield* NixLog
    const outageTolerance = Duration.seconds(settings.slurmOutageTimeout)
    const allocation = yield* waitShowingQueue(job.jobId, { outageTolerance })
    if (allocation._tag === "Stuck") {
      yield* log.log(Verbosity.error, `nsh: Slurm job ${job.jobId} cannot start: ${allocation.why}; cancelling it`)
      return stillRunning(1)
    }
    if (allocation._tag === "Ended") {
      if (allocation.outcome._tag === "Retryable") {
        return retry(job.jobId, allocation.outcome.state, allocation.info.reason)
      }
      if (allocation.outcome._tag !== "Succeeded" || allocation.info.batchHost === "") {
        yield* log.log(
          Verbosity.error,
          `nsh: ${outcomeMessage(job.jobId, allocation.outcome, allocation.info, settings.slurmStateDir)}`
        )
        return over(exitWithoutMarker(allocation.outcome))
      }
      // A job can succeed between two polls (its outputs were valid on the node already): its
      // log and outputs are still on its node, so those are fetched as for a job seen running.
      return yield* onNode(job, allocation.info, inputs, wanted, options).pipe(
        Effect.map((result) => (result._tag === "Done" ? { ...result, jobOver: true } : result)),
        Effect.catchAll(reportAs(over(1)))
      )
    }
    return yield* onNode(job, allocation.info, inputs, wanted, options)
  }).pipe(Effect.catchAll(reportAs(stillRunning(1))))

/** The build on the node of its allocation (`allocated`), from connecting to the outputs being back. */
const onNode = (
  job: SubmittedBuild,
  allocated: JobInfo,
  inputs: ReadonlyArray<string>,
  wanted: ReadonlyArray<string>,
  options: BuildOptions
) =>
  Effect.gen(function*() {
    const { settings } = yield* Config
    const log = yield* NixLog
    const ssh = yield* SshSession
    const store = yield* NixStore
    const host = allocated.batchHost
    const drvPath = job.drv.drvPath
    const files = jobFiles(settings.slurmStateDir, job.tag)
    yield* job.watchdog.nodeKnown(host).pipe(Effect.ignore)
    yield* log.log(Verbosity.info, `nsh: Slurm job ${job.jobId} is running on ${host}`)

    const conn = yield* resilientConnection(ssh.connect(host), (reason) =>
      log.log(Verbosity.warn, `nsh: lost the connection to ${host} (${reason}); reconnecting`))
    // Added before the lease fiber so that it runs after that fiber stops (finalizers run in
    // reverse): a renewal racing the removal would leave the lease file behind.
    yield* Effect.addFinalizer(() =>
      removeJobFiles(conn, files, job.drv)
    )
    yield* Effect.forkScoped(renewLease(conn, files.lease, settings.jobLeaseTimeout))
    const progress = yield* Ref.make(initialProgress(yield* Clock.currentTimeMillis))
    // A dropped connection resumes the log from the byte it had reached: nothing lost or repeated.
    const logFiber = yield* Effect.forkScoped(
      followLog((offset) => conn.spawn(tailCommand(files.log, offset)), progress, job.nonce, options.maxBuildLogSize)
        .pipe(
          Effect.retry({ while: (e) => e._tag === "SshChannelError", schedule: Schedule.spaced("1 second"), times: 10 })
        )
    )

    // Inputs: the input closure plus the .drv closure, which nix-store --realise on the node needs.
    const copied = yield* Effect.scoped(
      Effect.gen(function*() {
        const activity = yield* log.activity(ActivityType.copyPaths, `copying inputs to ${host}`)
        return yield* store.copyToNode(conn, [...inputs, drvPath], {
          localStore: options.store,
          substitute: options.buildersUseSubstitutes,
          onPlan: (missing) => activity.result(ResultType.setExpected, [ActivityType.copyPath, missing.length]),
          onBytes: (bytes) => activity.result(ResultType.progress, [bytes, 0, 0, 0])
        })
      })
    )
    yield* log.log(Verbosity.talkative, `nsh: copied ${copied.paths} paths (${mib(copied.bytes)} MiB) to ${host}`)
    // Silence counts from here: before the inputs arrived the job had nothing to say.
    const copiedAt = yield* Clock.currentTimeMillis
    yield* Ref.update(progress, (p) => ({ ...p, lastOutputAt: Math.max(p.lastOutputAt, copiedAt) }))

    // The end: the log's marker gives the build's exit code; the job's end catches the cases
    // where the script never printed it (cancelled, time limit, out of memory, node failure).
    // A watcher that fails ends the build too (Slurm's token expired, the log cannot be followed):
    // without it the others could wait for ever, the job running on unwatched.
    const silence = options.maxSilentTime > 0 ? watchSilence(progress, options.maxSilentTime) : Effect.never
    // Nix's timeout, counted like the node's nix-store's from the inputs' arrival: nsh stops the
    // build itself even when the node's nix-store does not, or the build keeps talking.
    const timeout = options.timeout > 0 ? Effect.sleep(Duration.seconds(options.timeout + slack)) : Effect.never
    const ended = yield* firstToEnd([
      Fiber.join(logFiber).pipe(
        Effect.map((end) => ({ _tag: "Log" as const, end })),
        Effect.catchAll(lost(`the log of Slurm job ${job.jobId} on ${host}`))
      ),
      // From the allocation's restart count: a requeue while the inputs were copied counts too.
      waitForEnd(job.jobId, {
        outageTolerance: Duration.seconds(settings.slurmOutageTimeout),
        restartCount: allocated.restartCount
      }).pipe(
        Effect.map((end) => ({ _tag: "Job" as const, end })),
        Effect.catchAll((e) =>
          lost(`Slurm job ${job.jobId}`)(e._tag === "SlurmUnreachable" ? outageOutlasted(e, settings) : e)
        )
      ),
      silence.pipe(Effect.as({ _tag: "Silent" as const })),
      timeout.pipe(Effect.as({ _tag: "TimedOut" as const }))
    ])

    let logEnd: LogEnd | undefined
    if (ended._tag === "Lost") {
      yield* log.log(Verbosity.error, `nsh: cannot follow ${ended.what}: ${ended.reason}; cancelling the job`)
      return stillRunning(1)
    }
    if (ended._tag === "Log") logEnd = ended.end
    else if (ended._tag === "Job") {
      // A requeued job keeps running elsewhere: it is not over, so the scope cancels it.
      if (ended.end.outcome._tag === "Retryable") {
        return retry(job.jobId, ended.end.outcome.state, ended.end.info.reason)
      }
      // The job ended; give the log a moment to deliver its last lines and the marker.
      logEnd = Option.getOrUndefined(yield* Fiber.join(logFiber).pipe(Effect.timeoutOption(markerGrace)))
      yield* drainHeld(progress)
      if (logEnd?._tag !== "Marker") {
        yield* log.log(
          Verbosity.error,
          `nsh: ${outcomeMessage(job.jobId, ended.end.outcome, ended.end.info, settings.slurmStateDir)}`
        )
        return over(exitWithoutMarker(ended.end.outcome))
      }
    } else {
      // Nix's own words for its limits; exit 101 is what Nix reports as a timeout.
      const after = ended._tag === "Silent"
        ? `${options.maxSilentTime} seconds of silence`
        : `${options.timeout} seconds`
      yield* log.log(Verbosity.error, `nsh: building of '${drvPath}' timed out after ${after}`)
      return stillRunning(101)
    }

    if (logEnd._tag === "OverLimit") {
      yield* log.log(Verbosity.error, `nsh: killed after writing more than ${logEnd.limit} bytes of log output`)
      return stillRunning(1)
    }
    if (logEnd._tag === "StreamEnded") {
      yield* log.log(Verbosity.error, `nsh: the log stream from ${host} ended before the build did`)
      return stillRunning(1)
    }
    // The script printed its end marker and exits: the job ends by itself, nothing may cancel it.
    if (logEnd.exitCode !== 0) {
      yield* log.log(
        Verbosity.error,
        `nsh: the build of '${drvPath}' failed on ${host} (Slurm job ${job.jobId}, nix-store exit code ${logEnd.exitCode})`
      )
      return over(exitForRealise(logEnd.exitCode))
    }
    yield* job.endedByItself
    return yield* outputsBack(conn, files, job.drv, wanted, options).pipe(
      Effect.as(over(0)),
      Effect.catchAll(reportAs(over(1)))
    )
  })

/** Copies the wanted outputs back from the node, then collects its garbage if nsh.conf asks. */
const outputsBack = (
  conn: SshConnection,
  files: JobFiles,
  drv: Derivation,
  wanted: ReadonlyArray<string>,
  options: BuildOptions
) =>
  Effect.gen(function*() {
    const { settings } = yield* Config
    const log = yield* NixLog
    const store = yield* NixStore
    const outputPaths = drv.outputs.filter((o) =>
      wanted.length === 0 || wanted.includes(o.name) || wanted.includes(o.path)
    ).map((o) => o.path)
    const back = yield* Effect.scoped(
      Effect.gen(function*() {
        const activity = yield* log.activity(ActivityType.copyPaths, `copying outputs from ${conn.host}`)
        return yield* store.copyFromNode(conn, outputPaths, {
          localStore: options.store,
          deriver: drv.drvPath,
          onBytes: (bytes) => activity.result(ResultType.progress, [bytes, 0, 0, 0])
        })
      })
    )
    yield* log.log(Verbosity.talkative, `nsh: copied ${back.paths} outputs (${mib(back.bytes)} MiB) from ${conn.host}`)
    if (settings.collectGarbage) {
      // The GC root must go first, or the outputs just copied back would survive the collection;
      // the lease stays, so the job (and the user's access to the node) lasts through the GC.
      yield* removeJobFiles(conn, files, drv, { keepLease: true })
      yield* store.collectGarbage(conn).pipe(Effect.ignore)
    }
  })

const retry = (jobId: number, state: string, reason: string): AttemptResult => ({
  _tag: "Retry",
  reason: `Slurm job ${jobId} ended with ${state}${reason && reason !== "None" ? ` (${reason})` : ""}`
})

/** Without the end marker there is no build result, so not even a COMPLETED job is a success. */
const exitWithoutMarker = (
  outcome: JobOutcome
): BuildExit => (outcome._tag === "Succeeded" ? 1 : exitForOutcome(outcome))

/** A watcher that failed: what it watched and why it could not go on. */
const lost = (what: string) => (error: { readonly message: string }) =>
  Effect.succeed({ _tag: "Lost" as const, what, reason: error.message })

/** Why nsh stopped following a job through an outage, and what becomes of the job if slurmrestd stays away. */
const outageOutlasted = (e: SlurmUnreachable, settings: Settings) => ({
  message: `slurmrestd at ${e.url} was unreachable for ${settings.slurmOutageTimeout} s (slurm-outage-timeout; ` +
    `last: ${e.reason}); should it stay away, the job stops by itself about ${settings.jobLeaseTimeout} s ` +
    `from now, its lease no longer renewed`
})

/** The first of `effects` to end, by success, failure or defect (Effect.raceAll would wait for a success). */
const firstToEnd = <const T extends readonly [Effect.Effect<any, any, any>, ...Array<Effect.Effect<any, any, any>>]>(
  effects: T
): Effect.Effect<Effect.Effect.Success<T[number]>, Effect.Effect.Error<T[number]>, Effect.Effect.Context<T[number]>> =>
  effects.slice(1).reduce((first, next) => Effect.raceFirst(first, next), effects[0])

/** How much later than the node's nix-store nsh enforces Nix's limits, so the node's (with its log) comes first. */
const slack = 5

/** Completes when no log byte arrived for `seconds` (plus slack). */
const watchSilence = (progress: Ref.Ref<LogProgress>, seconds: number) =>
  Effect.gen(function*() {
    const limit = (seconds + slack) * 1000
    const check = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const { lastOutputAt, waitingForNix } = yield* Ref.get(progress)
      return !waitingForNix && now - lastOutputAt > limit
    })
    yield* Effect.repeat(check, { schedule: Schedule.spaced("1 second"), until: (silent) => silent })
  })

/**
 * Removes the job's files on the node; bounded, and never fails (it runs in finalizers). The
 * lease goes last of all: once it is gone the job ends (JobScript).
 */
const removeJobFiles = (conn: SshConnection, files: JobFiles, drv: Derivation, { keepLease = false } = {}) =>
  conn.exec(
    shellCommand([
      "rm",
      "-f",
      ...allJobFiles(files, drv.outputs.map((o) => o.name)).filter((f) => !keepLease || f !== files.lease)
    ])
  ).pipe(
    // Finalizers are uninterruptible: without this the timeout could not stop a hung command.
    Effect.interruptible,
    Effect.timeoutOption("5 seconds"),
    Effect.ignore
  )
