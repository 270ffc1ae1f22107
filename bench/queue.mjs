#!/usr/bin/env node
/**
 * (c) 20 independent 2 s derivations on a queue that runs 4 at a time (node1 has 4 CPUs, each
 * job takes 1): nix-build's wall time against the ideal, ceil(20/4) waves of one job's run time,
 * on an idle cluster and on one that another job keeps busy for the first seconds. Side by side:
 * the same build through bench/blocking-hook.mjs, which holds nsh's `# accept` until the job is
 * RUNNING — the reference's behaviour, under which Nix dispatches nothing else while a job waits.
 */
import { fileURLToPath } from "node:url"
import {
  ensureCluster,
  fmtS,
  foreignJobs,
  lineTime,
  makeNshConf,
  mustSucceed,
  nixBuild,
  progress,
  report,
  sh,
  sharingNote,
  slurmTimes,
  stats,
  table,
  trackJob
} from "./lib/common.mjs"

const count = 20
const slots = 4
const blockingHook = fileURLToPath(new URL("blocking-hook.mjs", import.meta.url))

ensureCluster()
const { conf } = makeNshConf()
const others = foreignJobs()

/** The largest number of jobs running at the same moment. */
const maxOverlap = (jobs) => {
  const events = jobs.flatMap((j) => [[j.start, 1], [j.end, -1]]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let running = 0
  let most = 0
  for (const [, delta] of events) most = Math.max(most, running += delta)
  return most
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Occupies all of node1's CPUs for `seconds` (another user's job), once it runs. */
const fillCluster = async (seconds) => {
  const id = Number(
    sh("sbatch", [
      "--parsable",
      "-c",
      String(slots),
      "-J",
      "nsh-bench-filler",
      "-D",
      "/tmp",
      "-o",
      "/dev/null",
      "--wrap",
      `sleep ${seconds}`
    ]).trim()
  )
  trackJob(id)
  while (sh("squeue", ["-h", "-j", String(id), "-o", "%T"]).trim() === "PENDING") await sleep(100)
  return slurmTimes([id]).get(id).start ?? Date.now()
}

const measure = async (scenario, label, hook, busySeconds = 0) => {
  progress(`${count} derivations × 2 s, ${scenario}, ${label}`)
  const fillerStart = busySeconds > 0 ? await fillCluster(busySeconds) : undefined
  const build = mustSucceed(
    await nixBuild({ attr: "queue", conf, hook, timeoutMs: 120_000 }),
    `nix-build of ${count} derivations (${label})`
  )
  const times = slurmTimes(build.jobIds)
  const jobs = [...times.values()].filter((j) => j.start !== undefined && j.end !== undefined)
  const submits = jobs.map((j) => j.submit).sort((a, b) => a - b)
  // When nix-build showed each job's "is running" message: Nix drains a hook's stderr only
  // from its event loop, never while it waits for another hook's reply.
  const shownLate = [...times].map(([id, j]) =>
    lineTime(build.lines, new RegExp(`Slurm job ${id} is running on`)) - j.start
  )
  return {
    scenario,
    label,
    wall: build.ms,
    // The cluster is busy until the filler ends: no schedule can start our jobs earlier.
    busyFor: fillerStart === undefined ? 0 : Math.max(0, fillerStart + busySeconds * 1000 - build.start),
    jobs: build.jobIds.length,
    submitGap: stats(submits.slice(1).map((t, i) => t - submits[i])).median,
    allSubmitted: submits[submits.length - 1] - build.start,
    wait: stats(jobs.map((j) => j.start - j.submit)),
    run: stats(jobs.map((j) => j.end - j.start)).median,
    overlap: maxOverlap(jobs),
    shownLate: stats(shownLate.filter(Number.isFinite))
  }
}

progress("one queue derivation alone, for the job run time")
const alone = mustSucceed(await nixBuild({ attr: "queue.0", conf }), "nix-build of one queue derivation")
const aloneJob = slurmTimes(alone.jobIds).get(alone.jobIds[0])
const jobRun = aloneJob.end - aloneJob.start
const waves = Math.ceil(count / slots)

const busySeconds = 8
const results = [
  await measure("idle cluster", "nsh", undefined),
  await measure("idle cluster", "blocking hook (reference)", blockingHook),
  await measure(`busy for ${busySeconds} s`, "nsh", undefined, busySeconds),
  await measure(`busy for ${busySeconds} s`, "blocking hook (reference)", blockingHook, busySeconds)
]

report(
  `${count} independent 2 s builds, ${slots} run at a time`,
  [
    table(
      [
        "cluster",
        "hook",
        "wall",
        "ideal",
        "wall ÷ ideal",
        "submit gap",
        "last submit at",
        "queue wait",
        "job run",
        "most running at once",
        "'running' shown after"
      ],
      results.map((r) => {
        const ideal = r.busyFor + waves * jobRun
        return [
          r.scenario,
          r.label,
          fmtS(r.wall, 1),
          fmtS(ideal, 1),
          `${(r.wall / ideal).toFixed(2)}×`,
          fmtS(r.submitGap),
          fmtS(r.allSubmitted, 1),
          `${fmtS(r.wait.median, 1)} / ${fmtS(r.wait.max, 1)}`,
          fmtS(r.run, 1),
          `${r.overlap} of ${r.jobs}`,
          `${fmtS(r.shownLate.median, 1)} / ${fmtS(r.shownLate.max, 1)}`
        ]
      })
    ),
    "",
    `Ideal = time the cluster stays busy with another job + ceil(${count}/${slots}) = ${waves} waves × ${
      fmtS(jobRun)
    } (one such job's run alone, start → end in slurmctld's log).`
  ].join("\n"),
  [
    "Blocking hook = ./bin/nsh behind bench/blocking-hook.mjs, which releases `# accept` only once `squeue` shows the job RUNNING (polling 50 ms → 1 s, like the reference's batch_host loop); Nix dispatches nothing meanwhile.",
    `Busy cluster: a job holding all ${slots} CPUs for ${busySeconds} s is running when nix-build starts.`,
    "Submit gap (median between consecutive submissions): Nix starts one hook per accepted build, one after another, so submissions are paced by hook start-up + drv read + POST (+ the wait for RUNNING with the blocking hook).",
    "Queue wait (slurmctld submit → start) and 'running' shown after (job start → nix-build printed nsh's \"Slurm job N is running\" message): median / max. Nix reads other hooks' messages only between `try` replies.",
    `Job run (median, start → end): alone it is ${
      fmtS(jobRun)
    } for a 2 s sleep, as it includes waiting for nsh to see it start, SSH in and copy the inputs, then nix-store --realise; with 20 hooks at work on this machine it grows.`,
    ...sharingNote(others)
  ]
)
