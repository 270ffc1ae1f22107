/**
 * The TryHandler that builds on Slurm, for requests routing already sent to the cluster
 * (TryHandlerLive routes first, so declines never load this): build the job for the derivation,
 * submit it at once (one REST round trip, so Nix's scheduler is not held up by the queue), and
 * accept with a build that waits for the allocation only after Nix has moved on.
 *
 * Each accepted build owns a scope forked from the handler's: closing it (the build finished,
 * or the hook is interrupted) runs every finalizer, and the job's finalizer cancels the job
 * unless it ended on its own.
 */
import { type CommandExecutor, FileSystem } from "@effect/platform"
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  HashMap,
  identity,
  Layer,
  Option,
  Ref,
  Scope
} from "effect"
import { Config } from "../config/Config.js"
import { slurmEndpoint } from "../config/Endpoint.js"
import type { BuildOptions } from "../dispatch/BuildOptions.js"
import { NixLog, Verbosity } from "../dispatch/NixLog.js"
import { type BuildExit, type BuildRequest, type TryAnswer, TryHandler } from "../dispatch/TryHandler.js"
import { allJobFiles, type JobFiles, jobFiles } from "../job/JobFiles.js"
import { newJobIds } from "../job/JobTag.js"
import { jobSpecFor } from "../job/Submission.js"
import { Journal, liveEntriesHere } from "../safety/Journal.js"
import { reapOrphans } from "../safety/Reaper.js"
import { Watchdog } from "../safety/Watchdog.js"
import { credentialsOf, tokenSourceOf } from "../slurm/http/Credentials.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import { isPassingFault, SlurmAuthError } from "../slurm/SlurmErrors.js"
import type { SshSession } from "../ssh/SshSession.js"
import { NixStore } from "../store/NixStore.js"
import { jobEndedBy, jobOverResult, runBuild, type SubmittedBuild } from "./BuildProgram.js"

/** Makes the state directory on this machine, private (on a shared home it is also the nodes'). */
const ensureStateDir = (dir: string) =>
  FileSystem.FileSystem.pipe(
    Effect.flatMap((fs) => fs.makeDirectory(dir, { recursive: true, mode: 0o700 })),
    Effect.ignore
  )

/** The derivation asks for a job nsh will not submit (a field it may not set, bad JSON): no wait or other machine helps. */
const isRefusal = (error: { readonly _tag: string }): boolean =>
  error._tag === "JobSpecError" || error._tag === "ExtraSlurmParamsError"

/** Faults that pass by themselves: slurmrestd unreachable, slow or busy, the token file being rewritten, the watchdog. */
const isPassing = (error: { readonly _tag: string }): boolean => error._tag === "WatchdogError" || isPassingFault(error)

/** How often a build is submitted when its jobs fail through no fault of its own (like Hydra's retries). */
const maxAttempts = 3

/** A cancel must fit in Nix 2.35's 500 ms between SIGTERM and SIGKILL. */
const cancelBudget = "400 millis"
/** Looking for a job requeued after its end marker: the build is over, so Nix is not waiting on a kill. */
const requeuedCheckBudget = "3 seconds"

