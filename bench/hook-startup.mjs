#!/usr/bin/env node
/**
 * (a) Hook start-up to first answer. Nix blocks its whole scheduler until a hook replies to
 * `try`, and starts a new hook after every accepted build, so this delay is paid once per
 * remote build. Times exec → `# decline` on stderr for ./bin/nsh (an nsh.conf that declines:
 * the derivation lacks the mandatory `nsh` feature) and for Nix's own build-remote (no
 * builders: it answers `# decline-permanently`), fed the same captured Nix stdin; `node -e 0`
 * (start to exit) is the floor any Node.js hook pays.
 */
import { spawn } from "node:child_process"
import { ensureCluster, fmtMs, makeNshConf, now, nshBin, progress, report, stats, table } from "./lib/common.mjs"
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

ensureCluster()
const { conf } = makeNshConf()
// Any drv path will do: declining never reads the derivation.
const input = hookStdin({
  overrides: { builders: "", "build-hook": nshBin },
  drvPath: "/nix/store/dfsnlmxxlcviqr653dx97p6wakfjrsrk-hookproto-dep-a.drv"
})

const variants = [
  {
    label: "nsh (./bin/nsh 3, nsh.conf declines)",
    command: nshBin,
    args: ["3"],
    env: { ...process.env, NSH_CONF: conf },
    input
  },
  { label: "Nix build-remote 3 (builders = '')", command: buildRemote, args: ["3"], env: process.env, input },
  { label: "node -e 0 (start to exit)", command: process.execPath, args: ["-e", "0"], env: process.env }
]

progress(`hook start-up: ${runs} runs of each of ${variants.length} variants (+${warmup} warm-up)`)
const samples = variants.map(() => [])
for (let i = 0; i < warmup + runs; i++) {
  // Interleaved, so that a noisy moment hits every variant alike.
  for (const [k, v] of variants.entries()) {
    const ms = await timeToAnswer(v.command, v.args, v.env, v.input)
    if (i >= warmup) samples[k].push(ms)
  }
}

const rows = variants.map((v, k) => {
  const s = stats(samples[k])
  return [v.label, fmtMs(s.median), fmtMs(s.p95), fmtMs(s.min), fmtMs(s.max)]
})
const [nshMedian, remoteMedian, nodeMedian] = samples.map((xs) => stats(xs).median)
report(`Hook start-up to first answer (${runs} runs each)`, table(["hook", "median", "p95", "min", "max"], rows), [
  `nsh answers ${fmtMs(nshMedian - remoteMedian)} later than Nix's build-remote (median); ${
    fmtMs(nshMedian - nodeMedian)
  } of it is above a bare \`node -e 0\`.`,
  "Paid once per `try` round (Nix starts a new hook after each accepted build), while Nix's scheduler waits.",
  "Both hooks read the same captured Nix 2.8 settings block (91 settings) and one `try`."
])
