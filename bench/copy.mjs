#!/usr/bin/env node
/**
 * (d) Copying a 200 MiB input to node1: nsh's input copy (the time between its "copying inputs
 * to node1" activity and its "copied N paths" message, in a real build whose only input is that
 * path) against Nix's own tools, nix-copy-closure (ssh, nix-store --serve) and nix copy to
 * ssh-ng://node1 (the daemon protocol), and the bare pipe nsh streams through, nix-store
 * --export | ssh node1 nix-store --import. node1's copy is deleted before every variant, so each
 * copies everything. A second table shows where the time goes: the local export alone, the node's
 * import alone (from a file in the shared home), and the raw transports (ssh2 with its ciphers,
 * OpenSSH multiplexed on a control master) carrying the same number of bytes to `cat`.
 */
import { readFileSync, writeFileSync } from "node:fs"
import {
  benchNix,
  ensureCluster,
  fmtS,
  foreignJobs,
  freshArgs,
  lineTime,
  makeNshConf,
  mustSucceed,
  nixBuild,
  nodeExec,
  progress,
  report,
  run,
  sh,
  sharingNote,
  stats,
  table
} from "./lib/common.mjs"
import { opensshThroughput, ssh2Throughput } from "./lib/transports.mjs"

const reps = Number(process.env.NSH_BENCH_RUNS ?? 3)
const mib = 200

ensureCluster()
const { conf, dir } = makeNshConf()
// The same nsh.conf with the OpenSSH transport.
const opensshConf = `${dir}/nsh-openssh.conf`
writeFileSync(opensshConf, `${readFileSync(conf, "utf8")}ssh-transport = openssh\n`, { mode: 0o600 })
const others = foreignJobs()

progress(`building the ${mib} MiB input locally`)
const big = mustSucceed(
  await run("nix-build", [
    benchNix,
    "-A",
    "big",
    ...freshArgs("big"),
    "--builders",
    "",
    "--option",
    "build-users-group",
    "",
    "--option",
    "substituters",
    "",
    "--no-out-link"
  ]),
  "building the 200 MiB input"
).stdout.trim()

const onNode = () => nodeExec(`nix-store --check-validity ${big} 2>/dev/null && echo yes || echo no`).trim() === "yes"
const forgetOnNode = () => {
  nodeExec(`nix-store --delete ${big} >/dev/null 2>&1 || true`)
  if (onNode()) throw new Error(`cannot delete ${big} from node1's store (still alive there?)`)
}

/** Times one way of copying; `copy` returns ms (or throws). */
const variants = [
  ...[["ssh2", conf], ["openssh", opensshConf]].map(([transport, file]) => ({
    label: `nsh, ssh-transport = ${transport} (input copy phase of a build)`,
    copy: async () => {
      const build = mustSucceed(await nixBuild({ attr: "useBig", conf: file }), "nix-build through nsh")
      const copied = build.lines.find((l) => /nsh: copied \d+ paths \([\d.]+ MiB\)/.test(l.text))
      return { ms: copied.t - lineTime(build.lines, /^copying inputs to /), what: copied.text.replace(/^nsh: /, "") }
    }
  })),
  {
    label: "nix-store --export | ssh node1 nix-store --import",
    copy: async () => ({
      ms: mustSucceed(
        await run("sh", ["-c", `nix-store --export ${big} | ssh node1 nix-store --import`]),
        "export | import"
      ).ms
    })
  },
  {
    label: "nix-copy-closure --to node1",
    copy: async () => ({
      ms: mustSucceed(await run("nix-copy-closure", ["--to", "node1", big]), "nix-copy-closure").ms
    })
  },
  {
    label: "nix copy --to ssh-ng://node1",
    copy: async () => ({
      ms: mustSucceed(
        await run("nix", [
          "--extra-experimental-features",
          "nix-command",
          "copy",
          "--no-check-sigs",
          "--to",
          "ssh-ng://node1",
          big
        ]),
        "nix copy"
      ).ms
    })
  }
]

