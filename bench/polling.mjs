#!/usr/bin/env node
/**
 * (g) Polling with many builds at once: 1, 5 and 20 independent 10 s builds (4 run at a time), all
 * their hooks alive together. slurmrestd's requests per second over the build (every request its
 * log shows in that window), and the login node's CPU seconds per build (nix-build and every hook,
 * counted as this process's reaped children). NSH_BENCH_OTHER_BIN=<bin/nsh of another build> runs
 * the same with that one too (before/after figures in one run).
 */
import { readFileSync, statSync } from "node:fs"
import {
  fmtS,
  mustSucceed,
  nixBuild,
  nshBin,
  progress,
  report,
  requestCounting,
  sharingNote,
  table
} from "./lib/common.mjs"

const { conf, others, logFile } = requestCounting()
const ticksPerSecond = 100

/** CPU seconds of this process's reaped children (utime + stime of every waited-for descendant). */
const childrenCpu = () => {
  const fields = readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ")
  // After the name: field 3 is the state; cutime and cstime are fields 16 and 17 (1-based).
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond
}

const requestsSince = (offset) =>
  readFileSync(logFile).subarray(offset).toString("utf8").split("\n").filter((l) =>
    /operations_router: \[.+?\] (GET|POST|PUT|DELETE) /.test(l)
  ).length

const hooks = [
  ["nsh ./bin/nsh", nshBin],
  ...(process.env.NSH_BENCH_OTHER_BIN
    ? [["nsh " + process.env.NSH_BENCH_OTHER_BIN, process.env.NSH_BENCH_OTHER_BIN]]
    : [])
]
const rows = []
for (const n of [1, 5, 20]) {
  for (const [label, hook] of hooks) {
    progress(`${n} builds in flight, ${label}`)
    const offset = statSync(logFile).size
    const cpu0 = childrenCpu()
    const build = mustSucceed(
      await nixBuild({ attr: `flight${n}`, conf, hook, timeoutMs: 300_000 }),
      `nix-build of ${n} builds`
    )
    const cpu = childrenCpu() - cpu0
    const requests = requestsSince(offset)
    rows.push([
      String(n),
      label,
      fmtS(build.ms, 1),
      String(requests),
      (requests / (build.ms / 1000)).toFixed(1),
      (requests / n).toFixed(1),
      `${(cpu / n).toFixed(2)} s`
    ])
  }
}

report(
  "Polling with builds in flight (10 s builds, 4 run at a time)",
  table(
    ["builds", "hook", "wall", "slurmrestd requests", "requests / s", "requests / build", "login CPU / build"],
    rows
  ),
  [
    `Requests: every request in slurmrestd's log (${logFile}) during the nix-build; login CPU: nix-build and its hooks (user + system, reaped children of this script), divided by the number of builds.`,
    ...sharingNote(others)
  ]
)
