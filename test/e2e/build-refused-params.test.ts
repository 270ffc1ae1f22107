/**
 * Derivations choose resources, not identity: a derivation whose extraSlurmParams sets
 * `environment.PATH`, `user_id` or `current_working_directory` is refused with a message naming
 * the field, its build fails, and nothing is submitted or built here instead.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildEnv, nshBuild, submittedJobs } from "./support/build.js"

describe("nsh refusing a derivation's identity fields", () => {
  for (
    const [attr, named] of [
      ["refusedPath", "environment.PATH"],
      ["refusedUser", `"user_id"`],
      ["refusedCwd", `"current_working_directory"`]
    ] as const
  ) {
    it.scopedLive(
      `${attr}: the build fails naming ${named}; nothing submitted, nothing built locally`,
      () =>
        Effect.gen(function*() {
          const env = yield* buildEnv("refused-params")
          const build = yield* nshBuild(env, attr, [], 60_000)
          assert.notStrictEqual(build.code, 0, build.stderr)
          assert.include(build.stderr, "nsh: refusing to build '", build.stderr)
          assert.include(build.stderr, `the derivation's extraSlurmParams sets ${named}`, build.stderr)
          assert.match(build.stderr, /slurm-(derivation-params|extra-submission-params)/)
          assert.deepStrictEqual(submittedJobs(build), [])
          // Declined, Nix would have built it here (max-jobs 1): its script never ran.
          assert.notInclude(build.stderr, "refused-build: ran")
          assert.strictEqual(build.stdout.trim(), "")
        }),
      90_000
    )
  }
})
