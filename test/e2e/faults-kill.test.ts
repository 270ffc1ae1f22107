/**
 * nsh leaves nothing behind when its build is killed (issue 5): in each phase of a build (pending
 * in the queue, copying inputs, building, copying outputs) the hook is killed the ways Nix kills
 * it — SIGKILL to its process group (Nix 2.3–2.34), SIGINT to nix-build (Nix 2.8 then SIGKILLs
 * the group), SIGTERM to the group then SIGKILL 500 ms later (Nix 2.35) — and afterwards the job
 * has left squeue, its files and journal entry are gone, and so are the hook and its watchdog.
 * In the SIGTERM case the watchdog is stopped meanwhile: the job must be cancelled by the hook's
 * own finalizers, inside the grace. Prints the time from the signal to the job leaving squeue.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, type Scope } from "effect"
import { performance } from "node:perf_hooks"
import { type BuildEnv, buildEnv, type LiveBuild, scontrolJob } from "./support/build.js"
import {
  assertNothingLeft,
  bigInputArgs,
  buildEnded,
  childRunning,
  fillNode1,
  forgetStorePaths,
  freezeWatchdog,
  goneFromQueue,
  hookOf,
  journalEntry,
  killHookGroup,
  processesMentioning,
  queueState,
  startBuild,
  submission,
  waitLine,
  watchdogOf
} from "./support/faults.js"

/** How to bring a build of faults.nix into a phase, and how to tell afterwards that it was still in it. */
interface Phase {
  readonly attr: string
  /** Prepares the cluster or the inputs; returns extra nix-build arguments. */
  readonly setup: (env: BuildEnv) => Effect.Effect<ReadonlyArray<string>, never, Scope.Scope>
  /** Resolves once the build is in the phase. */
  readonly reach: (build: LiveBuild, jobId: number, hookPid: number) => Effect.Effect<void>
  /** A line that would show the phase was over when the signal came. */
  readonly over: RegExp
  /** Whether the job's processes on node1 (`tail -F` of its log, the build) name its tag in this phase. */
  readonly onNode: boolean
  /** Whether the job is still in Slurm's queue in this phase, so someone must cancel it. */
  readonly jobAlive: boolean
}

const noSetup = () => Effect.succeed([])

const phases: Record<string, Phase> = {
  pending: {
    attr: "quick",
    setup: () => Effect.as(fillNode1, []),
    reach: (_, jobId) =>
      Effect.gen(function*() {
        // slurmctld has tried to start it and found node1 taken: pending with a reason.
        yield* scontrolJob(jobId).pipe(
          Effect.repeat({
            until: (job) => job["JobState"] === "PENDING" && /^(Resources|Priority)$/.test(job["Reason"] ?? ""),
            schedule: Schedule.spaced("100 millis")
          }),
          Effect.timeout("30 seconds"),
          Effect.orElse(() =>
            Effect.sync(() => assert.fail(`job ${jobId} not pending for Resources or Priority within 30 s`))
          )
        )
        assert.strictEqual(yield* queueState(jobId), "PENDING")
      }),
    over: /^nsh: Slurm job \d+ is running on /,
    onNode: false,
    jobAlive: true
  },
  "copying inputs": {
    attr: "bigInput",
    setup: bigInputArgs,
    // The bytes flow: the hook's `nix-store --export` runs.
    reach: (build, _, hookPid) =>
      Effect.zipRight(
        waitLine(build, /^copying inputs to node1\.\.\.$/, 120_000),
        childRunning(hookPid, "--export", 60_000)
      ),
    over: /^nsh: copied \d+ paths/,
    onNode: true,
    jobAlive: true
  },
  building: {
    attr: "building",
    setup: noSetup,
    reach: (build) => Effect.asVoid(waitLine(build, /^tick 3\/120 /, 120_000)),
    over: /^tick 120\/120 /,
    onNode: true,
    jobAlive: true
  },
  "copying outputs": {
    attr: "bigOutput",
    setup: noSetup,
    // The bytes flow: the hook's `nix-store --restore` runs.
    reach: (build, _, hookPid) =>
      Effect.zipRight(
        waitLine(build, /^copying outputs from node1\.\.\.$/, 120_000),
        childRunning(hookPid, "--restore", 60_000)
      ),
    over: /^nsh: copied \d+ outputs/,
    // The job has ended: the outputs come from node1's store.
    onNode: false,
    jobAlive: false
  }
}

