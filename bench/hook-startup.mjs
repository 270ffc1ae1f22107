#!/usr/bin/env node
/**
 * (a) Hook start-up to first answer. Nix blocks its whole scheduler until a hook replies to
 * `try`, and starts a new hook after every accepted build, so this delay is paid once per
 * remote build. Times exec → `# decline` on stderr for ./bin/nsh (an nsh.conf that declines:
 * the derivation lacks the mandatory `nsh` feature) and for Nix's own build-remote (no
 * builders: it answers `# decline-permanently`), fed the same captured Nix stdin; `node -e 0`
 * (start to exit) is the floor any Node.js hook pays. The accept path: exec → nsh's first request
 * to slurmrestd for a derivation routed to the cluster (a stand-in server that never answers; the
 * full session and the cluster stack are loaded and running by then). NSH_BENCH_OTHER_BIN=<bin/nsh
 * of another build> times that one too, in the same runs (before/after figures).
 */
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import {
  benchNix,
  ensureCluster,
  fmtMs,
  freshArgs,
  makeNshConf,
  now,
  nshBin,
  progress,
  report,
  sh,
  stats,
  table
} from "./lib/common.mjs"
import { hookStdin } from "./lib/hook-stdin.mjs"

const runs = Number(process.env.NSH_BENCH_RUNS ?? 30)
const warmup = 3
const buildRemote = "/usr/libexec/nix/build-remote"

/** ms from spawn until stderr holds a `# decline…` line (or, without `input`, until exit). */
const timeToAnswer = (command, args, env, input) =>
  new Promise((resolve, reject) => {
    const start = now()
    const child = spawn(command, args, { env, stdio: [input === undefined ? "ignore" : "pipe", "ignore", "pipe"] })
    let stderr = ""
    let answered
    child.stderr.on("data", (chunk) => {
      stderr += chunk.toString("utf8")
      if (answered === undefined && /^# decline/m.test(stderr)) {
        answered = now() - start
        // A hook stays alive after declining (it waits for the next `try`): end it.
        child.kill("SIGKILL")
      }
    })
    // Like Nix: everything written at once, stdin left open.
    if (input !== undefined) child.stdin.write(input)
    child.stdin?.on("error", () => {})
    child.on("error", reject)
    child.on("close", (code) => {
      if (input === undefined) resolve(now() - start)
      else if (answered !== undefined) resolve(answered)
      else reject(new Error(`${command} ended (exit ${code}) without declining: ${stderr.trim().slice(-500)}`))
    })
  })

/** ms from spawn until `server` sees its first request, then the hook is killed. */
const timeToRequest = (server, command, args, env, input) =>
  new Promise((resolve, reject) => {
    const start = now()
    const child = spawn(command, args, { env, stdio: ["pipe", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk.toString("utf8")))
    let seen
    server.once("request", () => {
      seen = now() - start
      child.kill("SIGKILL")
    })
    child.stdin.write(input)
    child.stdin.on("error", () => {})
    child.on("error", reject)
    child.on("close", (code) => {
      server.removeAllListeners("request")
      if (seen !== undefined) resolve(seen)
      else reject(new Error(`${command} ended (exit ${code}) without asking slurmrestd: ${stderr.trim().slice(-500)}`))
    })
  })

ensureCluster()
const { conf, dir } = makeNshConf()
// A stand-in slurmrestd that never answers: the accept path's local cost up to its first request.
const standIn = createServer(() => {})
await new Promise((resolve) => standIn.listen(0, "127.0.0.1", resolve))
const acceptConf = `${dir}/nsh-accept.conf`
writeFileSync(
  acceptConf,
  `${readFileSync(conf, "utf8")}slurm-api-port = ${standIn.address().port}\n`
)
// The routing card is written only for settled files (RoutingCard.ts): let them age first.
await new Promise((resolve) => setTimeout(resolve, 2500))
const other = process.env.NSH_BENCH_OTHER_BIN
// Any drv path will do: declining never reads the derivation.
const input = hookStdin({
  overrides: { builders: "", "build-hook": nshBin },
  drvPath: "/nix/store/dfsnlmxxlcviqr653dx97p6wakfjrsrk-hookproto-dep-a.drv"
})

// A real .drv (the accept path reads it); its first request, negotiating the API version, comes
// before the watchdog starts, so killing the hook then leaves nothing behind.
const trivialDrv = sh("nix-instantiate", [benchNix, "-A", "trivial", ...freshArgs("trivial")]).trim()
const routed = hookStdin({
  overrides: { builders: "", "build-hook": nshBin },
  drvPath: trivialDrv,
  features: ["nsh"]
})
const nshVariants = (label, bin) => [
  {
    label: `${label} (3, nsh.conf declines)`,
    command: bin,
    args: ["3"],
    env: { ...process.env, NSH_CONF: conf },
    input
  },
  {
    label: `${label} (3, accept path: until its first slurmrestd request)`,
    command: bin,
    args: ["3"],
    env: { ...process.env, NSH_CONF: acceptConf },
    input: routed,
    server: standIn
  }
]
const variants = [
  ...nshVariants("nsh ./bin/nsh", nshBin),
  ...(other ? nshVariants(`nsh ${other}`, other) : []),
  { label: "Nix build-remote 3 (builders = '')", command: buildRemote, args: ["3"], env: process.env, input },
  { label: "node -e 0 (start to exit)", command: process.execPath, args: ["-e", "0"], env: process.env }
]

progress(`hook start-up: ${runs} runs of each of ${variants.length} variants (+${warmup} warm-up)`)
const samples = variants.map(() => [])
for (let i = 0; i < warmup + runs; i++) {
  // Interleaved, so that a noisy moment hits every variant alike.
  for (const [k, v] of variants.entries()) {
    const ms = v.server
      ? await timeToRequest(v.server, v.command, v.args, v.env, v.input)
      : await timeToAnswer(v.command, v.args, v.env, v.input)
    if (i >= warmup) samples[k].push(ms)
  }
}

const rows = variants.map((v, k) => {
  const s = stats(samples[k])
  return [v.label, fmtMs(s.median), fmtMs(s.p95), fmtMs(s.min), fmtMs(s.max)]
})
standIn.close()
const medians = samples.map((xs) => stats(xs).median)
const [nshMedian, remoteMedian, nodeMedian] = [medians[0], medians.at(-2), medians.at(-1)]
report(`Hook start-up to first answer (${runs} runs each)`, table(["hook", "median", "p95", "min", "max"], rows), [
  `nsh answers ${fmtMs(nshMedian - remoteMedian)} later than Nix's build-remote (median); ${
    fmtMs(nshMedian - nodeMedian)
  } of it is above a bare \`node -e 0\`.`,
  "Paid once per `try` round (Nix starts a new hook after each accepted build), while Nix's scheduler waits.",
  "Both hooks read the same captured Nix 2.8 settings block (91 settings) and one `try`."
])
