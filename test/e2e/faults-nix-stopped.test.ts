/**
 * Nix not reading while a chatty build runs (nix-build stopped, as with ctrl-z): the hook's
 * writes to Nix must not block it, so it keeps polling and renewing the job's lease. With
 * job-lease-timeout = 10 and nix-build stopped for 25 s while the build prints far more than a
 * pipe holds, the job must not give up: once nix-build continues, every line arrives exactly
 * once and the build succeeds, leaving nothing behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { buildEnv, endedJob } from "./support/build.js"
import {
  assertNothingLeft,
  buildEnded,
  hookOf,
  startBuild,
  submission,
  tickCounts,
  waitLine,
  watchdogOf
} from "./support/faults.js"

const leaseTimeout = 10
const ticks = 12000

describe("Nix not reading during a chatty build", () => {
  it.scopedLive(
    `nix-build stopped for 25 s (job-lease-timeout ${leaseTimeout}) while the build prints ${ticks} lines: the job lives on, every line arrives once, the build succeeds`,
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("nix-stopped", `job-lease-timeout = ${leaseTimeout}`)
        const build = yield* startBuild(env, "chatty")
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)
        yield* waitLine(build, new RegExp(`^tick 1/${ticks} `), 60_000)

        // The fault: Nix reads nothing for 25 s, more than twice the lease timeout.
        // (If the test fails meanwhile, startBuild's finalizer kills the stopped nix-build.)
        process.kill(build.pid, "SIGSTOP")
        yield* Effect.sleep("25 seconds")
        process.kill(build.pid, "SIGCONT")

        const ended = yield* buildEnded(build, 120_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        const counts = tickCounts(ended.stderr, ticks, env.nonce).slice(1)
        const wrong = counts.flatMap((n, i) => (n === 1 ? [] : [`tick ${i + 1}: ${n}`]))
        assert.deepStrictEqual(wrong.slice(0, 10), [], `${wrong.length} ticks not seen exactly once`)
        const out = ended.stdout.trim()
        assert.match(out, /^\/nix\/store\/[a-z0-9]{32}-nsh-faults-chatty$/)
        assert.include(yield* Effect.promise(() => readFile(out, "utf8")), `${ticks} ticks`)
        // The job ended by itself, with the build's success: its lease never lapsed.
        const info = yield* endedJob(job.jobId)
        assert.strictEqual(info["JobState"], "COMPLETED", JSON.stringify(info))
        assert.strictEqual(info["ExitCode"], "0:0")
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    240_000
  )
})
