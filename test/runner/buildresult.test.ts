/**
 * The message for a job that failed before its script ran, from slurmrestd 22.05's real answers:
 * a missing slurm-state-dir on the node (Slurm cannot open the job's log) is JobLaunchFailure
 * with exit_code 4021; a job killed by SIGKILL or SIGTERM is also reported as JobLaunchFailure,
 * and there the state directory is not the problem.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { outcomeMessage } from "../../src/runner/BuildResult.js"
import { jobsOf } from "../../src/slurm/dialects/index.js"
import type { JobInfo } from "../../src/slurm/JobSpec.js"
import { outcomeOf } from "../../src/slurm/JobStates.js"
import { sample } from "../slurm/support/fixtures.js"

const messageFor = (file: string) => {
  const [info] = Either.getOrThrow(jobsOf(sample(file))) as ReadonlyArray<JobInfo>
  const outcome = outcomeOf(info!.state!, info!) ?? assert.fail(`no outcome for ${file}`)
  return outcomeMessage(info!.jobId, outcome, info!, "/home/u/.local/state/nsh")
}

const hint = "check that slurm-state-dir (/home/u/.local/state/nsh) exists and is writable on the node"

describe("outcomeMessage for JobLaunchFailure", () => {
  it("says to check slurm-state-dir when the job could not open its log there", () => {
    const message = messageFor("59-job-launch-failure-no-state-dir.json")
    assert.include(message, "FAILED (JobLaunchFailure)")
    assert.include(message, hint)
  })

  it("does not blame slurm-state-dir for a job killed by SIGKILL or SIGTERM", () => {
    for (const file of ["18-job-failed-sigkill.json", "19-job-failed-sigterm.json"]) {
      const message = messageFor(file)
      assert.include(message, "JobLaunchFailure", file)
      assert.notInclude(message, "slurm-state-dir", file)
    }
  })
})
