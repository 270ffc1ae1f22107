#!/usr/bin/env node
/**
 * (b) End-to-end overhead of one trivial build through nsh: nix-build's wall time minus the
 * Slurm job's own submit → end time (slurmctld's log, ms), with where the rest goes. Side by
 * side: the same derivation through Nix's own build-remote to ssh-ng://node1 (no Slurm), and
 * built locally with no remote builders (what nix-build costs by itself).
 */
import {
  benchNix,
  ensureCluster,
  fmtMs,
  fmtS,
  foreignJobs,
  freshArgs,
  lineTime,
  makeNshConf,
  mustSucceed,
  nixBuild,
  progress,
  report,
  run,
  sharingNote,
  slurmTimes,
  stats,
  table
} from "./lib/common.mjs"

const runs = Number(process.env.NSH_BENCH_RUNS ?? 5)

ensureCluster()
const { conf } = makeNshConf()
const others = foreignJobs()

/** nix-build of the trivial derivation without nsh (node1 lacks the `nsh` feature, so drop it). */
const plainBuild = async (what, options) => {
  const args = [benchNix, "-A", "trivial", ...freshArgs("trivial", ["--arg", "cluster", "false"]), ...options]
  const common = ["--option", "build-users-group", "", "--option", "substituters", "", "--no-out-link"]
  return mustSucceed(await run("nix-build", [...args, ...common]), what).ms
}

const nsh = []
const viaBuildRemote = []
const local = []
for (let i = 0; i < runs; i++) {
  progress(`trivial build ${i + 1}/${runs}: through nsh, through build-remote, locally`)
  nsh.push(mustSucceed(await nixBuild({ attr: "trivial", conf }), "nix-build through nsh"))
  viaBuildRemote.push(
    await plainBuild("nix-build through build-remote", [
      "--builders",
      "ssh-ng://node1 x86_64-linux - 1 1",
      "--max-jobs",
      "0"
    ])
  )
  local.push(await plainBuild("local nix-build", ["--builders", "", "--max-jobs", "1"]))
}

const times = slurmTimes(nsh.flatMap((b) => b.jobIds))
// One record per nsh run: its phases in ms, from nix-build's start.
const phases = nsh.map((b) => {
  const job = times.get(b.jobIds[0]) ?? {}
  const at = (re) => lineTime(b.lines, re)
  return {
    wall: b.ms,
    job: job.end - job.submit,
    overhead: b.ms - (job.end - job.submit),
    toSubmit: job.submit - b.start,
    queue: job.start - job.submit,
    seenRunning: at(/is running on/) - job.start,
    inputs: at(/nsh: copied \d+ paths/) - at(/is running on/),
    build: job.end - at(/nsh: copied \d+ paths/),
    outputs: at(/nsh: copied \d+ outputs/) - job.end,
    exit: b.end - at(/nsh: copied \d+ outputs/)
  }
})
const row = (label, values, fmt = fmtMs) => {
  const s = stats(values.filter(Number.isFinite))
  return [label, fmt(s.median), fmt(s.min), fmt(s.max)]
}
const col = (key) => phases.map((p) => p[key])

report(
  `One trivial build, end to end (${runs} runs each)`,
  [
    table(["", "median", "min", "max"], [
      row("nix-build wall time, through nsh + Slurm", col("wall"), fmtS),
      row("Slurm job, submit → end (slurmctld log)", col("job"), fmtS),
      row("**overhead: wall − job**", col("overhead"), fmtS),
      row("nix-build wall time, Nix build-remote → ssh-ng://node1 (no Slurm)", viaBuildRemote, fmtS),
      row("nix-build wall time, built locally (no builders)", local, fmtS)
    ]),
    "",
    "Where the nsh run's time goes (medians over the runs):",
    "",
    table(["phase", "median", "min", "max"], [
      row("nix-build start → job submitted (eval, hook start, drv read, POST)", col("toSubmit")),
      row("submitted → started (Slurm's scheduling tick)", col("queue")),
      row("started → nsh sees it running (polling)", col("seenRunning")),
      row("SSH connect + copy inputs (.drv closure) to node1", col("inputs")),
      row("inputs there → job ends (realise on node1, job exits)", col("build")),
      row("job ends → outputs copied back", col("outputs")),
      row("outputs back → nix-build exits", col("exit"))
    ])
  ].join("\n"),
  [
    "Slurm's times are slurmctld's log timestamps (ms); `scontrol show job` only has whole seconds.",
    "The lab starts batch jobs on slurmctld's ~1 s scheduling tick: 'submitted → started' is the scheduler, not nsh.",
    ...sharingNote(others)
  ]
)
