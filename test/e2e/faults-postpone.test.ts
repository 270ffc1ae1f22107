/**
 * Passing faults before the submit (issue 11, item 6): slurmrestd gone, the token file being
 * rewritten. nsh answers Nix `postpone` (Nix asks again every build-poll-interval) instead of
 * declining, and builds once the fault has passed; nothing is left behind. Also a derivation with
 * three outputs, whose GC roots on the node must all go (item 4).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assertBuiltOnNode1, buildEnv, outputsOf } from "./support/build.js"
import {
  assertNothingLeft,
  buildEnded,
  hookOf,
  slurmrestdAnswers,
  startBuild,
  stopSlurmrestd,
  submission,
  waitLine
} from "./support/faults.js"

const postponing = /nsh: postponing '\S+-nsh-faults-quick\.drv' \(Nix asks again; at most 300 s\): (.*)$/

describe("nsh postponing through passing faults", () => {
  it.scopedLive(
    "slurmrestd gone when Nix offers the derivation: postpones, builds once it is back",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("postpone-rest")
        const outage = yield* stopSlurmrestd
        assert.isFalse(yield* slurmrestdAnswers, "slurmrestd still answers")
        const build = yield* startBuild(env, "quick")
        const [, why] = yield* waitLine(build, postponing, 120_000)
        assert.include(why, "cannot reach slurmrestd", build.stderr())
        const hookPid = yield* hookOf(build.pid)
        // Nix asks again every 5 s (build-poll-interval): a few more postpones.
        yield* Effect.sleep("12 seconds")
        yield* outage.restore

        const job = yield* submission(build)
        const ended = yield* buildEnded(build, 180_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        assert.notMatch(ended.stderr, /not building .* on the cluster/, ended.stderr)
        const [content] = yield* assertBuiltOnNode1(yield* outputsOf(job.drvPath))
        assert.strictEqual(content, `node1\n${env.nonce}\n`)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid })
      }),
    300_000
  )

  it.scopedLive(
    "the token file empty (being rewritten) when Nix offers the derivation: postpones, then builds",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("postpone-token")
        const tokenFile = join(env.dir, "slurm.jwt")
        const token = yield* Effect.promise(() => readFile(tokenFile, "utf8"))
        yield* Effect.promise(() => writeFile(tokenFile, ""))
        const build = yield* startBuild(env, "quick")
        const [, why] = yield* waitLine(build, postponing, 120_000)
        assert.include(why, `cannot read the Slurm token file '${tokenFile}' (it is empty)`, build.stderr())
        yield* Effect.promise(() => writeFile(tokenFile, token))

        const job = yield* submission(build)
        const ended = yield* buildEnded(build, 180_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        assert.notMatch(ended.stderr, /nsh\.conf is invalid/, ended.stderr)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag] })
      }),
    300_000
  )

  it.scopedLive(
    "three outputs: all come back, and no GC root of any of them is left on the node",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("multi-output")
        const build = yield* startBuild(env, "multi")
        const job = yield* submission(build)
        const ended = yield* buildEnded(build, 180_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        const outputs = yield* outputsOf(job.drvPath)
        assert.lengthOf(outputs, 3)
        yield* assertBuiltOnNode1(outputs)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag] })
      }),
    300_000
  )
})
