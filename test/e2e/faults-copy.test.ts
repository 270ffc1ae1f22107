/**
 * Faults while the closures move (issue 11's fault table, "SSH cut" and "node failure" during
 * copying in and copying out). While the job is pending nsh has no connection to cut: it connects
 * once the job runs. The SSH connection cut mid-copy: nsh reconnects and copies again, the build
 * succeeds. node1 set DOWN mid-copy-in: Slurm ends the job (NODE_FAIL or a requeue), nsh submits
 * the build again, and it succeeds. node1 set DOWN mid-copy-out: the job still holds its allocation
 * (until the hook removes the lease), so Slurm requeues it; the copy goes on over SSH, the build
 * succeeds and nsh cancels the requeued job. Each leaves nothing behind, and checks that the copy had
 * started and not ended when the fault came.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { type BuildEnv, buildEnv, type LiveBuild, outputsOf, validOnNode1 } from "./support/build.js"
import { run } from "./support/cluster.js"
import {
  assertNothingLeft,
  bigInputArgs,
  buildEnded,
  childRunning,
  cutSshConnections,
  forgetStorePaths,
  hookOf,
  node1Failure,
  printRow,
  startBuild,
  submission,
  waitLine
} from "./support/faults.js"

interface CopyPhase {
  readonly attr: "bigInput" | "bigOutput"
  readonly started: RegExp
  /** The hook's child process that carries the bytes while the copy runs. */
  readonly child: "--export" | "--restore"
  readonly over: RegExp
}

const copyIn: CopyPhase = {
  attr: "bigInput",
  started: /^copying inputs to node1\.\.\.$/,
  child: "--export",
  over: /^nsh: copied \d+ paths/
}
const copyOut: CopyPhase = {
  attr: "bigOutput",
  started: /^copying outputs from node1\.\.\.$/,
  child: "--restore",
  over: /^nsh: copied \d+ outputs/
}

/** Starts the phase's build and returns once its bytes flow (the hook's nix-store child runs). */
const inCopy = (env: BuildEnv, phase: CopyPhase) =>
  Effect.gen(function*() {
    const args = phase.attr === "bigInput" ? yield* bigInputArgs(env) : []
    const build = yield* startBuild(env, phase.attr, args)
    const job = yield* submission(build)
    yield* Effect.addFinalizer(() => forgetStorePaths(job.drvPath))
    const hookPid = yield* hookOf(build.pid)
    yield* waitLine(build, phase.started, 120_000)
    yield* childRunning(hookPid, phase.child, 60_000)
    return { build, job, hookPid }
  })

/** Asserts that the copy had not ended at `at` (performance.now()): the fault came in the phase. */
const assertStillCopying = (build: LiveBuild, phase: CopyPhase, at: number) =>
  assert.isFalse(
    build.lines.some((l) => phase.over.test(l.text) && l.atMs < at - build.startedAt),
    `the copy was over before the fault:\n${build.stderr()}`
  )

/** The build's output is valid here, with its recorded hash, and was built on node1. */
const assertOutput = (drvPath: string, env: BuildEnv) =>
  Effect.gen(function*() {
    const [out] = yield* outputsOf(drvPath)
    const verified = yield* Effect.promise(() => run("nix-store", ["--verify-path", out!]))
    assert.strictEqual(verified.code, 0, `${out} does not match its recorded hash: ${verified.stderr}`)
    const head = yield* Effect.promise(() => run("head", ["-c", "200", out!]))
    assert.isTrue(head.stdout.startsWith(`node1\n${env.nonce}\n`), head.stdout.slice(0, 80))
    assert.isTrue(yield* validOnNode1(out!))
  })

describe("faults while copying", () => {
  for (const phase of [copyIn, copyOut]) {
    const name = phase === copyIn ? "copying inputs" : "copying outputs"
    it.scopedLive(
      `${name}: the SSH connection cut; nsh reconnects, copies again and the build succeeds`,
      () =>
        Effect.gen(function*() {
          const env = yield* buildEnv(`cut-${phase.attr}`)
          const { build, job, hookPid } = yield* inCopy(env, phase)
          const cutAt = performance.now()
          const killed = yield* cutSshConnections(hookPid)
          assertStillCopying(build, phase, cutAt)
          console.info(`[faults-copy] ${name}: killed node1's sshd processes ${killed.join("; ")}`)

          const ended = yield* buildEnded(build, 180_000)
          printRow("faults-copy", `SSH cut x ${name}`, ended)
          assert.strictEqual(ended.code, 0, ended.stderr)
          assert.match(ended.stderr, /^nsh: lost the connection to node1 \(.*\); reconnecting$/m)
          yield* assertOutput(job.drvPath, env)
          yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid })
        }),
      240_000
    )

    it.scopedLive(`${name}: node1 set DOWN; the build succeeds`, () =>
      Effect.gen(function*() {
        const env = yield* buildEnv(`down-${phase.attr}`)
        const { build, job, hookPid } = yield* inCopy(env, phase)
        const downAt = performance.now()
        yield* node1Failure("2 seconds")
        assertStillCopying(build, phase, downAt)

        const ended = yield* buildEnded(build, 180_000)
        printRow("faults-copy", `node1 DOWN x ${name}`, ended)
        assert.strictEqual(ended.code, 0, ended.stderr)
        const jobs = [job]
        if (phase === copyIn) {
          // Slurm ended the job under the copy: nsh says so and submits the build again.
          assert.match(
            ended.stderr,
            /^nsh: Slurm job \d+ .*; submitting the build again \(attempt 2 of \d+\)$/m,
            ended.stderr
          )
          jobs.push(yield* submission(build, 2))
        }
        yield* assertOutput(job.drvPath, env)
        yield* assertNothingLeft(env, { jobIds: jobs.map((j) => j.jobId), tags: jobs.map((j) => j.tag), hookPid })
      }), 240_000)
  }
})
