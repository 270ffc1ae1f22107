/**
 * The orphan reaper (src/safety/Reaper.ts) on a real journal and state directory, with a SlurmApi
 * double: what it cancels, and which files it removes.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { spawnSync } from "node:child_process"
import * as Os from "node:os"
import { allJobFiles, jobFiles } from "../../src/job/JobFiles.js"
import { jobComment } from "../../src/job/JobTag.js"
import { Journal, type JournalEntry, makeJournal, processIdentity } from "../../src/safety/Journal.js"
import { reapOrphans } from "../../src/safety/Reaper.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { TestConfig } from "../support/settings.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

const tag = "nsh-0123456789abcdef"
const drvPath = "/nix/store/00000000000000000000000000000000-hello.drv"

describe("reapOrphans", () => {
  it.scoped("cancels only jobs that still carry a dead hook's tag, and removes every file of its job", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-reaper-" })
      const stateDir = `${dir}/state`
      const journal = yield* makeJournal(`${stateDir}/journal`)
      const me = (yield* processIdentity(process.pid)).pipe((o) =>
        o._tag === "Some" ? o.value : assert.fail("no /proc")
      )
      // A hook that ran here and is gone (spawnSync waits for it), which recorded job 42.
      const entry: JournalEntry = {
        tag,
        drvPath,
        outputs: ["out", "dev", "lib"],
        host: Os.hostname(),
        hookPid: spawnSync("true").pid!,
        hookStartTicks: me.startTicks,
        bootId: me.bootId,
        createdAt: 0,
        jobId: 42
      }
      yield* fs.makeDirectory(`${stateDir}/journal`, { recursive: true })
      yield* fs.writeFileString(journal.fileOf(tag), JSON.stringify(entry))
      const files = allJobFiles(jobFiles(stateDir, tag), entry.outputs)
      const othersFile = `${jobFiles(stateDir, "nsh-ffffffffffffffff").root}-dev`
      yield* Effect.forEach([...files, othersFile], (f) => fs.writeFileString(f, ""), { discard: true })

      const cancels = yield* Ref.make<ReadonlyArray<number>>([])
      const api = SlurmApi.of({
        apiVersion: Effect.succeed("v0.0.38"),
        renderSubmission: () => Effect.die("unused"),
        ping: Effect.void,
        submit: () => Effect.die("unused"),
        getJob: () => Effect.die("unused"),
        cancel: (id) => Ref.update(cancels, (all) => [...all, id]),
        // Id 42 now belongs to someone else (a controller reset); the entry's job is 7.
        listJobs: Effect.succeed([
          jobInfo({ jobId: 42, comment: "someone else's job" }),
          jobInfo({ jobId: 7, comment: jobComment(tag, drvPath) }),
          jobInfo({ jobId: 8, comment: jobComment("nsh-ffffffffffffffff", drvPath) })
        ])
      })
      const reaped = yield* reapOrphans.pipe(
        Effect.provide(Layer.mergeAll(
          Layer.succeed(SlurmApi, api),
          Layer.succeed(Journal, journal),
          TestConfig({ slurmStateDir: stateDir })
        ))
      )
      assert.deepStrictEqual(reaped.map((r) => [r.entry.tag, r.jobId]), [[tag, 7]])
      assert.deepStrictEqual(yield* Ref.get(cancels), [7])
      assert.deepStrictEqual((yield* fs.readDirectory(stateDir)).sort(), ["journal", "nsh-ffffffffffffffff.root-dev"])
      assert.deepStrictEqual(yield* journal.list, [])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
