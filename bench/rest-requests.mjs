#!/usr/bin/env node
/**
 * (f) slurmrestd requests per job, for a 1 s and a 60 s build: the requests slurmrestd logged
 * (`operations_router` lines) on the connections that asked about the build's job, by kind.
 * Side by side: what the reference would send for the same queue wait and run time, from the
 * polling loops in its src/slurm.cpp (a model, not a measurement).
 */
import { readFileSync, statSync } from "node:fs"
import {
  lineTime,
  mustSucceed,
  nixBuild,
  progress,
  report,
  requestCounting,
  sharingNote,
  slurmTimes,
  table
} from "./lib/common.mjs"

const { conf, others, logFile } = requestCounting()

/** Requests slurmrestd logged since `offset`: connection, method, path. */
const requestsSince = (offset) => {
  const fd = readFileSync(logFile)
  return fd
    .subarray(offset)
    .toString("utf8")
    .split("\n")
    .flatMap((line) => {
      const m = /operations_router: \[(.+?)\] (GET|POST|PUT|DELETE) (\S+)/.exec(line)
      return m === null ? [] : [{ conn: m[1], method: m[2], path: m[3] }]
    })
}

const kind = (r) =>
  /\/ping$/.test(r.path) ?
    "ping (version negotiation)" :
    r.method === "POST" && /\/job\/submit$/.test(r.path) ?
    "POST job/submit" :
    r.method === "GET" && /\/job\/\d+$/.test(r.path) ?
    "GET job/{id}" :
    r.method === "DELETE" ?
    "DELETE job/{id}" :
    "other"
const kinds = ["ping (version negotiation)", "POST job/submit", "GET job/{id}", "DELETE job/{id}", "other"]

/**
 * The reference's requests for a job, from src/slurm.cpp at HEAD: POST submit; GET /job until
 * batch_host is set (sleeps 50 ms doubling while < 1 s); after connecting and copying, GET /job
 * until the state is neither PENDING nor RUNNING (sleeps 50 ms doubling while < 4 s); one GET for
 * the return code; one GET in the destructor. Request time itself is neglected.
 */
const referenceModel = ({ queue, copy, run }) => {
  let t = 0
  let requests = 1
  for (let sleep = 50;;) {
    requests++
    if (t >= queue) break
    t += sleep
    if (sleep < 1000) sleep *= 2
  }
  t += copy
  const end = queue + run
  for (let sleep = 50;;) {
    requests++
    if (t >= end) break
    t += sleep
    if (sleep < 4000) sleep *= 2
  }
  return requests + 2
}

const cases = [
  { attr: "sleep1", label: "1 s build" },
  { attr: "sleep60", label: "60 s build" }
]
const rows = []
for (const c of cases) {
  progress(`${c.label}: counting slurmrestd requests`)
  const offset = statSync(logFile).size
  const build = mustSucceed(await nixBuild({ attr: c.attr, conf, timeoutMs: 120_000 }), `nix-build of the ${c.label}`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const jobId = build.jobIds[0]
  const all = requestsSince(offset)
  // The hook's connections are those that asked about its job; count everything they carried,
  // plus the version pings right before (slurmrestd closes the connection after each 404).
  const conns = new Set(all.filter((r) => r.path.endsWith(`/job/${jobId}`)).map((r) => r.conn))
  const first = all.findIndex((r) => conns.has(r.conn))
  const once = (conn) => all.filter((r) => r.conn === conn).length === 1
  let from = first
  while (
    from > 0 && kind(all[from - 1]) === "ping (version negotiation)" && once(all[from - 1].conn) &&
    all[from - 1].path.localeCompare(all[from].path, "en", { numeric: true }) > 0
  ) {
    conns.add(all[--from].conn)
  }
  const ours = all.filter((r) => conns.has(r.conn))
  const byKind = kinds.map((k) => ours.filter((r) => kind(r) === k).length)
  const job = slurmTimes([jobId]).get(jobId)
  const copy = lineTime(build.lines, /nsh: copied \d+ paths/) - lineTime(build.lines, /is running on/)
  const model = referenceModel({
    queue: job.start - job.submit,
    copy: Number.isFinite(copy) ? copy : 0,
    run: job.end - job.start
  })
  rows.push([
    c.label,
    `${((job.end - job.submit) / 1000).toFixed(1)} s`,
    String(ours.length),
    ...byKind.map(String),
    String(conns.size),
    String(model)
  ])
}

report(
  "slurmrestd requests per build",
  table(["build", "job submit → end", "nsh: total", ...kinds, "connections", "reference (model)"], rows),
  [
    `Counted from slurmrestd's request log (${logFile}): every request on the connections that asked for the build's job, and the version pings just before them (one connection each).`,
    "Each hook process negotiates the API version by pinging v0.0.45 down to the newest version served (v0.0.38 on Slurm 22.05).",
    "nsh polls GET /job/{id} from 50 ms, ×1.5 per poll, at most every 2 s; the reference's model uses the same queue wait, copy and run times.",
    ...sharingNote(others)
  ]
)
