import { describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { assert } from "vitest"
import type { JobSpec } from "../../src/slurm/JobSpec.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { RecordedSubmissions, renderVersion, SlurmApiRecording } from "../../src/slurm/SlurmApiRecording.js"
import { TestConfig } from "../support/settings.js"

const spec: JobSpec = {
  name: "nix-build-x",
  comment: "nsh:nsh-0123456789abcdef /nix/store/x.drv",
  script: "#!/bin/sh\n",
  currentWorkingDirectory: "/tmp",
  environment: { PATH: "/bin" },
  standardOutput: "/s/nsh-0123456789abcdef.log",
  timeLimitMinutes: 60,
  extra: { partition: "debug" }
}

describe("SlurmApiRecording", () => {
  it.effect("records submissions instead of sending them", () =>
    Effect.gen(function*() {
      const api = yield* SlurmApi
      const first = yield* api.submit(spec)
      const second = yield* api.submit(spec)
      assert.deepStrictEqual([first.jobId, second.jobId], [1, 2])
      const recorded = yield* Ref.get(yield* RecordedSubmissions)
      assert.lengthOf(recorded, 2)
      assert.strictEqual(recorded[0]?.url, "http://slurm.example:6820/slurm/v0.0.40/job/submit")
      // v0.0.40's shape, written out: the script inside `job`, the environment as K=V, the time limit as a {set, number}.
      assert.deepStrictEqual(recorded[0]?.body, {
        job: {
          name: "nix-build-x",
          comment: "nsh:nsh-0123456789abcdef /nix/store/x.drv",
          current_working_directory: "/tmp",
          standard_output: "/s/nsh-0123456789abcdef.log",
          script: "#!/bin/sh\n",
          environment: ["PATH=/bin"],
          time_limit: { set: true, infinite: false, number: 60 },
          partition: "debug"
        }
      })
      assert.strictEqual(yield* api.apiVersion, "v0.0.40")
    }).pipe(
      Effect.provide(SlurmApiRecording),
      Effect.provide(TestConfig({ slurmApiHost: "slurm.example", slurmApiVersion: "v0.0.40" }))
    ))

  it.effect("refuses every call that needs an answer, saying that a dry run contacts nothing", () =>
    Effect.gen(function*() {
      const api = yield* SlurmApi
      const errors = yield* Effect.all(
        [api.ping, api.getJob(7), api.cancel(7), api.listJobs].map((e) => Effect.flip(e))
      )
      for (const error of errors) assert.include(error.message, "a dry run contacts nothing")
    }).pipe(Effect.provide(SlurmApiRecording), Effect.provide(TestConfig())))

  it("renders auto as v0.0.38 (the body every version accepts) and says so", () => {
    const auto = renderVersion("auto")
    assert.strictEqual(auto.version, "v0.0.38")
    assert.include(auto.note, "every version")
    assert.deepStrictEqual(renderVersion("v0.0.44"), { version: "v0.0.44", note: undefined })
  })
})
