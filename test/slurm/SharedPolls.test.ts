/**
 * Shared polling (src/slurm/SharedPolls.ts): hooks of one user share one state query per round,
 * and each hook still gets its own job's observation, never an older one than it already had.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as path from "node:path"
import type { JobInfo } from "../../src/slurm/JobSpec.js"
import { sharedPolls } from "../../src/slurm/SharedPolls.js"
import type { SlurmApiService } from "../../src/slurm/SlurmApi.js"
import { type SlurmError, SlurmJobNotFound, SlurmUnreachable } from "../../src/slurm/SlurmErrors.js"
import { jobInfo } from "../support/SlurmApiScripted.js"

/** slurmrestd as the hooks see it: the jobs' current states, and every request counted. */
const cluster = (options: { listFails?: boolean } = {}) => {
  const states = new Map<number, JobInfo>()
  const requests: Array<string> = []
  const api = {
    getJob: (jobId: number) =>
      Effect.suspend(() => {
        requests.push(`GET /job/${jobId}`)
        const info = states.get(jobId)
        return info === undefined ? Effect.fail<SlurmError>(new SlurmJobNotFound({ jobId })) : Effect.succeed(info)
      }),
    listJobs: Effect.suspend(() => {
      requests.push("GET /jobs")
      return options.listFails === true
        ? Effect.fail<SlurmError>(new SlurmUnreachable({ url: "http://h:1", reason: "down" }))
        : Effect.succeed([...states.values()])
    })
  } as unknown as SlurmApiService
  return { states, requests, api }
}

const tmp = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(path.join(Os.tmpdir(), "nsh-polls-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("shared polls", () => {
  it.scoped("one query per round for all hooks' jobs, each hook getting its own job's state", () =>
    Effect.gen(function*() {
      const dir = yield* tmp
      const c = cluster()
      c.states.set(1, jobInfo({ jobId: 1 }))
      c.states.set(2, jobInfo({ jobId: 2 }))
      c.states.set(3, jobInfo({ jobId: 3 }))
      const hooks = yield* Effect.forEach(["a", "b", "c"], (owner) => sharedPolls(c.api, dir, owner))
      // Round 1, each job new: the first hook asks alone (by id); the others see wants besides their own.
      assert.strictEqual((yield* hooks[0]!.getJob(1)).jobId, 1)
      assert.strictEqual((yield* hooks[1]!.getJob(2)).jobId, 2)
      assert.strictEqual((yield* hooks[2]!.getJob(3)).jobId, 3)
      assert.deepStrictEqual(c.requests, ["GET /job/1", "GET /jobs", "GET /jobs"])
      // Round 2, 2 s later: the first hook to ask refreshes for all, the others read it.
      yield* TestClock.adjust("2 seconds")
      c.states.set(2, jobInfo({ jobId: 2, state: "RUNNING", batchHost: "node1" }))
      c.requests.length = 0
      assert.strictEqual((yield* hooks[0]!.getJob(1)).state, "PENDING")
      const two = yield* hooks[1]!.getJob(2)
      assert.strictEqual(two.state, "RUNNING")
      assert.strictEqual(two.batchHost, "node1")
      yield* hooks[2]!.getJob(3)
      assert.deepStrictEqual(c.requests, ["GET /jobs"])
    }))

  it.scoped("never hands a hook the snapshot it already saw: a later look refreshes", () =>
    Effect.gen(function*() {
      const dir = yield* tmp
      const c = cluster()
      c.states.set(1, jobInfo({ jobId: 1 }))
      const hook = yield* sharedPolls(c.api, dir, "a")
      yield* hook.getJob(1)
      c.states.set(1, jobInfo({ jobId: 1, state: "COMPLETED" }))
      yield* TestClock.adjust("50 millis")
      assert.strictEqual((yield* hook.getJob(1)).state, "COMPLETED")
      assert.deepStrictEqual(c.requests, ["GET /job/1", "GET /job/1"])
    }))

  it.scoped("a first look at a job the snapshot holds needs no request (hooks that just submitted share one)", () =>
    Effect.gen(function*() {
      const dir = yield* tmp
      const c = cluster()
      c.states.set(1, jobInfo({ jobId: 1 }))
      c.states.set(2, jobInfo({ jobId: 2 }))
      const [a, b] = yield* Effect.forEach(["a", "b"], (owner) => sharedPolls(c.api, dir, owner))
      yield* b!.getJob(2)
      yield* TestClock.adjust("1 second")
      // a's refresh covers b's job too; a later hook's first look at it reads that snapshot.
      yield* a!.getJob(1)
      c.requests.length = 0
      const later = yield* sharedPolls(c.api, dir, "c")
      assert.strictEqual((yield* later.getJob(2)).jobId, 2)
      assert.deepStrictEqual(c.requests, [])
    }))

  it.scoped("a job the list lacks, or a list that fails, is asked for by id, with getJob's own errors", () =>
    Effect.gen(function*() {
      const dir = yield* tmp
      const c = cluster({ listFails: true })
      c.states.set(1, jobInfo({ jobId: 1 }))
      const [a, b] = yield* Effect.forEach(["a", "b"], (owner) => sharedPolls(c.api, dir, owner))
      yield* a!.getJob(1)
      // Job 7 is purged: the list fails, getJob says it is not found, as without sharing.
      const lost = yield* Effect.flip(b!.getJob(7))
      assert.strictEqual(lost._tag, "SlurmJobNotFound")
      assert.deepStrictEqual(c.requests, ["GET /job/1", "GET /jobs", "GET /job/7"])
    }))

  it.scoped("a hook that stopped asking is dropped from the round after 10 s", () =>
    Effect.gen(function*() {
      const dir = yield* tmp
      const c = cluster()
      c.states.set(1, jobInfo({ jobId: 1 }))
      c.states.set(2, jobInfo({ jobId: 2 }))
      const [a, b] = yield* Effect.forEach(["a", "b"], (owner) => sharedPolls(c.api, dir, owner))
      yield* b!.getJob(2)
      yield* TestClock.adjust("11 seconds")
      c.requests.length = 0
      yield* a!.getJob(1)
      assert.deepStrictEqual(c.requests, ["GET /job/1"])
    }))
})
