/**
 * The settings that describe the nodes, on the real node1: `remote-nix-bin-dir` (nsh's own
 * nix-store calls over SSH and the job's use the nix-store there; a directory without one fails
 * with the hint to set it), `remote-store` (inputs and build go to a store on node1's own disk, not
 * its /nix/store), and a `slurm-state-dir` missing on the nodes (the job cannot start; the error
 * says to create it).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { assertCleanedUp, buildEnv, nshBuild, scontrolJob, submittedJobs, validOnNode1 } from "./support/build.js"
import { nodeExec } from "./support/cluster.js"
import { assertNothingLeft } from "./support/faults.js"

/** The tag of a job nsh submitted, from its comment. */
const tagOf = (jobId: number) =>
  Effect.map(scontrolJob(jobId), (job) => /^nsh:(nsh-[0-9a-f]{16}) /.exec(job["Comment"] ?? "")?.[1] ?? "")

/** A directory under /root (which node1 shares, like the state directories), removed with the scope. */
const sharedDir = (name: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      await mkdir("/root/.cache/nsh-e2e", { recursive: true })
      return mkdtemp(`/root/.cache/nsh-e2e/${name}-`)
    }),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

describe("node settings on node1", () => {
  it.scopedLive("remote-nix-bin-dir: the copies over SSH and the job run the nix-store found there", () =>
    Effect.gen(function*() {
      const binDir = yield* sharedDir("bin-dir")
      const real = (yield* Effect.promise(() => nodeExec("command -v nix-store"))).stdout.trim()
      assert.match(real, /^\//, "no nix-store on node1")
      // A nix-store that records each call, then runs node1's real one.
      yield* Effect.promise(async () => {
        await writeFile(`${binDir}/nix-store`, `#!/bin/sh\necho "$1" >> '${binDir}/calls'\nexec '${real}' "$@"\n`)
        await chmod(`${binDir}/nix-store`, 0o755)
      })
      const env = yield* buildEnv("bin-dir", `remote-nix-bin-dir = ${binDir}`)
      const build = yield* nshBuild(env, "single", ["-v"])
      assert.strictEqual(build.code, 0, build.stderr)
      const calls = (yield* Effect.promise(() => readFile(`${binDir}/calls`, "utf8"))).split("\n")
      // --import: inputs in over SSH; --realise: the job; --dump: the output back over SSH.
      for (const call of ["--import", "--realise", "--dump"]) assert.include(calls, call, calls.join(" "))
      yield* assertCleanedUp(env, submittedJobs(build).map((j) => j.jobId))
    }))

  it.scopedLive("remote-nix-bin-dir without a nix-store: the build fails saying to set remote-nix-bin-dir", () =>
    Effect.gen(function*() {
      const binDir = yield* sharedDir("bin-dir-empty")
      const env = yield* buildEnv("bin-dir-empty", `remote-nix-bin-dir = ${binDir}`)
      const build = yield* nshBuild(env, "single")
      assert.notStrictEqual(build.code, 0, build.stderr)
      assert.include(
        build.stderr,
        `nix-store is not on the node's PATH nor in ${binDir}: set remote-nix-bin-dir in nsh.conf`,
        build.stderr
      )
      // The failed build's job is cleaned up by the watchdog, after the hook exited.
      const jobIds = submittedJobs(build).map((j) => j.jobId)
      yield* assertNothingLeft(env, { jobIds, tags: yield* Effect.forEach(jobIds, tagOf) })
    }))

  it.scopedLive("remote-store: the inputs go into the store on node1's disk, where the job's nix-store builds", () =>
    Effect.gen(function*() {
      // node1's /tmp is its own disk, as a node-local store would be.
      const store = `/tmp/nsh-e2e-store-${process.pid}-${Date.now()}`
      yield* Effect.addFinalizer(() => Effect.promise(() => nodeExec(`rm -rf '${store}'`)))
      const env = yield* buildEnv("remote-store", `remote-store = ${store}`)
      const build = yield* nshBuild(env, "single", ["-v"])
      const [job] = submittedJobs(build)
      assert.isDefined(job, build.stderr)
      // The .drv went to that store, not node1's /nix/store. (The build itself cannot succeed there:
      // a store under another root builds in a chroot, where the fixtures' /bin/sh builder is absent.)
      const inStore = yield* Effect.promise(() =>
        nodeExec(`nix-store --store '${store}' --check-validity '${job!.drvPath}'`)
      )
      assert.strictEqual(
        inStore.code,
        0,
        `${job!.drvPath} is not in node1's ${store}: ${inStore.stderr}\n${build.stderr}`
      )
      assert.isFalse(yield* validOnNode1(job!.drvPath), `${job!.drvPath} went into node1's /nix/store`)
      assert.include(build.stderr, `building '${job!.drvPath}'`, build.stderr)
      yield* assertNothingLeft(env, { jobIds: [job!.jobId], tags: [yield* tagOf(job!.jobId)] })
    }))

  it.scopedLive("slurm-state-dir missing on the node: the job cannot start, and the error says to create it", () =>
    Effect.gen(function*() {
      // This machine's /tmp is not node1's: nsh creates the directory here, node1 never has it.
      const stateDir = `/tmp/nsh-e2e-no-state-${process.pid}-${Date.now()}`
      yield* Effect.addFinalizer(() => Effect.promise(() => rm(stateDir, { recursive: true, force: true })))
      const env = yield* buildEnv("no-state-dir", `slurm-state-dir = ${stateDir}`)
      const build = yield* nshBuild(env, "single")
      assert.notStrictEqual(build.code, 0, build.stderr)
      assert.include(build.stderr, "JobLaunchFailure", build.stderr)
      assert.include(
        build.stderr,
        `check that slurm-state-dir (${stateDir}) exists and is writable on the node`,
        build.stderr
      )
    }))
})