const samples = variants.map(() => [])
const notes = []
for (let i = 0; i < reps; i++) {
  for (const [k, v] of variants.entries()) {
    progress(`${v.label} (${i + 1}/${reps})`)
    forgetOnNode()
    const { ms, what } = await v.copy()
    if (!onNode()) throw new Error(`${v.label} finished but ${big} is not valid on node1`)
    samples[k].push(ms)
    if (what !== undefined && i === 0) notes.push(`nsh reported: ${what}.`)
  }
}
forgetOnNode()

// Where the time goes: each stage alone, on the same bytes.
const sizeMiB = Math.round(Number(sh("nix-store", ["-q", "--size", big]).trim()) / 2 ** 20)
const narFile = `${dir}/big.export`
const stages = [
  {
    label: "nix-store --export here, to a file",
    time: async () => mustSucceed(await run("sh", ["-c", `nix-store --export ${big} > ${narFile}`]), "export").ms
  },
  {
    label: "nix-store --import on node1, from that file (no SSH)",
    time: async () => {
      forgetOnNode()
      const t0 = Date.now()
      nodeExec(`nix-store --import < ${narFile} >/dev/null`)
      return Date.now() - t0
    }
  },
  ...[
    ["ssh2", ssh2Throughput, undefined],
    ["ssh2", ssh2Throughput, "aes128-ctr"],
    ["OpenSSH (control master)", opensshThroughput, undefined],
    ["OpenSSH (control master)", opensshThroughput, "aes128-gcm@openssh.com"]
  ].map(([transport, throughput, cipher]) => ({
    label: `${transport} → cat > /dev/null, cipher ${cipher ?? "default"}`,
    time: async () => {
      const r = await throughput("node1", sizeMiB, cipher)
      const times = `connect ${Math.round(r.connectMs)} ms, then \`true\` ${Math.round(r.roundTripMs)} ms`
      return { ms: r.ms, note: `${transport}, cipher ${cipher ?? "default"}: ${r.cipher}, ${times}` }
    }
  }))
]
const stageSamples = stages.map(() => [])
const stageNotes = new Map()
for (let i = 0; i < reps; i++) {
  for (const [k, stage] of stages.entries()) {
    progress(`${stage.label} (${i + 1}/${reps})`)
    const result = await stage.time()
    stageSamples[k].push(typeof result === "number" ? result : result.ms)
    if (typeof result !== "number") stageNotes.set(k, result.note)
  }
}
forgetOnNode()

const size = Number(sh("nix-store", ["-q", "--size", big]).trim())
report(
  `Copying a ${mib} MiB path to node1 (${reps} runs each)`,
  table(
    ["how", "median", "min", "MiB/s (median)"],
    variants.map((v, k) => {
      const s = stats(samples[k])
      return [v.label, fmtS(s.median), fmtS(s.min), ((size / 2 ** 20) / (s.median / 1000)).toFixed(0)]
    })
  ),
  [
    ...notes,
    "nsh's figure covers the missing-path query and the streamed export | import over its own SSH connection (the connection is made before); the others include starting ssh.",
    "Data from /dev/urandom (incompressible); everything on one machine over loopback, so this measures CPU and store overhead, not a network.",
    ...sharingNote(others)
  ]
)
report(
  `Where the time goes (${sizeMiB} MiB, ${reps} runs each, same run)`,
  table(
    ["stage", "median", "min", "MiB/s (median)"],
    stages.map((stage, k) => {
      const s = stats(stageSamples[k])
      return [stage.label, fmtS(s.median), fmtS(s.min), (sizeMiB / (s.median / 1000)).toFixed(0)]
    })
  ),
  [
    ...[...stageNotes.values()].map((n) => `${n} (last run).`),
    "The raw transports are fed from this process in 1 MiB writes, waiting for drain, as nsh feeds its input stream."
  ]
)
