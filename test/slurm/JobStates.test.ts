/**
 * Phases and outcomes over all base states and the flags that matter.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { jobsOf } from "../../src/slurm/dialects/index.js"
import type { BaseState, ExitStatus, JobInfo } from "../../src/slurm/JobSpec.js"
import { describeState, isRequeued, outcomeOf, phaseOf } from "../../src/slurm/JobStates.js"
import { jobInfo } from "../support/SlurmApiScripted.js"
import { sample, synthetic } from "./support/fixtures.js"

const job = (over: Partial<JobInfo>): JobInfo => jobInfo({ jobId: 1, name: "nix-build-x", ...over })

const real = (body: unknown) => Either.getOrThrow(jobsOf(body))[0]!

describe("outcomeOf", () => {
  const cases: ReadonlyArray<[BaseState, ExitStatus | undefined, string]> = [
    ["COMPLETED", { _tag: "Exited", code: 0 }, "Succeeded"],
    ["COMPLETED", { _tag: "Exited", code: 2 }, "Failed"],
    ["FAILED", { _tag: "Exited", code: 3 }, "Failed"],
    ["CANCELLED", { _tag: "Signaled", signal: 15 }, "Cancelled"],
    ["TIMEOUT", undefined, "TimedOut"],
    ["OUT_OF_MEMORY", undefined, "OutOfMemory"],
    ["NODE_FAIL", undefined, "Retryable"],
    ["PREEMPTED", undefined, "Retryable"],
    ["BOOT_FAIL", undefined, "Retryable"],
    ["DEADLINE", undefined, "Deadline"]
  ]
  for (const [state, exit, tag] of cases) {
    it(`${state} → ${tag}`, () => {
      assert.strictEqual(outcomeOf(state, job({ state, exit }))?._tag, tag)
    })
  }

  it("keeps the exit status and reason of a failure", () => {
    assert.deepStrictEqual(outcomeOf("FAILED", real(sample("17-job-failed-exit3.json"))), {
      _tag: "Failed",
      exit: { _tag: "Exited", code: 3 },
      reason: "NonZeroExitCode"
    })
  })

  it("has none for states that are not final", () => {
    for (const state of ["PENDING", "RUNNING", "SUSPENDED"] as const) {
      assert.isUndefined(outcomeOf(state, job({ state })))
    }
  })
})

describe("phaseOf", () => {
  it("waits while pending for resources, and for unknown or flag-only states", () => {
    assert.strictEqual(phaseOf(real(sample("10-job-pending.json")))._tag, "Waiting")
    assert.strictEqual(phaseOf(job({ state: "SUSPENDED" }))._tag, "Waiting")
    assert.strictEqual(phaseOf(job({ state: undefined, flags: ["SOMETHING_NEW"] }))._tag, "Waiting")
    assert.strictEqual(phaseOf(job({ state: undefined, flags: ["REQUEUED"] }))._tag, "Waiting")
    assert.strictEqual(phaseOf(job({ state: undefined, flags: ["CONFIGURING"] }))._tag, "Waiting")
  })

  it("sees an allocation only when running on a known host and done configuring", () => {
    assert.deepStrictEqual(phaseOf(real(sample("07-job-running.json"))), { _tag: "Allocated", batchHost: "node1" })
    assert.strictEqual(phaseOf(real(synthetic("v0.0.44-job-configuring.json")))._tag, "Waiting")
    assert.strictEqual(phaseOf(job({ state: "RUNNING", batchHost: "" }))._tag, "Waiting")
  })

  it("treats COMPLETING as not done, with or without the base state", () => {
    assert.strictEqual(phaseOf(real(sample("12-job-just-cancelled.json")))._tag, "Ending")
    assert.strictEqual(phaseOf(real(synthetic("v0.0.40-job-cancelled-completing.json")))._tag, "Ending")
    assert.strictEqual(phaseOf(job({ state: "COMPLETED", flags: ["STAGE_OUT"] }))._tag, "Ending")
  })

  it("is done on a final base state without winding-down flags", () => {
    assert.deepStrictEqual(phaseOf(real(sample("13-job-cancelled.json"))), {
      _tag: "Done",
      outcome: { _tag: "Cancelled", reason: "None" }
    })
    assert.deepStrictEqual(phaseOf(real(synthetic("v0.0.43-job-node-fail.json"))), {
      _tag: "Done",
      outcome: { _tag: "Retryable", state: "NODE_FAIL", reason: "NodeDown" }
    })
  })

  it("calls hopeless pending reasons and held-after-requeue states stuck", () => {
    assert.deepStrictEqual(phaseOf(real(sample("42-job-stuck-partitionconfig.json"))), {
      _tag: "Stuck",
      why: "PartitionConfig"
    })
    assert.deepStrictEqual(phaseOf(job({ state: "PENDING", reason: "QOSMaxWallDurationPerJobLimit" })), {
      _tag: "Stuck",
      why: "QOSMaxWallDurationPerJobLimit"
    })
    assert.deepStrictEqual(phaseOf(job({ state: "PENDING", flags: ["REQUEUE_HOLD"] })), {
      _tag: "Stuck",
      why: "REQUEUE_HOLD"
    })
    assert.deepStrictEqual(phaseOf(job({ state: undefined, flags: ["SPECIAL_EXIT"] })), {
      _tag: "Stuck",
      why: "SPECIAL_EXIT"
    })
    // A user's own hold is waited on: the user may release it.
    assert.strictEqual(phaseOf(real(sample("23-job-pending-held.json")))._tag, "Waiting")
  })

  it("waits on reasons that resolve in time, showing them: nodes down or reserved, holds, aggregate limits", () => {
    // Slurm gives ReqNodeNotAvail to a job whose time limit overlaps a maintenance reservation.
    for (
      const reason of [
        "ReqNodeNotAvail",
        "PartitionNodeLimit",
        "NodeDown",
        "PartitionDown",
        "JobHeldAdmin",
        "QOSGrpCpuLimit",
        "QOSMaxJobsPerUserLimit",
        "AssocMaxJobsLimit"
      ]
    ) {
      const info = job({ state: "PENDING", reason })
      assert.strictEqual(phaseOf(info)._tag, "Waiting", reason)
      assert.strictEqual(describeState(info, 0), `PENDING (${reason})`)
    }
  })
})

describe("isRequeued and describeState", () => {
  it("sees a requeue in the flags", () => {
    assert.isTrue(isRequeued(real(synthetic("v0.0.41-job-pending-requeued.json"))))
    assert.isFalse(isRequeued(real(sample("10-job-pending.json"))))
  })

  it("words the queue state with the reason and a future expected start only", () => {
    const pending = real(sample("10-job-pending.json"))
    assert.strictEqual(
      describeState(pending, 1795583516),
      "PENDING (Resources), expected start 2027-11-25 05:11:56 UTC"
    )
    assert.strictEqual(describeState(pending, 1827119517), "PENDING (Resources)")
    assert.strictEqual(describeState(real(sample("09-job-pending-new.json")), 0), "PENDING")
    assert.strictEqual(
      describeState(real(synthetic("v0.0.40-job-cancelled-completing.json")), 0),
      "CANCELLED,COMPLETING"
    )
  })
})
