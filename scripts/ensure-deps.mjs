// Runs `npm ci` when node_modules is missing or does not match package-lock.json, so that
// `npm test` and `npm run demo` work on a fresh checkout in one command (npm runs this as their
// `pretest`/`predemo`). Node built-ins only: nothing else may be installed yet.
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"

const read = (file) => JSON.parse(readFileSync(file, "utf8"))

/** Why node_modules must be (re)installed, or undefined when it matches the lock file. */
export const staleness = (lock, installed) => {
  if (installed === undefined) return "node_modules is missing"
  const wanted = Object.entries(lock.packages ?? {}).filter(([path, p]) => path !== "" && !p.optional)
  const have = installed.packages ?? {}
  const off = wanted.find(([path, p]) => have[path]?.version !== p.version)
  return off === undefined
    ? undefined
    : `${off[0]} is ${have[off[0]]?.version ?? "not installed"}, package-lock.json wants ${off[1].version}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // npm keeps what it installed in node_modules/.package-lock.json.
  const installed = existsSync("node_modules/.package-lock.json") ? read("node_modules/.package-lock.json") : undefined
  const why = staleness(read("package-lock.json"), installed) ??
    (existsSync("dist/nsh.mjs") ? undefined : "dist/ is not built")
  if (why !== undefined) {
    console.error(`${why}: running npm ci`)
    const ci = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { stdio: "inherit" })
    process.exit(ci.status ?? 1)
  }
}
