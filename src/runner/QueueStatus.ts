/**
 * A queued job's state as a Nix activity (`Slurm job 42: PENDING (Resources), expected start …`),
 * shown while the build waits for its allocation and replaced only when the text changes.
 */
import { Clock, Effect, Exit, Option, Ref, Scope } from "effect"
import { ActivityType, NixLog, type NixLogService, Verbosity } from "../dispatch/NixLog.js"
import type { JobInfo } from "../slurm/JobSpec.js"
import { describeState } from "../slurm/JobStates.js"
import { type PollOptions, waitForAllocation } from "../slurm/Lifecycle.js"

/** An observer for `waitForAllocation`; the activity it shows ends with the caller's scope. */
const queueStatus = (log: NixLogService, jobId: number) =>
  Effect.gen(function*() {
    const shown = yield* Ref.make(Option.none<{ readonly text: string; readonly scope: Scope.CloseableScope }>())
    const close = Ref.get(shown).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: ({ scope }) => Scope.close(scope, Exit.void) }))
    )
    yield* Effect.addFinalizer(() => close)
    return (info: JobInfo) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const text = `Slurm job ${jobId}: ${describeState(info, Math.floor(now / 1000))}`
        const current = yield* Ref.get(shown)
        if (Option.isSome(current) && current.value.text === text) return
        yield* close
        const scope = yield* Scope.make()
        yield* Scope.extend(log.activity(ActivityType.unknown, text, [], Verbosity.info), scope)
        yield* Ref.set(shown, Option.some({ text, scope }))
      })
  })

/** Waits for the job's allocation, showing its queue state through NixLog meanwhile. */
export const waitShowingQueue = (jobId: number, options: PollOptions = {}) =>
  Effect.gen(function*() {
    const onQueued = yield* queueStatus(yield* NixLog, jobId)
    return yield* waitForAllocation(jobId, { ...options, onQueued })
  }).pipe(Effect.scoped)
