/**
 * Nix's `timeout` enforced by nsh itself: node1's nix-store is reached through a
 * `remote-nix-bin-dir` whose `nix-store` drops `--timeout`, as a node whose nix-store ignores it.
 * The build must still stop at the timeout (plus nsh's 5 s slack) with Nix's message and exit
 * 101 (Nix 2.8), its job cancelled, nothing left behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { buildEnv, scontrolJob } from "./support/build.js"
import { hookFailureExitCode, nodeExec } from "./support/cluster.js"
import { assertNothingLeft, buildEnded, hookOf, startBuild, submission, watchdogOf } from "./support/faults.js"

/** A directory node1 sees (root's home is shared) with a nix-store that drops `--timeout N` and logs the argv it passes on. */
const timeoutDroppingNixStore = Effect.acquireRelease(
  Effect.promise(async () => {
    const real = (await nodeExec("command -v nix-store")).stdout.trim()
    assert.match(real, /^\/.*nix-store$/, "node1 has a nix-store on its PATH")
    await mkdir("/root/.cache/nsh-e2e", { recursive: true })
    const dir = await mkdtemp("/root/.cache/nsh-e2e/nix-bin-")
    const calls = join(dir, "calls")
    await writeFile(
      join(dir, "nix-store"),
      [
        "#!/bin/sh",
        "skip=",
        "for a do",
        "  shift",
        "  if [ -n \"$skip\" ]; then skip=; continue; fi",
        "  if [ \"$a\" = --timeout ]; then skip=1; continue; fi",
        "  set -- \"$@\" \"$a\"",
        "done",
        `echo "$*" >> '${calls}'`,
        `exec '${real}' "$@"`,
        ""
      ].join("\n"),
      { mode: 0o755 }
    )
    return { dir, calls }
  }),
  ({ dir }) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

describe("Nix's timeout enforced by nsh", () => {
  it.scopedLive(
    "node1's nix-store never sees --timeout 5: nsh stops the 60 s build with Nix's message and exit 101, cancels its job, leaves nothing",
    () =>
      Effect.gen(function*() {
        const bin = yield* timeoutDroppingNixStore
        const env = yield* buildEnv("timeout-nsh", `remote-nix-bin-dir = ${bin.dir}`)
        const build = yield* startBuild(env, "sleeper", ["--option", "timeout", "5"])
        const job = yield* submission(build)
        const hookPid = yield* hookOf(build.pid)
        const watchdogPid = yield* watchdogOf(hookPid)

        const ended = yield* buildEnded(build, 90_000)
        assert.strictEqual(ended.code, hookFailureExitCode(101), ended.stderr)
        assert.include(ended.stderr, `sleeper: sleeping 60 s ${env.nonce}`)
        assert.notInclude(ended.stderr, "sleeper: woke up")
        assert.include(ended.stderr, `nsh: building of '${job.drvPath}' timed out after 5 seconds`)
        assert.strictEqual(ended.stdout, "")

        // The fault was in place: the job's realise ran through the wrapper, without --timeout.
        const calls = (yield* Effect.promise(() => readFile(bin.calls, "utf8"))).split("\n")
        const realise = calls.filter((c) => c.includes("--realise") && c.includes("sleeper"))
        assert.isNotEmpty(realise, calls.join("\n"))
        assert.isTrue(realise.every((c) => !c.includes("--timeout")), realise.join("\n"))
        // nsh, not the node, ended it: the job was cancelled rather than failing with nix-store's 101.
        assert.strictEqual((yield* scontrolJob(job.jobId))["JobState"], "CANCELLED")
        yield* assertNothingLeft(env, { jobIds: [job.jobId], tags: [job.tag], hookPid, watchdogPid })
      }),
    180_000
  )
})
