/**
 * Helpers for the site tests (test/site/): the site profile's user alice (test/harness/site-up.sh)
 * and her things, commands run as her (through her login shell, tcsh, as `su -` does), nix-build
 * of test/fixtures/site/site.nix as her, and the checks after a build (nothing of it left).
 */
import { readdir } from "node:fs/promises"
import { assert } from "vitest"
import { harnessScript, run, type RunOptions, type RunResult, squeueJobs, waitFor } from "../../e2e/support/cluster.js"

/** What site-up.sh made for alice. */
export const alice = {
  user: "alice",
  uid: 1000,
  home: "/home/alice",
  /** Her Nix's store on the login side: a chroot store in her home (~/.config/nix/nix.conf). */
  store: "/home/alice/.local/share/nix/root",
  /** remote-store in her nsh.conf: a chroot store of hers on node1's local /scratch. */
  nodeStore: "/scratch/alice/nix",
  /** slurm-state-dir (nsh's default), in her home, which node1 shares. */
  stateDir: "/home/alice/.local/state/nsh"
} as const

/** A shell command as alice, through her login shell (tcsh) as `su - alice -c` runs it. */
export const asAlice = (cmd: string, options: RunOptions = {}): Promise<RunResult> =>
  run("su", ["-", alice.user, "-c", cmd], options)

/** A command as alice inside node1's namespaces, without SSH (test tooling, not a login). */
export const aliceOnNode1 = (argv: ReadonlyArray<string>, options: RunOptions = {}): Promise<RunResult> =>
  run("bash", [
    harnessScript("node-exec.sh"),
    "node1",
    "setpriv",
    `--reuid=${alice.uid}`,
    `--regid=${alice.uid}`,
    "--init-groups",
    "env",
    `HOME=${alice.home}`,
    ...argv
  ], options)

/** A nonce for site.nix, so nothing is cached from an earlier build. */
export const newNonce = (name: string): string => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`

const fixture = new URL("../../fixtures/site/site.nix", import.meta.url).pathname

/** `nix-build` of one attribute of site.nix as alice, her way (her nix.conf and nsh.conf), from her home. */
export const aliceBuild = (attr: string, nonce: string, extraArgs = ""): Promise<RunResult> =>
  asAlice(`cd && nix-build ${fixture} -A ${attr} --argstr nonce ${nonce} --no-out-link ${extraArgs}`, {
    timeoutMs: 240_000
  })

/** The Slurm jobs nsh reported submitting (`nsh: submitted '<drv>' as Slurm job N`). */
export const submittedJobIds = (stderr: string): ReadonlyArray<number> =>
  [...stderr.matchAll(/^nsh: submitted '\S+\.drv' as Slurm job (\d+)$/gm)].map(([, id]) => Number(id))

/** `scontrol show job -o` as fields. */
export const jobFields = async (jobId: number): Promise<Record<string, string>> => {
  const result = await run("scontrol", ["show", "job", "-o", String(jobId)])
  assert.strictEqual(result.code, 0, result.stderr)
  return Object.fromEntries(
    result.stdout.trim().split(/ (?=[A-Za-z][A-Za-z/:_]*=)/).map((
      f
    ) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1)])
  )
}

/**
 * After a build: its jobs gone from squeue, no file of nsh's left in alice's state dir (which node1
 * shares: log, lease, GC root, journal entry) and no GC root of nsh's in her store on node1
 * (or in the store whose state directory is `nodeStateDir`).
 */
export const assertNothingLeft = async (
  jobIds: ReadonlyArray<number>,
  stateDir: string = alice.stateDir,
  nodeStateDir: string = `${alice.nodeStore}/nix/var/nix`
) => {
  const ours = async () => (await squeueJobs()).filter((j) => jobIds.includes(j.id)).map((j) => j.id)
  const gone = await waitFor(async () => (await ours()).length === 0, 30_000, "the jobs to leave squeue", 250).catch(
    () => false
  )
  assert.isTrue(gone, `jobs still in squeue after 30 s: ${(await ours()).join(", ")}`)
  const left = (await readdir(stateDir, { recursive: true }).catch(() => [])).filter((f) => f !== "journal")
  assert.deepStrictEqual(left, [], `files left in ${stateDir}`)
  // nix-store --add-root --indirect links gcroots/auto to the root file in the state dir: that
  // link may stay, but the root file it names (itself a link into the store) must be gone.
  const roots = await aliceOnNode1([
    "sh",
    "-c",
    `for l in ${nodeStateDir}/gcroots/auto/*; do t=$(readlink "$l") && [ -L "$t" ] && echo "$t"; done; true`
  ])
  assert.strictEqual(roots.code, 0, roots.stderr)
  assert.strictEqual(roots.stdout, "", "GC roots left in alice's store on node1")
}
