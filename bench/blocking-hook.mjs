#!/usr/bin/env node
/**
 * A build hook that behaves like the reference (the C++ NSH) for queue waits: it runs ./bin/nsh
 * and passes everything through, except that it holds nsh's `# accept` back from Nix until
 * `squeue` shows the job RUNNING (or gone). Nix reads a hook's reply with a blocking read, so
 * while a job is pending Nix dispatches nothing else — the behaviour nsh avoids by accepting
 * at once. Benchmark use only (bench/queue.mjs).
 */
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const nsh = fileURLToPath(new URL("../bin/nsh", import.meta.url))
// stdin and fd 4 (the build log) go straight to nsh; stderr (replies and @nix lines) through us.
const child = spawn(nsh, process.argv.slice(2), { stdio: ["inherit", "inherit", "pipe", "ignore", 4] })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until the job runs or has left the queue, polling like the reference (50 ms doubling to 1 s). */
const untilRunning = async (jobId) => {
  for (let delay = 50;; delay = Math.min(delay * 2, 1000)) {
    const state = spawnSync("squeue", ["-h", "-j", jobId, "-o", "%T"], { encoding: "utf8" }).stdout.trim()
    if (state !== "PENDING" && state !== "CONFIGURING") return
    await sleep(delay)
  }
}

let pending = ""
/** Settles once a held `# accept` has been released to Nix. */
let released = Promise.resolve()
child.stderr.on("data", (chunk) => {
  pending += chunk.toString("utf8")
  // Forward whole lines until `# accept` and the machine line after it have arrived.
  for (;;) {
    if (pending.startsWith("# accept\n")) {
      const machine = pending.match(/^# accept\n(.*)\n/)
      if (machine === null) return // the machine line is still on its way
      // From here on everything is held, in order, until the job runs; then it flows through.
      const held = [pending]
      pending = ""
      child.stderr.removeAllListeners("data")
      child.stderr.on("data", (more) => held.push(more))
      const jobId = machine[1].match(/slurm job (\d+)/)?.[1]
      released = (jobId === undefined ? Promise.resolve() : untilRunning(jobId)).then(() => {
        child.stderr.removeAllListeners("data")
        for (const part of held) process.stderr.write(part)
        child.stderr.on("data", (more) => process.stderr.write(more))
      })
      return
    }
    const newline = pending.indexOf("\n")
    if (newline < 0) return
    process.stderr.write(pending.slice(0, newline + 1))
    pending = pending.slice(newline + 1)
  }
})
child.on("close", async (code, signal) => {
  await released
  if (pending !== "") process.stderr.write(pending)
  process.exitCode = code ?? (signal === null ? 1 : 128)
})
