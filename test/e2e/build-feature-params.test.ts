/**
 * Nix features → Slurm resources: a derivation that requires `nsh-gpu` (and names no Slurm field)
 * gets the job fields slurm-feature-params maps that feature to, here one unit of the harness
 * node's count-only GRES, and lands on the node that has it with the GRES allocated.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  endedJob,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs
} from "./support/build.js"
import { cluster, run } from "./support/cluster.js"

/** One GRES per node: v0.0.38 names it in `gres`; from v0.0.40 on that field is gone (a server ignores it) for `tres_per_node`. */
const gpuParams = () => cluster().apiVersion === "v0.0.38" ? { gres: "nshgpu:1" } : { tres_per_node: "gres/nshgpu:1" }

const featureConf = () =>
  ["system-features = nsh nsh-gpu", `slurm-feature-params = ${JSON.stringify({ "nsh-gpu": gpuParams() })}`].join("\n")

describe("nsh mapping a derivation's required feature to Slurm job fields", () => {
  it.scopedLive(
    "submits the derivation requiring nsh-gpu with one nshgpu GRES, allocated on node1",
    () =>
      Effect.gen(function*() {
        const env = yield* buildEnv("feature-params", featureConf())
        const build = yield* nshBuild(env, "featureGres", ["--option", "system-features", "nsh nsh-gpu"], 120_000)
        assert.strictEqual(build.code, 0, build.stderr)

        const [drvPath] = plannedDerivations(build)
        assert.match(drvPath ?? "", /-nsh-e2e-feature-gres\.drv$/, build.stderr)
        const [job] = submittedJobs(build)
        assert.isDefined(job, build.stderr)

        const shown = yield* endedJob(job!.jobId)
        assert.strictEqual(shown["JobState"], "COMPLETED")
        assert.strictEqual(shown["NodeList"], "node1")
        // Slurm 22.05 writes gres:nshgpu:1, later ones gres/nshgpu:1.
        assert.match(shown["TresPerNode"] ?? "", /^gres[:/]nshgpu:1$/, JSON.stringify(shown))
        // Allocated, not only requested: the details list the GRES the job was given.
        const details = yield* Effect.promise(() => run("scontrol", ["show", "-d", "job", "-o", String(job!.jobId)]))
        assert.match(details.stdout, /\bJOB_GRES=nshgpu:1\b/)
        const node = yield* Effect.promise(() => run("scontrol", ["show", "node", "node1"]))
        assert.match(node.stdout, /\bGres=nshgpu:2\b/)

        yield* assertBuiltOnNode1(yield* outputsOf(drvPath!))
        yield* assertCleanedUp(env, [job!.jobId])
      }),
    180_000
  )
})
