/**
 * Sites hand out short-lived tokens. A token that expires while the job runs is rejected by
 * slurmctld; nsh reads its token file again, finds nothing better at first (it says how to renew
 * and keeps polling), and once the file holds a fresh token it uses that one: the build succeeds
 * with its whole log and leaves nothing behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assertBuiltOnNode1, buildEnv, outputsOf } from "./support/build.js"
import { run } from "./support/cluster.js"
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

/** faults.nix's `log`: 40 lines, 0.5 s apart. */
const ticks = 40

/** A token for the cluster's user living `lifespan` seconds, written as `scontrol token` prints it. */
const writeToken = (file: string, lifespan: number) =>
  Effect.promise(async () => {
    const printed = await run("scontrol", ["token", `lifespan=${lifespan}`])
    assert.strictEqual(printed.code, 0, printed.stderr)
    await writeFile(file, printed.stdout, { mode: 0o600 })
  })

// slurmctld's own word that it rejected an expired token (auth/jwt).
const slurmctldLog = join(process.env["NSH_TEST_LOG"] ?? "/var/log/nsh-test", "slurmctld.log")
const expiredInLog = () =>
  existsSync(slurmctldLog)
    ? readFileSync(slurmctldLog, "utf8").split("\n").filter((l) => /token expired/.test(l)).length
    : 0

describe("a Slurm token that expires mid-build", () => {
  it.scopedLive(
    "rejected, then the rewritten token file's new token is used: the build succeeds and leaves nothing",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("token-renewal")
        const tokenFile = join(env.dir, "slurm.jwt")
        const expiredBefore = expiredInLog()
        yield* writeToken(tokenFile, 10)
        const build = yield* startBuild(env, "log")
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)

        // The job outlives the token: a poll meets the rejection, and nsh says how to renew it.
        const rejected = new RegExp(
          `the Slurm token was rejected by .*: expired at .*scontrol token lifespan=SECONDS > ${tokenFile}`
        )
        yield* waitLine(build, rejected, 60_000)
        yield* writeToken(tokenFile, 600)
        yield* waitLine(
          build,
          new RegExp(`rejected the Slurm token \\(expired at .*\\); using the new one from ${tokenFile}`),
          30_000
        )

        const ended = yield* buildEnded(build, 120_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        assert.deepStrictEqual(tickCounts(ended.stderr, ticks, env.nonce).slice(1), Array(ticks).fill(1), ended.stderr)
        const [content] = yield* assertBuiltOnNode1(yield* outputsOf(job.drvPath))
        assert.strictEqual(content, `node1\n${env.nonce}\n${ticks} ticks\n`)
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
        if (existsSync(slurmctldLog)) {
          assert.isAbove(expiredInLog(), expiredBefore, `slurmctld logged no rejected expired token in ${slurmctldLog}`)
        }
      }),
    240_000
  )
})
