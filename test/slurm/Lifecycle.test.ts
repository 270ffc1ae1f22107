/**
 * Waiting for allocation and end on the TestClock, against a SlurmApi double that plays a job's
 * timeline. The request counts printed here are the poll costs of the default schedule.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Ref, TestClock } from "effect"
import { type Activity, NixLog } from "../../src/dispatch/NixLog.js"
import { waitShowingQueue } from "../../src/runner/QueueStatus.js"
import type { JobInfo } from "../../src/slurm/JobSpec.js"
import { waitForAllocation, waitForEnd } from "../../src/slurm/Lifecycle.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { SlurmAuthError, type SlurmError, SlurmJobNotFound, SlurmUnreachable } from "../../src/slurm/SlurmErrors.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

const info = (over: Partial<JobInfo>): JobInfo => jobInfo({ jobId: 7, name: "nix-build-x", ...over })

type Step = readonly [atMs: number, observation: JobInfo | SlurmError]

const running = info({ state: "RUNNING", batchHost: "node1" })
const completing = info({ state: undefined, flags: ["COMPLETING"], rawState: "COMPLETING", batchHost: "node1" })
const completed = info({ state: "COMPLETED", batchHost: "node1", exit: { _tag: "Exited", code: 0 } })

/** A job that pends `pendingMs`, runs `runMs`, completes 50 ms later (as in the lab's traces). */
const lifeOf = (pendingMs: number, runMs: number): ReadonlyArray<Step> => [
  [0, info({})],
  [pendingMs, running],
  [pendingMs + runMs, completing],
  [pendingMs + runMs + 50, completed]
]

/** SlurmApi whose getJob answers from `steps` by the time since it was built, recording when it was asked. */
const playing = (steps: ReadonlyArray<Step>, polls: Ref.Ref<Array<number>>) =>
  Layer.effect(
    SlurmApi,
    Effect.map(Clock.currentTimeMillis, (start) =>
      SlurmApi.of({
        apiVersion: Effect.succeed("v0.0.38"),
        renderSubmission: () => Effect.die("unused"),
        ping: Effect.void,
        submit: () => Effect.die("unused"),
        cancel: () => Effect.die("unused"),
        listJobs: Effect.die("unused"),
        getJob: () =>
          Effect.gen(function*() {
            const now = (yield* Clock.currentTimeMillis) - start
            yield* Ref.update(polls, (at) => [...at, now])
            const current = steps.filter(([at]) => at <= now).at(-1)![1]
            return current instanceof SlurmUnreachable || current instanceof SlurmJobNotFound ||
                current instanceof SlurmAuthError
              ? yield* current
              : current as JobInfo
          })
      }))
  )

/** NixLog recording the activities started. */
const recordingLog = (texts: Ref.Ref<Array<string>>) =>
  Layer.succeed(
    NixLog,
    NixLog.of({
      log: () => Effect.void,
      activity: (_type, text) =>
        Effect.as(Ref.update(texts, (t) => [...t, text]), { id: 1, result: () => Effect.void } as Activity),
      buildLog: () => Effect.void
    })
  )

/** Runs `program` to completion, moving the TestClock along. */
const settle = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(program)
    yield* TestClock.adjust("10 minutes")
    return yield* Fiber.join(fiber)
  })

const allocateThenEnd = (steps: ReadonlyArray<Step>) =>
  Effect.gen(function*() {
    const polls = yield* Ref.make<Array<number>>([])
    const texts = yield* Ref.make<Array<string>>([])
    const result = yield* settle(
      Effect.gen(function*() {
        // With the build side's queue display, whose activities `texts` records.
        const allocation = yield* waitShowingQueue(7)
        const end = yield* waitForEnd(7)
        return { allocation, end }
      }).pipe(Effect.provide(Layer.merge(playing(steps, polls), recordingLog(texts))))
    )
    return { ...result, at: yield* Ref.get(polls), texts: yield* Ref.get(texts) }
  })

