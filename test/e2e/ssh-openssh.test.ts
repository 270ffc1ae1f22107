/**
 * ssh-transport = openssh on the host cluster: a real build reaches node1 through the system's
 * ssh (one control master, commands multiplexed on it), and the master is gone afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs
} from "./support/build.js"

/** PATH with an `ssh` that records its arguments, and a private XDG_RUNTIME_DIR, for the scope. */
const recordingSsh = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await mkdtemp(join(tmpdir(), "nsh-e2e-openssh-"))
    const real = execFileSync("sh", ["-c", "command -v ssh"]).toString().trim()
    const log = join(dir, "ssh.log")
    await writeFile(join(dir, "ssh"), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\nexec ${real} "$@"\n`)
    await chmod(join(dir, "ssh"), 0o755)
    const saved = { PATH: process.env.PATH, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR }
    process.env.PATH = `${dir}:${process.env.PATH ?? ""}`
    process.env.XDG_RUNTIME_DIR = dir
    return { dir, log, saved }
  }),
  ({ dir, saved }) =>
    Effect.promise(async () => {
      process.env.PATH = saved.PATH
      if (saved.XDG_RUNTIME_DIR === undefined) delete process.env.XDG_RUNTIME_DIR
      else process.env.XDG_RUNTIME_DIR = saved.XDG_RUNTIME_DIR
      await rm(dir, { recursive: true, force: true })
    })
)

const running = (pattern: string) => {
  try {
    execFileSync("pgrep", ["-f", pattern])
    return true
  } catch {
    return false
  }
}

describe("ssh-transport = openssh", () => {
  it.scopedLive(
    "builds a derivation on node1 over one shared OpenSSH connection, stopped afterwards",
    () =>
      Effect.gen(function*() {
        const ssh = yield* recordingSsh
        const env = yield* buildEnv("openssh", "ssh-transport = openssh")
        const build = yield* nshBuild(env, "single", [], 120_000)
        assert.strictEqual(build.code, 0, build.stderr)
        const [drvPath] = plannedDerivations(build)
        const outputs = yield* outputsOf(drvPath!)
        const [content] = yield* assertBuiltOnNode1(outputs)
        assert.strictEqual(content, `node1\n${env.nonce}\n`)
        yield* assertCleanedUp(env, submittedJobs(build).map((j) => j.jobId))

        const calls = (yield* Effect.promise(() => readFile(ssh.log, "utf8"))).split("\n").filter((l) => l !== "")
        const masters = calls.filter((c) => / -N -f -T -- node1$/.test(c))
        assert.strictEqual(masters.length, 1, calls.join("\n"))
        assert.include(masters[0], "ControlMaster=auto")
        assert.include(masters[0], "BatchMode=yes")
        const socket = /ControlPath=(\S+)/.exec(masters[0]!)![1]!
        assert.isTrue(socket.startsWith(`${ssh.dir}/nsh/`), socket)
        // Every command went over that master; the master was told to exit and its socket is gone.
        const commands = calls.filter((c) => c.includes("-T -- node1 exec /bin/sh -c"))
        assert.isAbove(commands.length, 3, calls.join("\n"))
        assert.isTrue(commands.every((c) => c.includes(`ControlPath=${socket}`)))
        assert.isTrue(calls.some((c) => c.includes(`ControlPath=${socket} -O exit`)), calls.join("\n"))
        // (The directory is nsh's per-user runtime directory: the shared poll snapshot lives there too.)
        const left = yield* Effect.promise(() => readdir(join(ssh.dir, "nsh")))
        assert.deepStrictEqual(left.filter((name) => name.startsWith("cm-")), [])
        assert.isFalse(running(`ControlPath=${socket}`), "the control master still runs")
      }),
    180_000
  )
})
