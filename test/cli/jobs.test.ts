/**
 * `nsh jobs [--all]` and `nsh cancel --orphans` as commands (src/cli/Jobs.ts), against a SlurmApi
 * double listing four jobs and a real journal in a temporary state directory. What is checked is
 * what they print about each job and what they do, not the table's layout.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Layer, Ref } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import { cancelOrphans, showJobs } from "../../src/cli/Jobs.js"
import type { Config } from "../../src/config/Config.js"
import { Journal, makeJournal } from "../../src/safety/Journal.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { TestConfig } from "../support/settings.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

const drv = (name: string) => `/nix/store/${"0".repeat(32)}-${name}.drv`
const live = "nsh-00000000000000a1"
const orphan = "nsh-00000000000000b2"
const jobs = [
  jobInfo({ jobId: 11, comment: `nsh:${live} ${drv("live")}`, state: "RUNNING", batchHost: "node1" }),
  jobInfo({ jobId: 12, comment: `nsh:${orphan} ${drv("orphan")}`, state: "PENDING" }),
  jobInfo({ jobId: 13, comment: `nsh:nsh-00000000000000c3 ${drv("done")}`, state: "COMPLETED", batchHost: "node1" }),
  jobInfo({ jobId: 14, comment: "someone else's job", state: "RUNNING", batchHost: "node1" })
]

/** The commands' world: the double, the journal (one live hook's entry, one dead hook's), what was printed. */
const world = Effect.gen(function*() {
  const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "nsh-jobs-" })
  const stateDir = `${dir}/state`
  const cancels = yield* Ref.make<ReadonlyArray<number>>([])
  const printed = yield* Ref.make<ReadonlyArray<string>>([])
  const journal = yield* makeJournal(`${stateDir}/journal`)
  yield* journal.begin({ tag: live, drvPath: drv("live"), outputs: [] })
  yield* journal.update(live, { jobId: 11 })
  yield* journal.begin({ tag: orphan, drvPath: drv("orphan"), outputs: [] })
  yield* journal.update(orphan, { jobId: 12 })
  // The orphan's hook is gone: a pid above any pid_max. Its job left its log in the state directory.
  const file = journal.fileOf(orphan)
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), hookPid: 2 ** 22 + 1 }))
  const orphanLog = `${stateDir}/${orphan}.log`
  writeFileSync(orphanLog, "building\n")
  const api = SlurmApi.of({
    apiVersion: Effect.succeed("v0.0.38"),
    renderSubmission: () => Effect.die("unused"),
    ping: Effect.void,
    submit: () => Effect.die("unused"),
    getJob: (jobId) => Effect.succeed(jobs.find((j) => j.jobId === jobId) ?? jobInfo({ jobId })),
    cancel: (jobId) => Ref.update(cancels, (ids) => [...ids, jobId]),
    listJobs: Effect.succeed(jobs)
  })
  const layer = Layer.mergeAll(
    Layer.succeed(SlurmApi, api),
    Layer.succeed(Journal, journal),
    TestConfig({ slurmStateDir: stateDir }),
    NodeContext.layer
  )
  const console: Console.Console = {
    ...(yield* Effect.console),
    log: (...args) => Ref.update(printed, (all) => [...all, ...args.join(" ").split("\n")])
  }
  /** Runs a command; returns the lines it printed. */
  const command = <A, E>(effect: Effect.Effect<A, E, Config | SlurmApi | Journal | FileSystem.FileSystem>) =>
    Effect.gen(function*() {
      yield* Ref.set(printed, [])
      yield* effect.pipe(Effect.provide(layer), Effect.withConsole(console))
      return yield* Ref.get(printed)
    })
  return { command, cancels, journal, orphanLog }
}).pipe(Effect.provide(NodeContext.layer))

const lineOf = (lines: ReadonlyArray<string>, jobId: number) =>
  lines.find((l) => new RegExp(`(^|\\s)${jobId}(\\s|$)`).test(l))

describe("nsh jobs", () => {
  it.scopedLive("shows another login host's job as on that host, and cancel --orphans leaves it alone", () =>
    Effect.gen(function*() {
      const { cancels, command, journal, orphanLog } = yield* world
      const file = journal.fileOf(orphan)
      const entry = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>
      for (
        const [moved, shown] of [
          [{ host: "login2" }, "on login2"],
          [{ pidNamespace: "pid:[4026532999]" }, `on ${Os.hostname()} (pid:[4026532999])`]
        ] as const
      ) {
        // Its hook's pid is dead here, which says nothing about a process in another namespace.
        writeFileSync(file, JSON.stringify({ ...entry, ...moved }))
        const lines = yield* command(showJobs({ all: false, json: false }))
        assert.include(lineOf(lines, 12), shown, lines.join("\n"))
        yield* command(cancelOrphans)
        assert.deepStrictEqual(yield* Ref.get(cancels), [])
        assert.isTrue(existsSync(orphanLog))
        assert.isTrue(existsSync(file))
      }
    }))

  it.scopedLive("lists nsh's pending and running jobs with state, node, derivation and the hook's pid when alive", () =>
    Effect.gen(function*() {
      const { command } = yield* world
      const lines = yield* command(showJobs({ all: false, json: false }))
      const running = lineOf(lines, 11) ?? assert.fail(`job 11 not listed:\n${lines.join("\n")}`)
      for (const part of ["RUNNING", "node1", String(process.pid)]) assert.include(running, part)
      // The table names the derivation (the last column); --json has the whole path.
      assert.isTrue(running.endsWith(" live"), running)
      const pending = lineOf(lines, 12) ?? assert.fail(`job 12 not listed:\n${lines.join("\n")}`)
      assert.include(pending, "PENDING")
      assert.isTrue(pending.endsWith(" orphan"), pending)
      assert.notInclude(pending, String(2 ** 22 + 1), "a dead hook shown by its pid, as if alive")
      assert.isUndefined(lineOf(lines, 13), "a finished job listed without --all")
      assert.isUndefined(lineOf(lines, 14), "a job that is not nsh's listed")
    }))

  it.scopedLive("with --all, also the finished jobs Slurm still remembers", () =>
    Effect.gen(function*() {
      const { command } = yield* world
      const lines = yield* command(showJobs({ all: true, json: false }))
      assert.isDefined(lineOf(lines, 11))
      assert.isDefined(lineOf(lines, 12))
      const done = lineOf(lines, 13) ?? assert.fail(`job 13 not listed:\n${lines.join("\n")}`)
      assert.include(done, "COMPLETED")
      assert.isTrue(done.endsWith(" done"), done)
      assert.isUndefined(lineOf(lines, 14))
    }))
})

describe("nsh cancel --orphans", () => {
  it.scopedLive("cancels only the jobs whose hook is gone, removes their files and records, and says which", () =>
    Effect.gen(function*() {
      const { cancels, command, journal, orphanLog } = yield* world
      const lines = yield* command(cancelOrphans)
      assert.deepStrictEqual(yield* Ref.get(cancels), [12])
      assert.isTrue(lines.some((l) => l.includes("12") && l.includes(drv("orphan"))), lines.join("\n"))
      assert.isFalse(existsSync(orphanLog), "the orphan's log is still there")
      assert.deepStrictEqual((yield* journal.list).map((e) => e.tag), [live])
      // Nothing left to do the second time.
      yield* command(cancelOrphans)
      assert.deepStrictEqual(yield* Ref.get(cancels), [12])
    }))
})
