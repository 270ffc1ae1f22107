/**
 * A chain of three derivations, all built by nsh (A <- B <- C), where A's input is a 20 MiB input
 * source: each build runs in its own Slurm job on node1, each needs the previous output copied to
 * node1, and the large source is copied there once. Prints the measured input copy throughput.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs,
  type TimedLine
} from "./support/build.js"
import { run } from "./support/cluster.js"

const sourceBytes = 20 * 1024 * 1024

/** The copy of the large source: from the activity's start to nsh's `copied ... to node1` line. */
const copyOfSource = (lines: ReadonlyArray<TimedLine>) => {
  const done = lines.findIndex((l) => {
    const mib = l.text.match(/^nsh: copied \d+ paths \(([\d.]+) MiB\) to node1$/)?.[1]
    return mib !== undefined && Number(mib) >= 19
  })
  assert.isAtLeast(done, 0, "no `nsh: copied ... (20.0 MiB) to node1` line (it is logged at -v)")
  const start = lines.slice(0, done).map((l) => l.text).lastIndexOf("copying inputs to node1...")
  assert.isAtLeast(start, 0, "no `copying inputs to node1...` line before the copy's end")
  return { mib: Number(lines[done]!.text.match(/\(([\d.]+) MiB\)/)![1]), ms: lines[done]!.atMs - lines[start]!.atMs }
}

describe("nsh building a chain of three derivations with a 20 MiB input source", () => {
  it.scopedLive(
    "builds A, B and C in three jobs on node1, copying the source and each output in between",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("chain")
        const srcFile = join(env.dir, "source.bin")
        yield* Effect.promise(() => writeFile(srcFile, randomBytes(sourceBytes)))
        const cksum = yield* Effect.promise(() => run("sh", ["-c", `cksum < '${srcFile}'`]))

        const build = yield* nshBuild(env, "chain", ["--argstr", "srcFile", srcFile, "-v"], 240_000)
        assert.strictEqual(build.code, 0, build.stderr)

        // Planned in dependency order; each got a job of its own, submitted only once its input was built.
        const drvs = plannedDerivations(build)
        assert.deepStrictEqual(
          drvs.map((d) => d.replace(/^\/nix\/store\/[a-z0-9]{32}-/, "")),
          ["nsh-e2e-chain-a.drv", "nsh-e2e-chain-b.drv", "nsh-e2e-chain-c.drv"],
          build.stderr
        )
        const jobs = submittedJobs(build)
        assert.deepStrictEqual(jobs.map((j) => j.drvPath), drvs)
        assert.strictEqual(new Set(jobs.map((j) => j.jobId)).size, 3)
        for (
          const line of ["chain-a: summing /nix/store/", "chain-b: reading /nix/store/", "chain-c: reading /nix/store/"]
        ) {
          assert.include(build.stderr, `\n${line}`)
        }

        const [outA, outB, outC] = yield* Effect.forEach(drvs, (drv) => outputsOf(drv).pipe(Effect.map((o) => o[0]!)))
        assert.strictEqual(build.stdout.trim(), outC)
        const [a, b, c] = yield* assertBuiltOnNode1([outA!, outB!, outC!])
        // A summed the very bytes of the source; B and C carried it along.
        const src = a!.split("\n")[1]!
        assert.match(src, /^\/nix\/store\/[a-z0-9]{32}-nsh-e2e-chain-src$/)
        assert.strictEqual(a, `node1\n${src}\n${cksum.stdout}`)
        assert.strictEqual(b, `node1\n${outA}\n${a}`)
        assert.strictEqual(c, `node1\n${outB}\n${b}`)

        // The source went to node1 once: only A's input copy carries it (B's and C's copy the
        // previous output alone, which node1 already holds the source under).
        const copies = build.lines.flatMap((l) => {
          const mib = l.text.match(/^nsh: copied \d+ paths \(([\d.]+) MiB\) to node1$/)?.[1]
          return mib === undefined ? [] : [Number(mib)]
        })
        assert.lengthOf(copies, 3, `one input copy per job:\n${build.stderr}`)
        assert.strictEqual(copies.filter((mib) => mib >= 19).length, 1, `copies (MiB): ${copies.join(", ")}`)
        assert.isBelow(copies[1]! + copies[2]!, 1, `B's and C's copies carried the source again: ${copies.join(", ")}`)

        const copy = copyOfSource(build.lines)
        const throughput = copy.mib / (copy.ms / 1000)
        console.log(
          `[build-chain] copied ${copy.mib} MiB of inputs to node1 in ${copy.ms.toFixed(0)} ms: ` +
            `${throughput.toFixed(1)} MiB/s (whole 3-job build: ${(build.wallMs / 1000).toFixed(1)} s)`
        )

        yield* assertCleanedUp(env, jobs.map((j) => j.jobId))
      }),
    300_000
  )
})
