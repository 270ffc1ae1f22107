/**
 * Each dialect against real 22.05 answers (v0.0.38) and synthetic answers of later versions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { envelopeOf } from "../../src/slurm/dialects/Envelope.js"
import { dialectFor, jobsOf, pingsOf, submitBody } from "../../src/slurm/dialects/index.js"
import type { JobInfo, JobSpec } from "../../src/slurm/JobSpec.js"
import { sample, synthetic } from "./support/fixtures.js"

const onlyJob = (body: unknown): JobInfo => {
  const jobs = Either.getOrThrow(jobsOf(body))
  assert.strictEqual(jobs.length, 1)
  return jobs[0]!
}

const spec: JobSpec = {
  name: "nix-build-hello",
  comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello.drv",
  script: "#!/bin/sh\ntrue\n",
  currentWorkingDirectory: "/tmp",
  environment: { PATH: "/usr/bin:/bin", NIX_REMOTE: "daemon" },
  standardOutput: "/tmp/nsh-0123456789abcdef.log",
  timeLimitMinutes: 70,
  memoryPerNodeMb: 1024,
  extra: {}
}

describe("v0.0.38 (real 22.05.8 answers)", () => {
  it("reads a running job: state, batch host, times", () => {
    const job = onlyJob(sample("07-job-running.json"))
    assert.deepInclude(job, {
      jobId: 1,
      state: "RUNNING",
      flags: [],
      rawState: "RUNNING",
      reason: "None",
      batchHost: "node1"
    })
    assert.deepInclude(job, { submitTime: 1795583515, startTime: 1795583516, userName: "root", restartCount: 0 })
  })

  it("reads pending jobs, with the expected start once evaluated", () => {
    assert.deepInclude(onlyJob(sample("09-job-pending-new.json")), {
      state: "PENDING",
      reason: "None",
      batchHost: "",
      startTime: 0
    })
    assert.deepInclude(onlyJob(sample("10-job-pending.json")), {
      state: "PENDING",
      reason: "Resources",
      startTime: 1827119516
    })
    assert.deepInclude(onlyJob(sample("42-job-stuck-partitionconfig.json")), {
      state: "PENDING",
      reason: "PartitionConfig"
    })
  })

  it("keeps COMPLETING as a flag without a base state (it hides the base)", () => {
    assert.deepInclude(onlyJob(sample("12-job-just-cancelled.json")), {
      state: undefined,
      flags: ["COMPLETING"],
      rawState: "COMPLETING"
    })
  })

  it("decodes the raw wait status: 0, 768 = exit 3, 9 = SIGKILL, 15 = SIGTERM", () => {
    assert.deepStrictEqual(onlyJob(sample("14-job-completed.json")).exit, { _tag: "Exited", code: 0 })
    assert.deepStrictEqual(onlyJob(sample("17-job-failed-exit3.json")).exit, { _tag: "Exited", code: 3 })
    assert.deepStrictEqual(onlyJob(sample("18-job-failed-sigkill.json")).exit, { _tag: "Signaled", signal: 9 })
    assert.deepStrictEqual(onlyJob(sample("19-job-failed-sigterm.json")).exit, { _tag: "Signaled", signal: 15 })
    assert.deepInclude(onlyJob(sample("13-job-cancelled.json")), {
      state: "CANCELLED",
      exit: { _tag: "Signaled", signal: 15 }
    })
  })

  it("reads the whole job list despite its nulls", () => {
    const jobs = Either.getOrThrow(jobsOf(sample("58-list-jobs.json")))
    assert.strictEqual(jobs.length, 11)
    assert.isTrue(jobs.every((j) => j.jobId > 0 && j.rawState !== "UNKNOWN"))
  })

  it("reads submit answers: success, queued with an error, held, refused", () => {
    const d = dialectFor("v0.0.38")
    assert.deepStrictEqual(d.submitReply(sample("06-submit-ok.json")), { jobId: 1, errors: [], warnings: [] })
    assert.deepStrictEqual(d.submitReply(sample("41-submit-too-many-cpus.json")), {
      jobId: 10,
      errors: [{ code: 2015, text: "Requested partition configuration not available now (Slurm error 2015)" }],
      warnings: []
    })
    assert.deepStrictEqual(d.submitReply(sample("22-submit-held.json")), {
      jobId: 7,
      errors: [],
      warnings: ["Job is in held state, pending scheduler release (Slurm error 2042)"]
    })
    const refused = d.submitReply(sample("39-submit-invalid-bad-partition.json"))
    assert.strictEqual(refused.jobId, undefined)
    assert.deepStrictEqual(refused.errors.map((e) => e.code), [2000])
    assert.deepStrictEqual(d.submitReply(sample("35-submit-invalid-no-environment.json")).errors.map((e) => e.code), [
      2127,
      9001
    ])
  })

  it("reads cancel answers: nothing, an unknown job, a rejected token", () => {
    const d = dialectFor("v0.0.38")
    assert.deepStrictEqual(d.cancelErrors(sample("28-cancel-completed.json")), [])
    assert.deepStrictEqual(d.cancelErrors(sample("30-cancel-unknown-job.json")).map((e) => e.code), [2017])
    assert.deepStrictEqual(d.cancelErrors(sample("53-auth-garbage-token-cancel.json")).map((e) => e.code), [5005])
  })

  it("words errors with description, short text and number", () => {
    assert.deepStrictEqual(envelopeOf(sample("29-get-unknown-job.json")).errors, [
      { code: 2017, text: "Unable to find JobId=999999: Invalid job id specified (Slurm error 2017)" }
    ])
    assert.deepStrictEqual(envelopeOf(sample("49-auth-garbage-token-ping.json")).errors, [
      { code: -1, text: "slurmctld config is unable to load: Unspecified error (Slurm error -1)" }
    ])
    assert.deepStrictEqual(envelopeOf("Unable to parse query."), { errors: [], warnings: [] })
  })

  it("reads the ping", () => {
    assert.deepStrictEqual(Either.getOrThrow(pingsOf(sample("01-ping-v0.0.38.json"))), [{ host: "slurmctl", up: true }])
  })

  it("sends script at the top, environment as an object, plain numbers", () => {
    assert.deepStrictEqual(submitBody("v0.0.38", spec), {
      script: "#!/bin/sh\ntrue\n",
      job: {
        name: "nix-build-hello",
        comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello.drv",
        current_working_directory: "/tmp",
        standard_output: "/tmp/nsh-0123456789abcdef.log",
        environment: { PATH: "/usr/bin:/bin", NIX_REMOTE: "daemon" },
        time_limit: 70,
        memory_per_node: 1024
      }
    })
  })

  it("lets extra fields replace the base ones", () => {
    const job = submitBody("v0.0.38", { ...spec, extra: { time_limit: 5, hold: true } })["job"]
    assert.deepInclude(job, { time_limit: 5, hold: true })
  })
})

describe("v0.0.39 (synthetic)", () => {
  it("decodes the wait status inside a number with flags", () => {
    assert.deepInclude(onlyJob(synthetic("v0.0.39-job-failed-exit3.json")), {
      state: "FAILED",
      exit: { _tag: "Exited", code: 3 }
    })
  })

  it("keeps an unset exit code unknown, and COMPLETING without a base", () => {
    assert.deepInclude(onlyJob(synthetic("v0.0.39-job-completing.json")), {
      state: undefined,
      flags: ["COMPLETING"],
      exit: undefined
    })
  })

  it("reads the job id of an HTTP 500 submit answer that queued a job", () => {
    const reply = dialectFor("v0.0.39").submitReply(synthetic("v0.0.39-submit-partition-config.json"))
    assert.strictEqual(reply.jobId, 12)
    assert.deepStrictEqual(reply.errors.map((e) => e.code), [2015])
  })

  it("sends the script inside job, environment as K=V, numbers with flags", () => {
    assert.deepStrictEqual(submitBody("v0.0.39", spec), {
      job: {
        name: "nix-build-hello",
        comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello.drv",
        current_working_directory: "/tmp",
        standard_output: "/tmp/nsh-0123456789abcdef.log",
        script: "#!/bin/sh\ntrue\n",
        environment: ["PATH=/usr/bin:/bin", "NIX_REMOTE=daemon"],
        time_limit: { set: true, infinite: false, number: 70 },
        memory_per_node: { set: true, infinite: false, number: 1024 }
      }
    })
    assert.deepStrictEqual(submitBody("v0.0.45", spec), submitBody("v0.0.39", spec))
  })
})

describe("v0.0.40 – v0.0.45 (synthetic)", () => {
  it("splits the state list into base state and flags", () => {
    assert.deepInclude(onlyJob(synthetic("v0.0.40-job-cancelled-completing.json")), {
      state: "CANCELLED",
      flags: ["COMPLETING"],
      rawState: "CANCELLED,COMPLETING",
      exit: { _tag: "Signaled", signal: 15 }
    })
    assert.deepInclude(onlyJob(synthetic("v0.0.41-job-pending-requeued.json")), {
      state: "PENDING",
      flags: ["REQUEUED"],
      restartCount: 1,
      exit: undefined,
      batchHost: ""
    })
    assert.deepInclude(onlyJob(synthetic("v0.0.44-job-configuring.json")), { state: "RUNNING", flags: ["CONFIGURING"] })
  })

  it("reads verbose exit codes", () => {
    assert.deepStrictEqual(onlyJob(synthetic("v0.0.42-job-failed-exit3.json")).exit, { _tag: "Exited", code: 3 })
    assert.deepStrictEqual(onlyJob(synthetic("v0.0.45-job-completed.json")).exit, { _tag: "Exited", code: 0 })
    assert.deepStrictEqual(onlyJob(synthetic("v0.0.43-job-node-fail.json")).exit, { _tag: "Signaled", signal: 9 })
    assert.deepInclude(onlyJob(synthetic("v0.0.45-job-out-of-memory.json")), {
      state: "OUT_OF_MEMORY",
      reason: "OutOfMemory"
    })
  })

  it("reads times from numbers with flags", () => {
    assert.deepInclude(onlyJob(synthetic("v0.0.44-job-running.json")), {
      submitTime: 1795583515,
      startTime: 1795583516,
      endTime: 1795587116,
      batchHost: "node1"
    })
  })

  it("reads the submit answer with and without `result`, keeping warnings", () => {
    assert.deepStrictEqual(dialectFor("v0.0.40").submitReply(synthetic("v0.0.40-submit-result.json")), {
      jobId: 40,
      errors: [],
      warnings: ["Requested partition configuration not available now"]
    })
    assert.deepStrictEqual(dialectFor("v0.0.42").submitReply(synthetic("v0.0.42-submit.json")), {
      jobId: 44,
      errors: [],
      warnings: []
    })
    const nested = dialectFor("v0.0.41").submitReply({ result: { job_id: 9 }, errors: [] })
    assert.strictEqual(nested.jobId, 9)
  })

  it("reads per-job cancel failures from status[] (v0.0.42+)", () => {
    assert.deepStrictEqual(dialectFor("v0.0.42").cancelErrors(synthetic("v0.0.42-cancel-unknown.json")), [
      { code: 2017, text: "job 999999: Job not found (Slurm error 2017)" }
    ])
    assert.deepStrictEqual(
      dialectFor("v0.0.43").cancelErrors(synthetic("v0.0.43-cancel-permission.json")).map((e) => e.code),
      [2002]
    )
    assert.deepStrictEqual(dialectFor("v0.0.40").cancelErrors({ errors: [], warnings: [] }), [])
  })

  it("reads pings in each version's words", () => {
    assert.deepStrictEqual(Either.getOrThrow(pingsOf(synthetic("v0.0.41-ping.json"))), [{ host: "slurmctl", up: true }])
    assert.deepStrictEqual(Either.getOrThrow(pingsOf(synthetic("v0.0.45-ping.json"))), [{ host: "slurmctl", up: true }])
    assert.deepStrictEqual(Either.getOrThrow(pingsOf(synthetic("v0.0.45-ping-down.json"))), [{
      host: "slurmctl",
      up: false
    }])
  })

  it("refuses a record without a job id", () => {
    assert.isTrue(Either.isLeft(jobsOf({ jobs: [{ job_state: ["RUNNING"] }] })))
  })
})
