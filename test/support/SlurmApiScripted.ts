/**
 * A SlurmApi double that plays scripted jobs: submit answers with the next job id (or a scripted
 * error), getJob answers each job's scripted states one poll at a time (the last one repeats),
 * and every call, cancels included, is recorded.
 */
import { Context, Effect, Layer, Ref, SubscriptionRef } from "effect"
import type { BaseState, JobInfo, JobSpec } from "../../src/slurm/JobSpec.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { type SlurmError, SlurmJobNotFound } from "../../src/slurm/SlurmErrors.js"

/** One request the code under test sent. */
export type SlurmCall =
  | { readonly _tag: "Submit"; readonly spec: JobSpec }
  | { readonly _tag: "GetJob" | "Cancel"; readonly jobId: number }

/** How the double answers. */
export interface SlurmApiScriptedOptions {
  /** The id the first submit returns (default 4242); each later one gets the next. */
  readonly jobId?: number
  /** The job's state at each poll, oldest first, or the error that poll fails with; the last one repeats. */
  readonly states: ReadonlyArray<JobInfo | SlurmError>
  /** The states of each job submitted after the first (default: `states`). */
  readonly resubmitted?: ReadonlyArray<JobInfo | SlurmError>
  /** Makes submit fail (nothing is queued). */
  readonly submitError?: SlurmError
  /** What listJobs answers (default: not scripted, a defect). */
  readonly listed?: ReadonlyArray<JobInfo>
  /** What a cancel does after it was recorded (default: succeeds at once). */
  readonly cancel?: Effect.Effect<void, SlurmError>
}

/** The calls recorded by SlurmApiScripted, oldest first. */
export class SlurmCalls
  extends Context.Tag("test/SlurmCalls")<SlurmCalls, SubscriptionRef.SubscriptionRef<ReadonlyArray<SlurmCall>>>()
{}

/** An observation of job `jobId` (default 4242), pending unless `over` says otherwise. */
export const jobInfo = (over: Partial<JobInfo> = {}): JobInfo => ({
  jobId: 4242,
  name: "nix-build-hello",
  comment: "",
  state: "PENDING",
  flags: [],
  rawState: over.state ?? "PENDING",
  reason: "None",
  batchHost: "",
  exit: undefined,
  submitTime: 0,
  startTime: 0,
  endTime: 0,
  restartCount: 0,
  userName: "root",
  ...over
})

/** The job running on `host`. */
export const runningOn = (host: string) => jobInfo({ state: "RUNNING", batchHost: host })

/** The job ended in `state` (after having run on node1, unless `over` says otherwise). */
export const endedAs = (state: BaseState, over: Partial<JobInfo> = {}) =>
  jobInfo({ state, batchHost: "node1", ...over })

/** The cancelled job ids, oldest first. */
export const cancelled = SlurmCalls.pipe(
  Effect.flatMap(SubscriptionRef.get),
  Effect.map((calls) => calls.flatMap((c) => (c._tag === "Cancel" ? [c.jobId] : [])))
)

/** The specs submitted, oldest first. */
export const submitted = SlurmCalls.pipe(
  Effect.flatMap(SubscriptionRef.get),
  Effect.map((calls) => calls.flatMap((c) => (c._tag === "Submit" ? [c.spec] : [])))
)

/** SlurmApi double plus the SlurmCalls it records. */
export const SlurmApiScripted = (options: SlurmApiScriptedOptions): Layer.Layer<SlurmApi | SlurmCalls> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const firstId = options.jobId ?? 4242
      const calls = yield* SubscriptionRef.make<ReadonlyArray<SlurmCall>>([])
      // The states left to answer, per submitted job.
      const jobs = yield* Ref.make(new Map<number, ReadonlyArray<JobInfo | SlurmError>>())
      const record = (call: SlurmCall) => SubscriptionRef.update(calls, (all) => [...all, call])
      const queue = Ref.modify(jobs, (all) => {
        const id = firstId + all.size
        return [
          id,
          new Map(all).set(id, all.size === 0 ? options.states : (options.resubmitted ?? options.states))
        ] as const
      })
      const next = (id: number) =>
        Ref.modify(jobs, (all) => {
          const left = all.get(id) ?? []
          return [left[0], left.length > 1 ? new Map(all).set(id, left.slice(1)) : all] as const
        })
      const api = SlurmApi.of({
        apiVersion: Effect.succeed("v0.0.38" as const),
        renderSubmission: () => Effect.die("renderSubmission is not scripted"),
        ping: Effect.void,
        submit: (spec) =>
          record({ _tag: "Submit", spec }).pipe(
            Effect.zipRight(
              options.submitError === undefined
                ? Effect.map(queue, (jobId) => ({ jobId, warnings: [] }))
                : Effect.fail(options.submitError)
            )
          ),
        getJob: (id) =>
          record({ _tag: "GetJob", jobId: id }).pipe(
            Effect.zipRight(next(id)),
            Effect.flatMap((info) =>
              info === undefined
                ? Effect.fail(new SlurmJobNotFound({ jobId: id }))
                : "_tag" in info
                ? Effect.fail(info)
                : Effect.succeed({ ...info, jobId: id })
            )
          ),
        cancel: (id) => record({ _tag: "Cancel", jobId: id }).pipe(Effect.zipRight(options.cancel ?? Effect.void)),
        listJobs: options.listed === undefined ? Effect.die("listJobs is not scripted") : Effect.succeed(options.listed)
      })
      return Context.make(SlurmApi, api).pipe(Context.add(SlurmCalls, calls))
    })
  )
