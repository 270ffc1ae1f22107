/**
 * The settings that describe the nodes, on the real node1: `remote-nix-bin-dir` (nsh's own
 * nix-store calls over SSH and the job's use the nix-store there; a directory without one fails
 * with the hint to set it), `remote-store` (the job builds into a store on node1's own disk, not
 * its /nix/store), and a `slurm-state-dir` missing on the nodes (the job cannot start; the error
 * says to create it).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises"
import {
  assertCleanedUp,
  buildEnv,
  nshBuild,
  outputsOf,
  scontrolJob,
  submittedJobs,
  validOnNode1
} from "./support/build.js"
import { cluster, nodeExec, run } from "./support/cluster.js"
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

  it.scopedLive("remote-store: the job builds into a store on node1's disk, not its /nix/store, and the output comes back", () =>
    Effect.gen(function*() {
      // node1's /nix is its own disk, as a node-local store would be; not under /tmp, which Nix
      // 2.34 refuses as a chroot store's parent (world-writable).
      const store = `/nix/var/nsh-e2e-store-${process.pid}-${Date.now()}`
      yield* Effect.addFinalizer(() => Effect.promise(() => nodeExec(`rm -rf '${store}'`)))
      const env = yield* buildEnv("remote-store", `remote-store = ${store}`)
      // builds.nix's inStore: built by Nix itself, as a chroot store's build must be here (no shell in it).
      const build = yield* nshBuild(env, "inStore", ["-v"])
      assert.strictEqual(build.code, 0, build.stderr)
      const [job] = submittedJobs(build)
      const [out] = yield* outputsOf(job!.drvPath)
      const here = yield* Effect.promise(() => run("nix-store", ["--verify-path", out!]))
      assert.strictEqual(here.code, 0, `${out} is not valid here: ${here.stderr}`)
      const manifest = yield* Effect.promise(() => readlink(`${out}/manifest.nix`))
      assert.strictEqual(yield* Effect.promise(() => readFile(manifest, "utf8")), env.nonce)
      for (const path of [out!, job!.drvPath]) {
        const there = yield* Effect.promise(() => nodeExec(`nix-store --store '${store}' --check-validity '${path}'`))
        assert.strictEqual(there.code, 0, `${path} is not in node1's ${store}: ${there.stderr}`)
        assert.isFalse(yield* validOnNode1(path), `${path} went into node1's /nix/store`)
      }
      yield* assertCleanedUp(env, [job!.jobId])
    }))

  it.scopedLive("slurm-state-dir missing on the node: Slurm 22.05 cannot start the job, and the error says to create it", () =>
    Effect.gen(function*() {
      // This machine's /tmp is not node1's: nsh creates the directory here, node1 never has it.
      const stateDir = `/tmp/nsh-e2e-no-state-${process.pid}-${Date.now()}`
      yield* Effect.addFinalizer(() => Effect.promise(() => rm(stateDir, { recursive: true, force: true })))
      const env = yield* buildEnv("no-state-dir", `slurm-state-dir = ${stateDir}`)
      const build = yield* nshBuild(env, "single")
      if (cluster().apiVersion !== "v0.0.38") {
        // Slurm 24.11 and 26.05 start the job all the same (seen on trixie and sid): it builds.
        assert.strictEqual(build.code, 0, build.stderr)
        const there = yield* Effect.promise(() => nodeExec(`test -d '${stateDir}'`))
        assert.strictEqual(there.code, 0, `${stateDir} is not on node1 after the build`)
        return
      }
      assert.notStrictEqual(build.code, 0, build.stderr)
      assert.include(build.stderr, "JobLaunchFailure", build.stderr)
      assert.include(
        build.stderr,
        `check that slurm-state-dir (${stateDir}) exists and is writable on the node`,
        build.stderr
      )
    }))
})
