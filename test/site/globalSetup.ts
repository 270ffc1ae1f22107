/**
 * vitest globalSetup of the site project: the tests run inside the site profile of the harness
 * (`test/harness/on-release.sh RELEASE --site -- npx vitest run --project site`), which brought
 * the cluster up already (site-up.sh) and goes with the run; this only checks that it is there
 * and rebuilds the bundle that bin/nsh (alice's build hook) runs.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))

export default function setup() {
  if (process.getuid?.() !== 0 || !existsSync("/etc/nsh-site")) {
    throw new Error(
      "the site tests run as root inside the harness's site profile: " +
        "bash test/harness/on-release.sh bookworm --site -- npx vitest run --project site"
    )
  }
  const built = spawnSync(process.execPath, ["scripts/build.mjs"], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "inherit"]
  })
  if (built.status !== 0) throw new Error(`building the bundle (node scripts/build.mjs) failed (exit ${built.status})`)
}
