/**
 * Faults a build should ride out: slurmrestd restarting while nsh polls the job, the SSH
 * connection to node1 cut while the log streams, and node1 going down under the job (Slurm
 * requeues it or marks it NODE_FAIL; nsh submits again). Each build still succeeds with the same
 * output and the full log, and leaves nothing behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { assertBuiltOnNode1, buildEnv, outputsOf } from "./support/build.js"
import { waitFor } from "./support/cluster.js"
import {
  assertNothingLeft,
  buildEnded,
  cutSshConnections,
  hookOf,
  node1Failure,
  slurmrestdAnswers,
  standInForSlurmrestd,
  startBuild,
  stopSlurmrestd,
  submission,
  tickCounts,
  waitLine,
  watchdogOf
} from "./support/faults.js"

/** faults.nix's `log`: 40 lines, 0.5 s apart. */
const ticks = 40

describe("nsh riding out transient faults", () => {
  it.scopedLive("slurmrestd restarting mid-build: the build succeeds with its whole log", () =>
    Effect.gen(function*() {
      const env = yield* buildEnv("transient-rest")
      const build = yield* startBuild(env, "log")
      const job = yield* submission(build)
      const hookPid = yield* hookOf(build.pid)
      const watchdogPid = yield* watchdogOf(hookPid)
      yield* waitLine(build, new RegExp(`^tick 3/${ticks} `), 120_000)

      const outage = yield* stopSlurmrestd
      const standIn = yield* standInForSlurmrestd
      assert.isFalse(yield* slurmrestdAnswers, "slurmrestd still answers")
      // nsh polls a running job every 2 s: the outage lasts until three of its requests met it
      // (the stand-in resets them) and nsh had to retry.
      const met = yield* Effect.promise(() =>
        waitFor(() => standIn.arrivals.filter((at) => at > outage.stoppedAt).length >= 3, 60_000, "polls", 50).then(
          () => true,
          () => false
        )
      )
      assert.isTrue(
        met,
        `only ${standIn.arrivals.length} of nsh's requests reached slurmrestd's port during the outage`
      )
      yield* standIn.close
      yield* outage.restore
      const restoredAt = performance.now()

      const ended = yield* buildEnded(build, 120_000)
      assert.strictEqual(ended.code, 0, ended.stderr)
      // The log kept flowing (over SSH) while slurmrestd was away.
      const during = ended.lines.filter(
        (l) =>
          l.text.startsWith("tick ") && l.atMs > outage.stoppedAt - build.startedAt &&
          l.atMs < restoredAt - build.startedAt
      )
      assert.isNotEmpty(during, ended.stderr)
      assert.deepStrictEqual(tickCounts(ended.stderr, ticks, env.nonce).slice(1), Array(ticks).fill(1), ended.stderr)
      const [content] = yield* assertBuiltOnNode1(yield* outputsOf(job.drvPath))
      assert.strictEqual(content, `node1\n${env.nonce}\n${ticks} ticks\n`)
      yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
    }), 240_000)

  it.scopedLive(
    "the SSH connection to node1 cut mid-log: nsh reconnects and resumes the log, nothing lost or repeated",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("transient-ssh")
        const build = yield* startBuild(env, "log")
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)
        yield* waitLine(build, new RegExp(`^tick 5/${ticks} `), 120_000)

        const killed = yield* cutSshConnections(hookPid)
        console.info(`[faults-transient] killed node1's sshd processes of the hook's connections: ${killed.join("; ")}`)

        const ended = yield* buildEnded(build, 120_000)
        assert.strictEqual(ended.code, 0, ended.stderr)
        assert.match(ended.stderr, /^nsh: lost the connection to node1 \(.*\); reconnecting$/m, ended.stderr)
        assert.deepStrictEqual(tickCounts(ended.stderr, ticks, env.nonce).slice(1), Array(ticks).fill(1), ended.stderr)
        const [content] = yield* assertBuiltOnNode1(yield* outputsOf(job.drvPath))
        assert.strictEqual(content, `node1\n${env.nonce}\n${ticks} ticks\n`)
        // Includes the node side: no `tail -F` of the old connection may linger on node1.
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    240_000
  )

  it.scopedLive(
    "node1 down under the running job: nsh submits again and the build succeeds",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("transient-node")
        const build = yield* startBuild(env, "log")
        const first = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        yield* waitLine(build, new RegExp(`^tick 3/${ticks} `), 120_000)

        yield* node1Failure("1 second")

        const ended = yield* buildEnded(build, 180_000)
        const second = ended.code === 0 ? yield* submission(build, 2) : undefined
        assert.strictEqual(
          ended.code,
          0,
          `nsh did not recover from node1 going down under job ${first.jobId} (Slurm requeues it or ends it with NODE_FAIL; ` +
            `nsh should submit the build again). nix-build said:\n${ended.stderr}`
        )
        const resubmit = ended.stderr.match(/^nsh: Slurm job \d+ .*; submitting the build again \(attempt 2 of \d+\)$/m)
        assert.isNotNull(resubmit, ended.stderr)
        console.info(
          `[faults-transient] node1 down under job ${first.jobId}: ${resubmit![0]}; job ${second!.jobId} built it`
        )
        // The second job's log is whole: each line after the resubmission exactly once.
        const resubmittedAt = ended.stderr.indexOf(`as Slurm job ${second!.jobId}`)
        assert.deepStrictEqual(
          tickCounts(ended.stderr.slice(resubmittedAt), ticks, env.nonce).slice(1),
          Array(ticks).fill(1),
          ended.stderr
        )
        const [content] = yield* assertBuiltOnNode1(yield* outputsOf(first.drvPath))
        assert.strictEqual(content, `node1\n${env.nonce}\n${ticks} ticks\n`)
        yield* assertNothingLeft(env, { jobIds: [first.jobId, second!.jobId], tags: [first.tag, second!.tag], hookPid })
      }),
    300_000
  )
})
