/**
 * The job journal (src/safety/Journal.ts) on a real temporary directory: atomic entries, listing
 * that skips what is not an entry, and telling a live hook from a dead one or a reused pid.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import * as Os from "node:os"
import {
  isEntryOf,
  isHookAlive,
  type JournalEntry,
  listJournal,
  liveEntriesHere,
  makeJournal,
  processIdentity,
  thisLoginHost
} from "../../src/safety/Journal.js"

const tag = "nsh-0123456789abcdef"
const drvPath = "/nix/store/00000000000000000000000000000000-hello.drv"
const outputs = ["out", "dev"]

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "nsh-journal-" }))

describe("Journal", () => {
  it.scoped("records the intent before the submit, then the job id and node, and removes it at the end", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = `${yield* tempDir}/journal`
      const journal = yield* makeJournal(dir)
      yield* TestClock.setTime(1_700_000_000_000)

      const entry = yield* journal.begin({ tag, drvPath, outputs })
      assert.strictEqual(journal.fileOf(tag), `${dir}/${tag}.json`)
      assert.isTrue(yield* fs.exists(journal.fileOf(tag)))
      assert.deepStrictEqual(
        [entry.tag, entry.drvPath, entry.outputs, entry.hookPid, entry.host, entry.createdAt, entry.jobId],
        [tag, drvPath, outputs, process.pid, Os.hostname(), 1_700_000_000_000, undefined]
      )
      assert.isTrue(yield* isHookAlive(entry))

      yield* journal.update(tag, { jobId: 42 })
      yield* journal.update(tag, { node: "node1" })
      const [listed] = yield* journal.list
      assert.deepStrictEqual(listed, { ...entry, jobId: 42, node: "node1" })
      // Written by rename: no temporary file is left beside the entry.
      assert.deepStrictEqual(yield* fs.readDirectory(dir), [`${tag}.json`])

      yield* journal.remove(tag)
      assert.deepStrictEqual(yield* journal.list, [])
      yield* journal.remove(tag)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("lists only entries: temp files, foreign names and unreadable files are skipped", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      assert.deepStrictEqual(yield* listJournal(`${dir}/missing`), [])
      const journal = yield* makeJournal(dir)
      yield* journal.begin({ tag, drvPath, outputs })
      yield* fs.writeFileString(`${dir}/.${tag}.json.123.tmp`, "{\"half")
      yield* fs.writeFileString(`${dir}/nsh-ffffffffffffffff.json`, "not json")
      yield* fs.writeFileString(`${dir}/nsh-eeeeeeeeeeeeeeee.json`, "{\"tag\":\"nsh-eeeeeeeeeeeeeeee\"}")
      yield* fs.writeFileString(`${dir}/notes.txt`, "hello")
      assert.deepStrictEqual((yield* listJournal(dir)).map((e) => e.tag), [tag])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("an unwritable journal is a JournalError naming the file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      yield* fs.writeFileString(`${dir}/journal`, "a file, not a directory")
      const journal = yield* makeJournal(`${dir}/journal`)
      const error = yield* Effect.flip(journal.begin({ tag, drvPath, outputs }))
      assert.strictEqual(error._tag, "JournalError")
      assert.include(error.message, `${dir}/journal`)
      assert.include(error.message, "slurm-state-dir")
      const missing = yield* Effect.flip(journal.update("nsh-1111111111111111", { jobId: 1 }))
      assert.strictEqual(missing._tag, "JournalError")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("tells a live hook from a dead one, a reused pid, a reboot, and leaves other machines' entries alone", () =>
    Effect.gen(function*() {
      const me = Option.getOrThrow(yield* processIdentity(process.pid))
      const entry: JournalEntry = {
        tag,
        drvPath,
        outputs,
        host: Os.hostname(),
        pidNamespace: (yield* thisLoginHost).pidNamespace,
        hookPid: me.pid,
        hookStartTicks: me.startTicks,
        bootId: me.bootId,
        createdAt: 0
      }
      assert.isTrue(yield* isHookAlive(entry))
      assert.isFalse(yield* isHookAlive({ ...entry, hookStartTicks: me.startTicks + 1 }), "a reused pid")
      assert.isFalse(yield* isHookAlive({ ...entry, bootId: "00000000-0000-0000-0000-000000000000" }), "another boot")
      // A pid that existed and is gone (reaped): spawnSync waits for it.
      const gone = spawnSync("true").pid
      assert.isFalse(yield* isHookAlive({ ...entry, hookPid: gone }))
      assert.isTrue(yield* isHookAlive({ ...entry, host: `${Os.hostname()}-elsewhere`, hookPid: gone }))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("names the login host by host name and PID namespace: another namespace on one kernel and host name is another host", () =>
    Effect.gen(function*() {
      const journal = yield* makeJournal(`${yield* tempDir}/journal`)
      const entry = yield* journal.begin({ tag, drvPath, outputs })
      const here = yield* thisLoginHost
      assert.match(here.pidNamespace, /^pid:\[\d+\]$/)
      assert.strictEqual(entry.pidNamespace, here.pidNamespace)
      assert.isTrue(isEntryOf(here)(entry))
      // login2 in a container on this kernel: same boot id, maybe the same pid (its own namespace).
      const gone = spawnSync("true").pid
      const container = { ...entry, pidNamespace: "pid:[4026532999]", hookPid: gone }
      assert.isFalse(isEntryOf(here)(container))
      assert.isTrue(yield* isHookAlive(container), "only its own host can tell")
      // Entries of older nsh (no namespace) go by the host name, as they did.
      const { pidNamespace: _, ...legacy } = entry
      assert.isTrue(isEntryOf(here)({ ...legacy, pidNamespace: "" }))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("max-jobs counts only this login host's entries whose hook is alive", () =>
    Effect.gen(function*() {
      const me = Option.getOrThrow(yield* processIdentity(process.pid))
      const here = yield* thisLoginHost
      const mine: JournalEntry = {
        tag,
        drvPath,
        outputs,
        host: here.host,
        pidNamespace: here.pidNamespace,
        hookPid: me.pid,
        hookStartTicks: me.startTicks,
        bootId: me.bootId,
        createdAt: 0
      }
      const entries = [
        mine,
        { ...mine, tag: "nsh-1", hookPid: spawnSync("true").pid },
        { ...mine, tag: "nsh-2", host: "login2" },
        { ...mine, tag: "nsh-3", pidNamespace: "pid:[4026532999]" }
      ]
      assert.deepStrictEqual((yield* liveEntriesHere(entries)).map((e) => e.tag), [tag])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
