/**
 * The orphan reaper (src/safety/Reaper.ts) on a real journal and state directory, with a SlurmApi
 * double: what it cancels, and which files it removes.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import * as Os from "node:os"
import { allJobFiles, jobFiles } from "../../src/job/JobFiles.js"
import { jobComment } from "../../src/job/JobTag.js"
import { Journal, type JournalEntry, makeJournal, processIdentity, thisLoginHost } from "../../src/safety/Journal.js"
import { reapOrphans } from "../../src/safety/Reaper.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { SlurmJobNotFound } from "../../src/slurm/SlurmErrors.js"
import { TestConfig } from "../support/settings.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

const drvPath = "/nix/store/00000000000000000000000000000000-hello.drv"

const dead = Effect.gen(function*() {
  const me = yield* processIdentity(process.pid)
  if (me._tag === "None") return assert.fail("no /proc")
  // A hook that ran here and is gone (spawnSync waits for it).
  return {
    host: Os.hostname(),
    pidNamespace: (yield* thisLoginHost).pidNamespace,
    hookPid: spawnSync("true").pid!,
    hookStartTicks: me.value.startTicks,
    bootId: me.value.bootId
  }
})

describe("reapOrphans", () => {
  it.scoped("cancels only jobs that still carry a dead hook's tag, and removes every file of its job", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-reaper-" })
      const stateDir = `${dir}/state`
      const journal = yield* makeJournal(`${stateDir}/journal`)
      const hook = yield* dead
      const [reused, recorded, unreported, other] = [
        "nsh-0000000000000001",
        "nsh-0000000000000002",
        "nsh-0000000000000003",
        "nsh-ffffffffffffffff"
      ]
      const entry = (tag: string, jobId?: number): JournalEntry => ({
        tag,
        drvPath,
        outputs: ["out", "dev", "lib"],
        ...hook,
        createdAt: 0,
        ...(jobId === undefined ? {} : { jobId })
      })
      yield* fs.makeDirectory(`${stateDir}/journal`, { recursive: true })
      // Job 42 now belongs to someone else (a controller reset); 7 is still the entry's; the last hook
      // died before it learned its job's id.
      const entries = [entry(reused, 42), entry(recorded, 7), entry(unreported)]
      yield* Effect.forEach(entries, (e) => fs.writeFileString(journal.fileOf(e.tag), JSON.stringify(e)), {
        discard: true
      })
      const files = entries.flatMap((e) => allJobFiles(jobFiles(stateDir, e.tag), e.outputs))
      const othersFile = `${jobFiles(stateDir, other).root}-dev`
      yield* Effect.forEach([...files, othersFile], (f) => fs.writeFileString(f, ""), { discard: true })

      const calls = yield* Ref.make<ReadonlyArray<string>>([])
      const call = (what: string) => Ref.update(calls, (all) => [...all, what])
      const jobs = new Map([
        [42, jobInfo({ jobId: 42, comment: "someone else's job" })],
        [7, jobInfo({ jobId: 7, comment: jobComment(recorded, drvPath) })]
      ])
      const api = SlurmApi.of({
        apiVersion: Effect.succeed("v0.0.38"),
        renderSubmission: () => Effect.die("unused"),
        ping: Effect.void,
        submit: () => Effect.die("unused"),
        getJob: (id) => Effect.as(call(`get ${id}`), jobs.get(id)!),
        cancel: (id) => call(`cancel ${id}`),
        listJobs: Effect.as(call("list"), [
          jobInfo({ jobId: 9, comment: jobComment(unreported, drvPath) }),
          jobInfo({ jobId: 8, comment: jobComment(other, drvPath) })
        ])
      })
      const reaped = yield* reapOrphans.pipe(
        Effect.provide(Layer.mergeAll(
          Layer.succeed(SlurmApi, api),
          Layer.succeed(Journal, journal),
          TestConfig({ slurmStateDir: stateDir })
        ))
      )
      assert.deepStrictEqual(reaped.map((r) => [r.entry.tag, r.jobId]), [
        [reused, undefined],
        [recorded, 7],
        [unreported, 9]
      ])
      // The recorded ids are asked for one by one; the list once, for the entry without an id.
      assert.deepStrictEqual(yield* Ref.get(calls), ["list", "get 42", "get 7", "cancel 7", "cancel 9"])
      assert.deepStrictEqual((yield* fs.readDirectory(stateDir)).sort(), ["journal", `${other}.root-dev`])
      assert.deepStrictEqual(yield* journal.list, [])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("never cancels another login host's jobs, and removes its files and entry only once Slurm no longer knows the job and the entry is older than the lease", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-reaper-foreign-" })
      const stateDir = `${dir}/state`
      const journal = yield* makeJournal(`${stateDir}/journal`)
      const now = 1_800_000_000_000
      yield* TestClock.setTime(now)
      // A hook that, were it this host's, would be dead: the rules below are the only reason to keep them.
      const hook = yield* dead
      const old = now - 3600_000
      const entry = (
        tag: string,
        createdAt: number,
        jobId?: number,
        where: Partial<JournalEntry> = { host: "login2" }
      ) =>
        ({
          tag,
          drvPath,
          outputs: ["out"],
          ...hook,
          ...where,
          createdAt,
          ...(jobId === undefined ? {} : { jobId })
        }) as JournalEntry
      const known = entry("nsh-00000000000000f1", old, 11)
      const young = entry("nsh-00000000000000f2", now - 10_000, 12)
      const abandoned = entry("nsh-00000000000000f3", old, 13)
      const otherNamespace = entry("nsh-00000000000000f4", old, 14, { pidNamespace: "pid:[4026532999]" })
      const noIdGone = entry("nsh-00000000000000f5", old)
      const noIdListed = entry("nsh-00000000000000f6", old)
      const all = [known, young, abandoned, otherNamespace, noIdGone, noIdListed]
      yield* fs.makeDirectory(`${stateDir}/journal`, { recursive: true })
      yield* Effect.forEach(all, (e) => fs.writeFileString(journal.fileOf(e.tag), JSON.stringify(e)), { discard: true })
      yield* Effect.forEach(all, (e) => fs.writeFileString(jobFiles(stateDir, e.tag).log, ""), { discard: true })

      const calls = yield* Ref.make<ReadonlyArray<string>>([])
      const call = (what: string) => Ref.update(calls, (c) => [...c, what])
      const api = SlurmApi.of({
        apiVersion: Effect.succeed("v0.0.38" as const),
        renderSubmission: () => Effect.die("unused"),
        ping: Effect.void,
        submit: () => Effect.die("unused"),
        getJob: (id) =>
          Effect.zipRight(
            call(`get ${id}`),
            id === 11
              ? Effect.succeed(jobInfo({ jobId: 11, state: "RUNNING", comment: jobComment(known.tag, drvPath) }))
              : Effect.fail(new SlurmJobNotFound({ jobId: id }))
          ),
        cancel: (id) => call(`cancel ${id}`),
        listJobs: Effect.as(call("list"), [jobInfo({ jobId: 16, comment: jobComment(noIdListed.tag, drvPath) })])
      })
      const reaped = yield* reapOrphans.pipe(
        Effect.provide(Layer.mergeAll(
          Layer.succeed(SlurmApi, api),
          Layer.succeed(Journal, journal),
          TestConfig({ slurmStateDir: stateDir, jobLeaseTimeout: 60 })
        ))
      )
      assert.deepStrictEqual(reaped.map((r) => [r.entry.tag, r.abandoned]), [
        [abandoned.tag, true],
        [otherNamespace.tag, true],
        [noIdGone.tag, true]
      ])
      const asked = yield* Ref.get(calls)
      assert.deepStrictEqual(
        asked.filter((c) => c.startsWith("cancel")),
        [],
        "another host's job is never cancelled here"
      )
      // The young entry's job is not even asked for: the lease has not passed.
      assert.notInclude(asked, "get 12")
      assert.deepStrictEqual((yield* journal.list).map((e) => e.tag), [known.tag, young.tag, noIdListed.tag])
      assert.deepStrictEqual(
        (yield* fs.readDirectory(stateDir)).filter((f) => f.endsWith(".log")).sort(),
        [known, young, noIdListed].map((e) => `${e.tag}.log`).sort()
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