export const SlurmTryHandlerLive = Layer.scoped(
  TryHandler,
  Effect.gen(function*() {
    const loaded = yield* Config
    const { settings } = loaded
    // The watchdog reads a token file again too, when the token it was given has expired.
    const tokenSource = tokenSourceOf(loaded)
    const log = yield* NixLog
    const api = yield* SlurmApi
    const store = yield* NixStore
    const journal = yield* Journal
    const watchdog = yield* Watchdog
    const handlerScope = yield* Effect.scope
    // What each build needs, captured once: the builds run outside the layer's construction.
    const context = yield* Effect.context<
      | Config
      | NixLog
      | SlurmApi
      | NixStore
      | SshSession
      | Journal
      | Watchdog
      | FileSystem.FileSystem
      | CommandExecutor.CommandExecutor
    >()
    // Jobs left by hooks that died with their watchdog (a crash): cancelled quietly, in the background.
    yield* Effect.forkIn(reapOrphans.pipe(Effect.provide(context), Effect.ignore), handlerScope)

    /** A submission that could not be made: Nix builds elsewhere, and the user learns why. */
    const decline = (drvPath: string, reason: string) =>
      Effect.as(
        log.log(Verbosity.error, `nsh: not building '${drvPath}' on the cluster: ${reason}`),
        {
          _tag: "Decline",
          reason
        } satisfies TryAnswer
      )

    /**
     * A watchdog for one submission, ready before the submit: from then on, whatever kills this
     * process, something outside Nix's process group cancels the job and removes its files.
     */
    const guard = (tag: string, files: JobFiles, outputs: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const credentials = yield* credentialsOf(settings)
        if (credentials._tag === "None") {
          return yield* new SlurmAuthError({
            host: slurmEndpoint(settings).url,
            reason: "no token configured",
            missing: true
          })
        }
        const handle = yield* watchdog.start({
          slurm: {
            url: settings.slurmApiUrl,
            host: settings.slurmApiHost,
            port: settings.slurmApiPort,
            caFile: settings.slurmApiCaFile,
            auth: settings.slurmApiAuth,
            apiVersion: yield* api.apiVersion,
            userName: credentials.value.userName,
            token: credentials.value.token,
            ...(tokenSource._tag === "File" ? { tokenFile: tokenSource.file } : {})
          },
          tag,
          nodeFiles: allJobFiles(files, outputs),
          localFiles: [journal.fileOf(tag)]
        })
        yield* handle.ready
        return handle
      })

    /**
     * A refused derivation fails its build: a decline would let Nix build it on the login node
     * (or another builder), which is what a derivation asking for another identity must not get.
     */
    const refuse = (drvPath: string, reason: string) =>
      Effect.succeed<TryAnswer>({
        _tag: "Accept",
        build: {
          machine: "nsh, which refuses it",
          run: () => Effect.as(log.log(Verbosity.error, `nsh: refusing to build '${drvPath}': ${reason}`), 1)
        }
      })

    // When each derivation met its first passing fault, while it is being postponed.
    const postponedSince = yield* Ref.make(HashMap.empty<string, number>())

    /**
     * A passing fault: Nix is told to ask again (after build-poll-interval) rather than to build
     * elsewhere, until postpone-timeout has passed for this derivation; then it is declined.
     */
    const postponeOrDecline = (drvPath: string, why: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const since = HashMap.get(yield* Ref.get(postponedSince), drvPath)
        const started = Option.getOrElse(since, () => now)
        if (now - started >= settings.postponeTimeout * 1000) {
          yield* Ref.update(postponedSince, HashMap.remove(drvPath))
          return yield* decline(drvPath, `${why} (still so after postponing for ${settings.postponeTimeout} s)`)
        }
        yield* Ref.update(postponedSince, HashMap.set(drvPath, started))
        // Said once per derivation where Nix shows it; every later postpone only when asked for.
        yield* log.log(
          Option.isNone(since) ? Verbosity.warn : Verbosity.talkative,
          `nsh: postponing '${drvPath}' (Nix asks again; at most ${settings.postponeTimeout} s): ${why}`
        )
        return { _tag: "Postpone", reason: why } satisfies TryAnswer
      })

    /** Jobs of live hooks on this login host (not another's sharing the journal), when max-jobs caps them. */
    const atCapacity = Effect.gen(function*() {
      if (settings.maxJobs === 0) return false
      const live = yield* liveEntriesHere(yield* journal.list).pipe(Effect.provide(context))
      return live.length >= settings.maxJobs
    })

    /**
     * Submits the job in a scope of its own inside `scope`. How that scope ends decides: the job
     * is cancelled unless the attempt's result says it ended by itself (or the build closed it
     * early, at the end marker); the watchdog is told `finished` only then.
     */
    const submit = (request: BuildRequest, options: BuildOptions, scope: Scope.Scope) =>
      Effect.gen(function*() {
        const drv = yield* store.readDerivation(request.drvPath, options.store)
        const ids = yield* newJobIds
        // What a derivation may set depends on the API version (slurm-derivation-params).
        const spec = jobSpecFor(drv, settings, options, ids, yield* api.apiVersion)
        if (Either.isLeft(spec)) return yield* Effect.fail(spec.left)
        yield* ensureStateDir(settings.slurmStateDir)
        // The intent goes to the journal before the submit, so no interruption can lose the job.
        const outputs = drv.outputs.map((o) => o.name)
        yield* journal.begin({ tag: ids.tag, drvPath: drv.drvPath, outputs })
        const watch = yield* guard(ids.tag, jobFiles(settings.slurmStateDir, ids.tag), outputs).pipe(
          Scope.extend(scope),
          // Nothing was submitted, and no watchdog will remove the entry.
          Effect.tapError(() => journal.remove(ids.tag).pipe(Effect.ignore))
        )
        const jobEnd = yield* Deferred.make<boolean>()
        const endedItself = Deferred.poll(jobEnd).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.succeed(false), onSome: identity }))
        )
        // Finalizers run in reverse: this one runs after the build removed the job's files, after
        // the job's scope closed (forked below) and before the watchdog's socket closes, so a job
        // that ended by itself is left alone. A watchdog that died cannot be told, but the job is
        // over and its files are gone: the entry goes all the same.
        yield* Effect.addFinalizer(() =>
          Effect.whenEffect(
            watch.finished().pipe(Effect.ignore, Effect.zipRight(journal.remove(ids.tag)), Effect.ignore),
            endedItself
          )
        ).pipe(Scope.extend(scope))
        const jobScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        yield* Scope.addFinalizerExit(jobScope, (exit) => Deferred.succeed(jobEnd, jobEndedBy(exit)))
        const submitted = yield* Effect.acquireRelease(api.submit(spec.right), (job, exit) =>
          (jobEndedBy(exit) ? Effect.void : api.cancel(job.jobId)).pipe(
            // A release is uninterruptible: without this the budget could not stop a hung request.
            Effect.interruptible,
            Effect.timeoutOption(cancelBudget),
            Effect.ignore
          )).pipe(
            Scope.extend(jobScope),
            // Only a submit left unanswered may have queued a job: after any other failure the
            // watchdog is told it has nothing to look for, and the journal entry goes.
            Effect.tapError((e) =>
              e._tag === "SlurmSubmitUnanswered" ? Effect.void : Deferred.succeed(jobEnd, true)
            )
          )
        // After its end marker the job holds its node until the hook removed the lease; a node that
        // failed in that window makes Slurm requeue it. Its build is done (the outputs came back, or
        // the attempt failed): runs after the job's files went, and cancels the requeued job.
        yield* Effect.addFinalizer(() =>
          Effect.whenEffect(
            api.getJob(submitted.jobId).pipe(
              Effect.flatMap((info) => info.state === "PENDING" ? api.cancel(submitted.jobId) : Effect.void),
              Effect.interruptible,
              Effect.timeoutOption(requeuedCheckBudget),
              Effect.ignore
            ),
            endedItself
          )
        ).pipe(Scope.extend(scope))
        yield* watch.jobSubmitted(submitted.jobId)
        yield* journal.update(ids.tag, { jobId: submitted.jobId })
        for (const warning of submitted.warnings) {
          yield* log.log(Verbosity.warn, `nsh: slurmrestd: ${warning}`)
        }
        return {
          jobId: submitted.jobId,
          tag: ids.tag,
          nonce: ids.nonce,
          drv,
          watchdog: watch,
          endedByItself: Scope.close(jobScope, Exit.succeed(jobOverResult))
        } satisfies SubmittedBuild
      })

    /** Submits a job for the request in a scope of its own (closed here if the submit fails). */
    const start = (request: BuildRequest, options: BuildOptions) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(handlerScope, ExecutionStrategy.sequential)
        const submitted = yield* submit(request, options, scope).pipe(
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        yield* log.log(Verbosity.info, `nsh: submitted '${request.drvPath}' as Slurm job ${submitted.jobId}`)
        return [submitted, scope] as const
      })

    /**
     * Runs the build; when its job failed through no fault of the build (node failure,
     * preemption, requeue), that job is cancelled with its scope and a new one submitted, a
     * bounded number of times.
     */
    const attempts = (
      request: BuildRequest,
      options: BuildOptions,
      job: SubmittedBuild,
      scope: Scope.CloseableScope,
      inputs: ReadonlyArray<string>,
      wanted: ReadonlyArray<string>,
      attempt = 1
    ): Effect.Effect<BuildExit> =>
      runBuild(job, inputs, wanted, options).pipe(
        Scope.extend(scope),
        Effect.onExit((exit) => Scope.close(scope, exit)),
        Effect.flatMap((result) => {
          if (result._tag === "Done") return Effect.succeed(result.exit)
          if (attempt >= maxAttempts) {
            return Effect.as(
              log.log(Verbosity.error, `nsh: ${result.reason}; giving up after ${attempt} attempts`),
              1 as BuildExit
            )
          }
          return Effect.gen(function*() {
            yield* log.log(
              Verbosity.warn,
              `nsh: ${result.reason}; submitting the build again (attempt ${attempt + 1} of ${maxAttempts})`
            )
            yield* Effect.sleep(Duration.seconds(2 ** attempt))
            const next = yield* Effect.either(start(request, options))
            if (Either.isLeft(next)) {
              yield* log.log(Verbosity.error, `nsh: cannot submit '${request.drvPath}' again: ${next.left.message}`)
              return 1 as BuildExit
            }
            return yield* attempts(request, options, next.right[0], next.right[1], inputs, wanted, attempt + 1)
          })
        }),
        Effect.provide(context)
      )

    const answer = (request: BuildRequest, options: BuildOptions): Effect.Effect<TryAnswer> =>
      Effect.gen(function*() {
        if (yield* Effect.orElseSucceed(atCapacity, () => false)) {
          const reason = `max-jobs (${settings.maxJobs}) of nsh's Slurm jobs are pending or running`
          yield* log.log(Verbosity.talkative, `nsh: postponing '${request.drvPath}': ${reason}`)
          return { _tag: "Postpone", reason } satisfies TryAnswer
        }
        const first = yield* Effect.either(start(request, options))
        if (Either.isLeft(first)) {
          return yield* (isRefusal(first.left)
            ? refuse(request.drvPath, first.left.message)
            : isPassing(first.left)
            ? postponeOrDecline(request.drvPath, first.left.message)
            : decline(request.drvPath, first.left.message))
        }
        yield* Ref.update(postponedSince, HashMap.remove(request.drvPath))
        const [job, scope] = first.right
        return {
          _tag: "Accept",
          build: {
            machine: `slurm job ${job.jobId} (${settings.slurmApiHost})`,
            run: (inputs, wanted) => attempts(request, options, job, scope, inputs, wanted)
          }
        } satisfies TryAnswer
      }).pipe(Effect.provide(context))

    return TryHandler.of({ answer })
  })
)
