/**
 * The shared cluster between e2e files: a fault test puts node1 DOWN, stops slurmrestd or fills
 * node1, and restores it in its scope's finalizers; this is the net under those. Every e2e file
 * (test/e2e/support/setup.ts, vitest's setupFiles) restores what can be restored after each test
 * and checks that the cluster is healthy before and after the file, so a file that broke it fails
 * itself instead of every file after it.
 */
import { cluster, nodeExec, run, slurmFetch, squeueJobs, waitFor } from "./cluster.js"

/** The name of fault tests' filler jobs (support/faults.ts's fillNode1). */
export const fillerJobName = "nsh-e2e-faults-filler"

/** Resumes node `node` if Slurm has it DOWN, DRAINED or FAILED. */
export const resumeIfDown = async (node: string): Promise<void> => {
  const state = (await run("sinfo", ["-h", "-N", "-n", node, "-o", "%T"])).stdout.trim()
  // The lab has ReturnToService=2: a node whose slurmd answers may be back already.
  if (!/down|drain|fail/i.test(state)) return
  const result = await run("scontrol", ["update", `NodeName=${node}`, "State=RESUME"])
  if (result.code !== 0) throw new Error(`scontrol update NodeName=${node} State=RESUME: ${result.stderr}`)
}

/** What can be put back without knowing how it was broken: nodes resumed, filler jobs cancelled. */
export const restoreCluster = async (): Promise<void> => {
  for (const node of cluster().nodes) await resumeIfDown(node)
  const fillers = (await squeueJobs()).filter((j) => j.name === fillerJobName).map((j) => String(j.id))
  if (fillers.length > 0) await run("scancel", fillers)
}

const problems = async (): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  const ping = await slurmFetch("/ping").then((r) => r.status, (e: Error) => e.message)
  if (ping !== 200) found.push(`slurmrestd: GET /ping gave ${ping}`)
  for (const node of cluster().nodes) {
    const state = (await run("sinfo", ["-h", "-N", "-n", node, "-o", "%T"])).stdout.trim()
    // `*` marks a node whose slurmd does not answer.
    if (!/^(idle|mixed|allocated|completing)$/.test(state)) found.push(`${node} is ${state || "unknown to sinfo"}`)
    const sshd = await run("ssh", ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", node, "true"], {
      timeoutMs: 10_000
    })
    if (sshd.code !== 0) found.push(`ssh ${node} true: exit ${sshd.code}: ${sshd.stderr.trim()}`)
  }
  const store = await nodeExec("nix-store --version", "node1", { timeoutMs: 10_000 })
  if (store.code !== 0) found.push(`nix-store on node1: exit ${store.code}: ${store.stderr.trim()}`)
  const fillers = (await squeueJobs()).filter((j) => j.name === fillerJobName)
  for (const j of fillers) found.push(`filler job ${j.id} still ${j.state}`)
  return found
}

/** Resolves once the cluster is healthy; rejects, saying what is wrong, after `timeoutMs`. */
export const assertClusterHealthy = async (when: string, timeoutMs = 60_000): Promise<void> => {
  let last: ReadonlyArray<string> = []
  const healthy = await waitFor(async () => (last = await problems()).length === 0, timeoutMs, "health", 500).catch(
    () => false
  )
  if (!healthy) throw new Error(`the test cluster is not healthy ${when}:\n${last.join("\n")}`)
}