type Strike =
  | "SIGKILL to the hook's group"
  | "SIGINT to nix-build"
  | "SIGTERM to the hook's group, SIGKILL 500 ms later"
  | "SIGHUP to the hook's group"

const matrix: ReadonlyArray<readonly [string, Strike]> = [
  ...Object.keys(phases).flatMap((phase) =>
    ([
      "SIGKILL to the hook's group",
      "SIGINT to nix-build",
      "SIGTERM to the hook's group, SIGKILL 500 ms later"
    ] as const).map(
      (strike) => [phase, strike] as const
    )
  ),
  ["building", "SIGHUP to the hook's group"]
]

const measured: Array<string> = []

afterAll(() => {
  console.info(`[faults-kill] signal -> job gone from squeue:\n${measured.join("\n")}`)
})

describe("nsh killed mid-build leaves nothing behind", () => {
  for (const [name, strike] of matrix) {
    const phase = phases[name]!
    it.scopedLive(`${name}: ${strike}`, () =>
      Effect.gen(function*() {
        const env = yield* buildEnv(`kill-${name.replace(/ /g, "-")}`)
        const args = yield* phase.setup(env)
        const build = yield* startBuild(env, phase.attr, args)
        const job = yield* submission(build)
        yield* Effect.addFinalizer(() => forgetStorePaths(job.drvPath))
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)
        const entry = yield* journalEntry(env, job.tag)
        assert.strictEqual(entry?.jobId, job.jobId, `the journal does not record job ${job.jobId}`)
        assert.strictEqual(entry?.hookPid, hookPid)

        yield* phase.reach(build, job.jobId, hookPid)
        // The check for leftover processes can see them (node1 shares this pid namespace).
        if (phase.onNode) assert.isNotEmpty(processesMentioning(job.tag), `no process on node1 names ${job.tag}`)
        const struckAt = performance.now()
        let followedBySigkill = false
        if (strike === "SIGINT to nix-build") process.kill(build.pid, "SIGINT")
        else if (strike === "SIGKILL to the hook's group") yield* killHookGroup(hookPid, "SIGKILL")
        else if (strike === "SIGHUP to the hook's group") yield* killHookGroup(hookPid, "SIGHUP")
        else {
          // With the watchdog stopped, only the hook's own finalizers can cancel the job.
          const thaw = yield* freezeWatchdog(watchdogPid)
          followedBySigkill = yield* killHookGroup(hookPid, "nix-2.35")
          if (phase.jobAlive) {
            // Well inside job-lease-timeout (60 s): a job nobody cancelled would still be there.
            yield* goneFromQueue(job.jobId, struckAt, 20_000)
            const state = (yield* scontrolJob(job.jobId))["JobState"]
            assert.strictEqual(state, "CANCELLED", `job ${job.jobId} was not cancelled by the hook's finalizers`)
          }
          yield* thaw
        }

        const goneMs = yield* goneFromQueue(job.jobId, struckAt)
        const ended = yield* buildEnded(build, 60_000)
        const endedMs = ended.wallMs - (struckAt - build.startedAt)
        assert.notStrictEqual(ended.code, 0, `nix-build succeeded although its hook was killed:\n${ended.stderr}`)
        assert.isFalse(
          ended.lines.some((l) => phase.over.test(l.text) && l.atMs < struckAt - build.startedAt),
          `the build had left the phase "${name}" before the signal:\n${ended.stderr}`
        )
        const cleanAt = yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })

        const line =
          `  ${name.padEnd(16)} ${strike.padEnd(52)} job ${job.jobId} gone after ${(goneMs / 1000).toFixed(2)} s; ` +
          `nix-build exit ${ended.code ?? ended.signal} after ${(endedMs / 1000).toFixed(2)} s; ` +
          `all clean after ${((cleanAt - struckAt) / 1000).toFixed(1)} s` +
          (strike.startsWith("SIGTERM")
            ? (followedBySigkill ? "; SIGKILL was needed" : "; the hook exited within 500 ms")
            : "")
        measured.push(line)
        console.info(`[faults-kill]${line}`)
      }), 240_000)
  }
})