describe("poll costs of the default schedule", () => {
  it.effect("a 1 s job that starts after 1 s: 7 polls to RUNNING, 7 more to COMPLETED", () =>
    Effect.gen(function*() {
      const { allocation, end, at } = yield* allocateThenEnd(lifeOf(1000, 1000))
      console.log(
        `[lifecycle] 1 s job: ${allocation.polls} + ${end.polls} polls (+1 submit); polled at ${at.join(", ")} ms`
      )
      assert.strictEqual(allocation._tag, "Allocated")
      assert.deepStrictEqual(end.outcome, { _tag: "Succeeded" })
      assert.deepStrictEqual([allocation.polls, end.polls], [7, 7])
      assert.deepStrictEqual(at.slice(0, 4), [0, 50, 125, 237.5])
    }))

  it.effect("a 60 s job that starts after 1 s: 7 polls to RUNNING, 39 more to COMPLETED", () =>
    Effect.gen(function*() {
      const { allocation, end, at } = yield* allocateThenEnd(lifeOf(1000, 60_000))
      console.log(`[lifecycle] 60 s job: ${allocation.polls} + ${end.polls} polls (+1 submit)`)
      assert.deepStrictEqual([allocation.polls, end.polls], [7, 39])
      const gaps = at.slice(1).map((t, i) => t - at[i]!)
      assert.strictEqual(Math.max(...gaps), 2000)
    }))

  it.effect("polls fast again once the job is COMPLETING", () =>
    Effect.gen(function*() {
      // A slow epilog: COMPLETING for 10 s.
      const steps: ReadonlyArray<Step> = [[0, running], [30_000, completing], [40_000, completed]]
      const polls = yield* Ref.make<Array<number>>([])
      const end = yield* settle(waitForEnd(7).pipe(Effect.provide(playing(steps, polls))))
      const at = yield* Ref.get(polls)
      const first = at.findIndex((t) => t >= 30_000)
      assert.deepStrictEqual(at.slice(first + 1, first + 4).map((t) => t - at[first]!), [50, 125, 237.5])
      assert.deepStrictEqual(end.outcome, { _tag: "Succeeded" })
    }))
})

describe("waitForAllocation", () => {
  it.effect("shows the queue state through NixLog only when it changes", () =>
    Effect.gen(function*() {
      const resources = info({ reason: "Resources", startTime: 3600 })
      const { texts } = yield* allocateThenEnd([[0, info({})], [100, resources], [2000, running], [3000, completed]])
      assert.deepStrictEqual(texts, [
        "Slurm job 7: PENDING",
        "Slurm job 7: PENDING (Resources), expected start 1970-01-01 01:00:00 UTC"
      ])
    }))

  it.effect("reports a job that cannot start instead of waiting forever", () =>
    Effect.gen(function*() {
      const polls = yield* Ref.make<Array<number>>([])
      const stuck = info({ reason: "PartitionConfig" })
      const allocation = yield* settle(
        waitForAllocation(7).pipe(Effect.provide(playing([[0, info({})], [100, stuck]], polls)))
      )
      assert.deepInclude(allocation, { _tag: "Stuck", why: "PartitionConfig", polls: 3 })
    }))

  it.effect("reports a job that ended before it was seen running", () =>
    Effect.gen(function*() {
      const { allocation } = yield* allocateThenEnd([[0, info({})], [60, completed]])
      assert.deepInclude(allocation, { _tag: "Ended", outcome: { _tag: "Succeeded" } })
    }))

  it.effect("waits through CONFIGURING until the allocation is usable", () =>
    Effect.gen(function*() {
      const configuring = info({ state: "RUNNING", flags: ["CONFIGURING"], batchHost: "node1" })
      const { allocation } = yield* allocateThenEnd([[0, configuring], [500, running], [1000, completed]])
      assert.deepInclude(allocation, { _tag: "Allocated", batchHost: "node1" })
      // The allocation is the observation after CONFIGURING, not the first RUNNING one.
      assert.strictEqual(allocation._tag === "Allocated" ? allocation.info : undefined, running)
    }))
})

