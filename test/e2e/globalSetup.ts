/**
 * vitest globalSetup of the e2e project: brings the harness cluster up (test/harness/cluster-up.sh),
 * rebuilds the bundle so ./bin/nsh is current, provides the cluster's facts and a token to the tests,
 * and on teardown cancels jobs this run left behind and brings the cluster down
 * (NSH_TEST_KEEP_CLUSTER=1 keeps it). An adopted cluster (the team's lab, already running) is
 * shared: its jobs are not cancelled and its daemons are not stopped.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"
import type { ClusterFacts } from "./support/cluster.js"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))

const log = (line: string) => process.stderr.write(`[e2e globalSetup] ${line}\n`)

/** Runs a command from the repo root; its stderr goes to ours (the harness logs there). */
const sh = (command: string, args: ReadonlyArray<string>, what: string): string => {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  if (result.error !== undefined) throw new Error(`${what}: cannot run ${command}: ${result.error.message}`)
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status ?? result.signal})`)
  return result.stdout
}

/** Cancels the jobs submitted since `since` (epoch ms) that are still queued: a test leaked them. */
const cancelLeftovers = (since: number) => {
  const lines = spawnSync("squeue", ["-h", "-o", "%i\t%V"], { encoding: "utf8" }).stdout ?? ""
  const leftovers = lines
    .split("\n")
    .map((line) => line.split("\t"))
    // %V is the submit time in local time without a zone, which Date parses as local time.
    .filter(([id, submitted]) => id !== undefined && id !== "" && Date.parse(submitted ?? "") >= since - 1000)
    .map(([id]) => id as string)
  if (leftovers.length === 0) return
  log(`cancelling jobs this run left behind: ${leftovers.join(" ")}`)
  spawnSync("scancel", leftovers, { stdio: "inherit" })
}

/**
 * The newest API version the server offers, from the paths of its OpenAPI document
 * (`/slurm/v0.0.NN/...`): 22.05 serves v0.0.36–38, 26.05 v0.0.42–45.
 */
const newestApiVersion = async (restUrl: string, jwt: string): Promise<string> => {
  const response = await fetch(`${restUrl}/openapi/v3`, {
    headers: { "X-SLURM-USER-NAME": "root", "X-SLURM-USER-TOKEN": jwt }
  })
  if (!response.ok) throw new Error(`GET ${restUrl}/openapi/v3 answered HTTP ${response.status}`)
  const paths = Object.keys(((await response.json()) as { paths?: Record<string, unknown> }).paths ?? {})
  const versions = [...new Set(paths.flatMap((path) => /^\/slurm\/(v0\.0\.\d+)\//.exec(path)?.[1] ?? []))]
  const newest = versions.sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2])).at(-1)
  if (newest === undefined) throw new Error(`${restUrl}/openapi/v3 lists no /slurm/v0.0.NN/ path`)
  log(`slurmrestd serves ${versions.join(", ")}: the tests use ${newest}`)
  return newest
}

export default async function setup(project: TestProject) {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the e2e tests need root: they start Slurm daemons, create namespaces and use the machine's Nix store. " +
        "Run them as root (npm test), or run only the unit tests: npx vitest run --project unit"
    )
  }
  const startedAt = Date.now()
  const mode = /mode=adopted/.test(sh("bash", ["test/harness/cluster-up.sh"], "test/harness/cluster-up.sh"))
    ? "adopted"
    : "owned"
  log(`cluster ${mode === "adopted" ? "adopted (already running)" : "is up"}`)
  const down = () => {
    if (process.env.NSH_TEST_KEEP_CLUSTER === "1") {
      log("NSH_TEST_KEEP_CLUSTER=1: leaving the cluster up")
      return
    }
    sh("bash", ["test/harness/cluster-down.sh"], "test/harness/cluster-down.sh")
  }
  try {
    sh(process.execPath, ["scripts/build.mjs"], "building the bundle (node scripts/build.mjs)")
    const jwt = sh("scontrol", ["token", "lifespan=7200"], "scontrol token").match(/SLURM_JWT=(\S+)/)?.[1]
    if (jwt === undefined) throw new Error("scontrol token printed no SLURM_JWT=...")
    const identity = sh("ssh", ["-T", "-G", "node1"], "ssh -G node1").match(/^identityfile (\S+)$/m)?.[1] ?? ""
    const restUrl = "http://127.0.0.1:6820"
    const facts: ClusterFacts = {
      restUrl,
      apiVersion: await newestApiVersion(restUrl, jwt),
      userName: "root",
      nodes: ["node1"],
      mode,
      sshIdentityFile: identity,
      nshBin: `${repoRoot}bin/nsh`,
      repoRoot,
      startedAt
    }
    project.provide("nshCluster", facts)
    project.provide("nshSlurmToken", jwt)
  } catch (error) {
    down()
    throw error
  }
  // Host-side Nix in tests (and the hooks it starts) must not try cache.nixos.org: this machine is
  // offline and every attempt costs seconds of DNS retries. Only the test processes get this.
  process.env.NIX_CONFIG = `${process.env.NIX_CONFIG ?? ""}\nsubstituters =\n`

  return () => {
    // An adopted lab is shared (other e2e runs may be submitting right now): only an owned
    // cluster's jobs are surely this run's.
    if (mode === "owned") cancelLeftovers(startedAt)
    down()
  }
}
