#!/usr/bin/env node
/**
 * (e) Log latency: a build prints a line stamped with node1's clock every 100 ms for 5 s; the
 * delay is the time the line reached nix-build's stderr minus that stamp (one machine, one
 * clock). Side by side, on the same job log: `ssh node1 tail -F`, the way the reference follows
 * a job's log, started as soon as the job's log file exists.
 */
import { spawn } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import {
  ensureCluster,
  fmtMs,
  foreignJobs,
  makeNshConf,
  mustSucceed,
  nixBuild,
  now,
  onExit,
  progress,
  report,
  sharingNote,
  stats,
  table
} from "./lib/common.mjs"

ensureCluster()
const { conf, stateDir } = makeNshConf()
const others = foreignJobs()

/** `nsh-tick <i> <ns>` lines seen by one reader: node stamp and arrival, in ms. */
const ticks = (lines) =>
  lines.flatMap((l) => {
    const m = /nsh-tick \d+ (\d+)/.exec(l.text)
    return m === null ? [] : [{ stamped: Number(BigInt(m[1]) / 1000n) / 1000, seen: l.t }]
  })

/** Follows the job's log with ssh + tail -F once the file shows up in the state directory (shared with node1 in the lab). */
const tailAnchor = () => {
  const lines = []
  const children = []
  let stopped = false
  void (async () => {
    while (!stopped) {
      const entries = existsSync(stateDir) ? readdirSync(stateDir, { withFileTypes: true }) : []
      const log = entries.find((e) => e.isFile() && e.name.endsWith(".log"))
      if (log !== undefined) {
        const child = spawn("ssh", ["node1", "tail", "-n", "+1", "-F", join(stateDir, log.name)], {
          stdio: ["ignore", "pipe", "ignore"]
        })
        children.push(child)
        let pending = ""
        child.stdout.on("data", (chunk) => {
          const t = now()
          const parts = (pending + chunk.toString("utf8")).split("\n")
          pending = parts.pop()
          for (const text of parts) lines.push({ t, text })
        })
        return
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })().catch(() => {})
  const stop = () => {
    stopped = true
    for (const child of children) child.kill("SIGTERM")
  }
  onExit(stop)
  return { lines, stop }
}

progress("a build that prints a stamped line every 100 ms for 5 s")
const anchor = tailAnchor()
const build = await nixBuild({ attr: "ticker", conf })
anchor.stop()
mustSucceed(build, "nix-build of the ticker")

// A reader that connected late sees old lines at once: count only lines stamped after its first byte.
const delays = (seen) => {
  const from = seen.length > 0 ? Math.min(...seen.map((l) => l.t)) : Infinity
  return ticks(seen).filter((x) => x.stamped >= from).map((x) => x.seen - x.stamped)
}
const rows = [
  ["nsh → nix-build's stderr", delays(build.lines.filter((l) => l.stream === "stderr"))],
  ["ssh node1 tail -F <job log> (the reference's way)", delays(anchor.lines)]
].map(([label, ds]) => {
  const s = stats(ds)
  return [label, String(s.n), fmtMs(s.median), fmtMs(s.p95), fmtMs(s.max)]
})
report(
  "Build log latency, node1's timestamp → line visible (50 lines, 100 ms apart)",
  table(["reader", "lines", "p50", "p95", "max"], rows),
  [
    "nsh's path: job stdout → log file on node1 → nsh's SSH follower → fd 4 → Nix → nix-build's stderr; the tail reads the same file directly.",
    ...sharingNote(others)
  ]
)