describe("waitForEnd", () => {
  const endOf = (steps: ReadonlyArray<Step>) => Effect.map(endAndPolls(steps), ({ result }) => result)
  /** The result, and when each poll was made (ms on the TestClock). */
  const endAndPolls = (steps: ReadonlyArray<Step>) =>
    Effect.gen(function*() {
      const polls = yield* Ref.make<Array<number>>([])
      const result = yield* settle(Effect.either(waitForEnd(7).pipe(Effect.provide(playing(steps, polls)))))
      return { result, at: yield* Ref.get(polls) }
    })

  it.effect("reports a requeue as Retryable: the attempt being followed is gone", () =>
    Effect.gen(function*() {
      const requeued = info({ state: "PENDING", flags: ["REQUEUED"], reason: "NodeDown", restartCount: 1 })
      const result = yield* endOf([[0, running], [1000, requeued]])
      assert.deepInclude(result._tag === "Right" ? result.right : {}, {
        outcome: { _tag: "Retryable", state: "REQUEUED", reason: "NodeDown" }
      })
      const restarted = yield* endOf([[0, running], [
        1000,
        info({ state: "RUNNING", batchHost: "node2", restartCount: 1 })
      ]])
      assert.strictEqual(restarted._tag === "Right" ? restarted.right.outcome._tag : "", "Retryable")
    }))

  it.effect("counts restarts from the allocation's count: a requeue before the wait began is Retryable too", () =>
    Effect.gen(function*() {
      // Requeued and running again (on node2) by the first poll, while nsh was copying inputs to node1.
      const again = info({ state: "RUNNING", batchHost: "node2", restartCount: 1 })
      const polls = yield* Ref.make<Array<number>>([])
      const result = yield* settle(
        Effect.either(
          waitForEnd(7, { restartCount: 0 }).pipe(Effect.provide(playing([[0, again], [60_000, completed]], polls)))
        )
      )
      assert.strictEqual(result._tag === "Right" ? result.right.outcome._tag : "", "Retryable")
    }))

  it.effect("keeps polling through a short slurmrestd outage", () =>
    Effect.gen(function*() {
      const down = new SlurmUnreachable({ url: "http://x", reason: "connection refused" })
      const result = yield* endOf([[0, running], [1000, down], [30_000, completed]])
      assert.deepStrictEqual(result._tag === "Right" ? result.right.outcome : undefined, { _tag: "Succeeded" })
    }))

  it.effect("gives up after two minutes of outage, and at once on other errors", () =>
    Effect.gen(function*() {
      const down = new SlurmUnreachable({ url: "http://x", reason: "connection refused" })
      // Unreachable from 1 s on: the last poll comes two minutes later (polls are at most 2 s apart).
      const outage = yield* endAndPolls([[0, running], [1000, down]])
      assert.strictEqual(outage.result._tag === "Left" ? outage.result.left._tag : "", "SlurmUnreachable")
      const lastPoll = outage.at.at(-1)!
      assert.isAtLeast(lastPoll, 121_000, `polls at ${outage.at.join(", ")}`)
      assert.isAtMost(lastPoll, 123_000, `polls at ${outage.at.join(", ")}`)
      // Another error ends the wait at the first poll that meets it.
      const gone = yield* endAndPolls([[0, running], [1000, new SlurmJobNotFound({ jobId: 7 })]])
      assert.strictEqual(gone.result._tag === "Left" ? gone.result.left._tag : "", "SlurmJobNotFound")
      assert.lengthOf(gone.at.filter((at) => at >= 1000), 1, `polls at ${gone.at.join(", ")}`)
    }))

  it.effect("keeps polling while a rejected token's file is being renewed; a token nsh cannot read again ends the wait at once", () =>
    Effect.gen(function*() {
      const expired = { host: "http://x", reason: "expired at 2026-12-04T21:00:00Z" }
      const renewable = new SlurmAuthError({ ...expired, renewable: true })
      const renewed = yield* endOf([[0, running], [1000, renewable], [40_000, completed]])
      assert.deepStrictEqual(renewed._tag === "Right" ? renewed.right.outcome : undefined, { _tag: "Succeeded" })
      // Never renewed: bounded like an outage, so the build does not hang.
      const never = yield* endAndPolls([[0, running], [1000, renewable]])
      assert.strictEqual(never.result._tag === "Left" ? never.result.left._tag : "", "SlurmAuthError")
      assert.isAtMost(never.at.at(-1)!, 123_000, `polls at ${never.at.join(", ")}`)
      const fixed = yield* endAndPolls([[0, running], [1000, new SlurmAuthError(expired)]])
      assert.strictEqual(fixed.result._tag === "Left" ? fixed.result.left._tag : "", "SlurmAuthError")
      assert.lengthOf(fixed.at.filter((at) => at >= 1000), 1, `polls at ${fixed.at.join(", ")}`)
    }))

  it.effect("reports the failure and its exit status", () =>
    Effect.gen(function*() {
      const failed = info({ state: "FAILED", reason: "NonZeroExitCode", exit: { _tag: "Exited", code: 3 } })
      const result = yield* endOf([[0, running], [500, failed]])
      assert.deepStrictEqual(result._tag === "Right" ? result.right.outcome : undefined, {
        _tag: "Failed",
        exit: { _tag: "Exited", code: 3 },
        reason: "NonZeroExitCode"
      })
    }))
})
