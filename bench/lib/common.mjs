/**
 * Shared pieces of nsh's benchmarks: running commands with per-line timestamps, a temporary
 * nsh.conf with a fresh token, nix-build through nsh, Slurm's own timestamps for a job, the
 * lab's logs, statistics and markdown tables. Figures go to stdout (markdown, collected by
 * run-all.sh); progress goes to stderr. Nothing here asserts on time.
 */
import { spawn, spawnSync } from "node:child_process"
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { cpus, homedir, loadavg } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "")
export const nshBin = `${repoRoot}/bin/nsh`
export const benchNix = `${repoRoot}/bench/nix/bench.nix`
const node = "node1"

/** Wall-clock time in ms with sub-ms resolution, comparable with `date +%s%N` on the node (same machine). */
export const now = () => performance.timeOrigin + performance.now()

export const progress = (line) => process.stderr.write(`  … ${line}\n`)

// ------------------------------------------------------------------ cleanup on exit and signals

const cleanups = []
/** Runs `fn` when the script ends, also on Ctrl-C: temp files and jobs never outlive a run. */
export const onExit = (fn) => cleanups.push(fn)

// What the benchmarks start, submit and add to the stores. Stopped, cancelled and deleted first
// when the script ends (also on Ctrl-C, which does not reach the children's own process groups),
// before the other cleanups remove the files those may still use.
const ourChildren = new Set()
const ourJobs = new Set()
const ourPaths = new Set()
const stopOurs = () => {
  for (const child of ourChildren) {
    try {
      process.kill(-child.pid, "SIGTERM")
    } catch {}
  }
  // Give them a moment to let go of store paths before those are deleted.
  if (ourChildren.size > 0) spawnSync("sleep", ["1"])
  cancelJobs(ourJobs)
  deletePaths([...ourPaths])
}

const runCleanups = () => {
  for (const fn of [stopOurs, ...cleanups.splice(0).reverse()]) {
    try {
      fn()
    } catch (e) {
      process.stderr.write(`cleanup failed: ${e.message}\n`)
    }
  }
}
let ended = false
const end = () => {
  if (ended) return
  ended = true
  runCleanups()
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    end()
    process.exit(130)
  })
}
process.on("exit", end)

// ------------------------------------------------------------------ statistics and tables

/** Nearest-rank percentile of numbers. */
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

export const stats = (values) => ({
  n: values.length,
  min: Math.min(...values),
  median: percentile(values, 50),
  p95: percentile(values, 95),
  max: Math.max(...values)
})

export const fmtMs = (ms) => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : "–")
export const fmtS = (ms, digits = 2) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(digits)} s` : "–")

/** A markdown table whose columns are padded, so it reads well in a terminal too. */
export const table = (head, rows) => {
  const cells = [head, ...rows].map((row) => row.map(String))
  const widths = head.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)))
  const line = (row) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`
  return [line(cells[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.slice(1).map(line)].join("\n")
}

/** Prints one benchmark's section: a title, the table(s), notes. */
export const report = (title, body, notes = []) => {
  const text = [`### ${title}`, "", body, ...(notes.length > 0 ? ["", ...notes.map((n) => `- ${n}`)] : []), ""].join(
    "\n"
  )
  process.stdout.write(`${text}\n`)
}

// ------------------------------------------------------------------ processes

/**
 * Runs a program to completion. Every line of stdout/stderr is stamped with its arrival time;
 * `onLine(line)` sees them as they come. Started in its own process group, so a timeout can
 * stop it together with its children.
 */
export const run = (command, args, options = {}) =>
  new Promise((resolve, reject) => {
    const start = now()
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: true
    })
    ourChildren.add(child)
    const lines = []
    const chunks = { stdout: [], stderr: [] }
    const pending = { stdout: "", stderr: "" }
    const take = (stream) => (data) => {
      const t = now()
      chunks[stream].push(data)
      const parts = (pending[stream] + data.toString("utf8")).split("\n")
      pending[stream] = parts.pop()
      for (const text of parts) {
        const line = { t, stream, text }
        lines.push(line)
        options.onLine?.(line)
      }
    }
    child.stdout.on("data", take("stdout"))
    child.stderr.on("data", take("stderr"))
    if (options.input !== undefined) child.stdin.end(options.input)
    const timer = setTimeout(() => {
      process.stderr.write(`  ! ${command} ran longer than ${options.timeoutMs} ms: stopping it\n`)
      try {
        process.kill(-child.pid, "SIGTERM")
      } catch {}
    }, options.timeoutMs ?? 170_000)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      ourChildren.delete(child)
      const end = now()
      resolve({
        code,
        signal,
        start,
        end,
        ms: end - start,
        lines,
        stdout: Buffer.concat(chunks.stdout).toString("utf8"),
        stderr: Buffer.concat(chunks.stderr).toString("utf8")
      })
    })
  })

/** Runs a short command synchronously and returns its stdout; throws with its stderr if it fails. */
export const sh = (command, args, what = command) => {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  if (result.status !== 0) {
    throw new Error(`${what} failed (exit ${result.status ?? result.signal}): ${result.stderr.trim()}`)
  }
  return result.stdout
}

/** Runs a shell command in node1's namespaces (its own /nix, /tmp), without ssh. */
export const nodeExec = (script) =>
  sh("bash", [`${repoRoot}/test/harness/node-exec.sh`, node, "sh", "-c", script], `node-exec ${script}`)

// ------------------------------------------------------------------ the cluster

/** Brings the test cluster up unless run-all.sh already did (idempotent, ~1-2 s). */
export const ensureCluster = () => {
  if (process.env.NSH_BENCH_CLUSTER_READY === "1") return
  progress("test/harness/cluster-up.sh")
  sh("bash", [`${repoRoot}/test/harness/cluster-up.sh`], "test/harness/cluster-up.sh")
  if (!existsSync(`${repoRoot}/dist/nsh.mjs`)) {
    sh(process.execPath, [`${repoRoot}/scripts/build.mjs`], "building the bundle")
  }
}

/** Other users' jobs in the queue right now: their presence can disturb the figures. */
export const foreignJobs = () =>
  sh("squeue", ["-h", "-o", "%i"])
    .split("\n")
    .filter((id) => id !== "" && !ourJobs.has(Number(id))).length

/** A note for the report when other jobs shared the cluster during a measurement. */
export const sharingNote = (count) =>
  count > 0
    ? [`${count} other job(s) were in the queue during this run (the lab is shared): figures may be disturbed.`]
    : []

/** Records a job submitted outside nsh (e.g. a filler), so it is cancelled if the script ends early. */
export const trackJob = (id) => ourJobs.add(id)

/** Cancels jobs of ours that are still queued (a failed or interrupted run). */
const cancelJobs = (jobIds) => {
  const queued = new Set(sh("squeue", ["-h", "-o", "%i"]).split("\n").filter((id) => id !== "").map(Number))
  const left = [...jobIds].filter((id) => queued.has(id))
  if (left.length === 0) return
  process.stderr.write(`  ! cancelling jobs left in the queue: ${left.join(" ")}\n`)
  spawnSync("scancel", left.map(String), { stdio: "inherit" })
}

const slurmConfigValue = (key) =>
  sh("scontrol", ["show", "config"]).match(new RegExp(`^${key}\\s*=\\s*(\\S+)`, "m"))?.[1]

/**
 * Slurm's own millisecond timestamps for jobs, from slurmctld's log (scontrol and slurmrestd
 * only give whole seconds): submit, start (allocation) and end (`_job_complete ... done`).
 */
export const slurmTimes = (jobIds) => {
  const file = slurmConfigValue("SlurmctldLogFile")
  const wanted = new Set([...jobIds].map(Number))
  const times = new Map([...wanted].map((id) => [id, {}]))
  if (file === undefined) return times
  const pattern = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\] (.*?JobId=(\d+)\b.*)$/
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = pattern.exec(line)
    if (m === null || !wanted.has(Number(m[3]))) continue
    // Slurm logs local time without a zone; Date parses such a string as local time too.
    const t = Date.parse(m[1])
    const entry = times.get(Number(m[3]))
    if (/_slurm_rpc_submit_batch_job/.test(m[2])) entry.submit = t
    else if (/sched: Allocate|_start_job: Started/.test(m[2])) entry.start ??= t
    else if (/_job_complete: JobId=\d+ done/.test(m[2])) entry.end = t
  }
  return times
}

/** What a benchmark counting slurmrestd's requests starts with: the cluster, an nsh.conf, others' jobs, the log. */
export const requestCounting = () => {
  ensureCluster()
  const { conf } = makeNshConf()
  return { conf, others: foreignJobs(), logFile: slurmrestdLog() }
}

/** The file slurmrestd writes its request log to (its stdout, wherever the lab pointed it). */
export const slurmrestdLog = () => {
  for (const pidFile of ["/run/nsh-test/slurmrestd.pid", "/run/nshlab/slurmrestd.pid"]) {
    if (!existsSync(pidFile)) continue
    const pid = readFileSync(pidFile, "utf8").trim()
    try {
      return readlinkSync(`/proc/${pid}/fd/1`)
    } catch {}
  }
  throw new Error("cannot find slurmrestd's log: no live slurmrestd from test/harness or the lab")
}

// ------------------------------------------------------------------ nsh.conf and nix-build

/**
 * Makes a private directory with a fresh 1-hour token file and an nsh.conf (0600) that sends
 * derivations requiring `nsh` to the lab's slurmrestd; removed when the script ends. The state
 * directory sits under $HOME, which the lab's node shares (its /tmp is its own).
 */
export const makeNshConf = () => {
  const base = join(homedir(), ".cache")
  mkdirSync(base, { recursive: true })
  const dir = mkdtempSync(join(base, "nsh-bench-"))
  onExit(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o700)
  const tokenFile = join(dir, "token")
  // scontrol writes `SLURM_JWT=...` straight into the file: the token never passes through here.
  const fd = openSync(tokenFile, "w", 0o600)
  const minted = spawnSync("scontrol", ["token", "lifespan=3600"], { stdio: ["ignore", fd, "pipe"] })
  closeSync(fd)
  if (minted.status !== 0) throw new Error(`scontrol token failed: ${minted.stderr}`)
  const stateDir = join(dir, "state")
  const conf = join(dir, "nsh.conf")
  const lines = [
    "system-features = nsh",
    "mandatory-system-features = nsh",
    "slurm-api-host = 127.0.0.1",
    `slurm-jwt-token-file = ${tokenFile}`,
    `slurm-state-dir = ${stateDir}`
  ]
  writeFileSync(conf, `${lines.join("\n")}\n`, { mode: 0o600 })
  return { dir, conf, stateDir }
}

/**
 * Arguments for a fresh build of a bench.nix attribute (a new nonce, so both stores lack it);
 * its .drv closure and outputs are deleted from both stores when the script ends.
 */
export const freshArgs = (attr, extra = []) => {
  const args = [...extra, "--argstr", "nonce", `${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`]
  for (const path of storePaths(attr, args)) ourPaths.add(path)
  return args
}

/** nix-build's options for a build through `hook` (root, no daemon, offline machine). */
const hookOptions = (hook = nshBin) => [
  "--option",
  "build-hook",
  hook,
  "--option",
  "build-users-group",
  "",
  "--option",
  "substituters",
  "",
  "--option",
  "system-features",
  "nsh",
  "--no-out-link"
]

/**
 * Runs nix-build -v of `attr` from bench.nix (a fresh build) with `hook` (nsh by default) and
 * returns the timed run plus the Slurm job ids nsh said it submitted.
 */
export const nixBuild = async ({ attr, conf, hook = nshBin, timeoutMs }) => {
  const jobIds = new Set()
  const result = await run("nix-build", [benchNix, "-A", attr, ...freshArgs(attr), ...hookOptions(hook), "-v"], {
    env: { ...process.env, NSH_CONF: conf },
    timeoutMs,
    // Recorded as they are announced, so an interrupted run can still cancel them.
    onLine: (line) => {
      for (const m of line.text.matchAll(/as Slurm job (\d+)/g)) {
        jobIds.add(Number(m[1]))
        trackJob(Number(m[1]))
      }
    }
  })
  return { ...result, jobIds: [...jobIds] }
}

/**
 * Throws when a command failed, with its error lines; its whole output (timestamped) is kept in
 * bench/results/ for a closer look.
 */
export const mustSucceed = (result, what) => {
  if (result.code === 0) return result
  const dir = `${repoRoot}/bench/results`
  mkdirSync(dir, { recursive: true })
  const file = `${dir}/failed-${new Date().toISOString().replace(/[:.]/g, "-")}.log`
  writeFileSync(
    file,
    result.lines.map((l) => `${(l.t - result.start).toFixed(0).padStart(7)} ms ${l.stream} ${l.text}`).join("\n") + "\n"
  )
  const errors = result.lines.filter((l) => /error|fail|warning/i.test(l.text)).slice(-12).map((l) => `    ${l.text}`)
    .join("\n")
  throw new Error(`${what} failed (exit ${result.code ?? result.signal}):\n${errors}\n  (full output: ${file})`)
}

/** The time of the first line matching `re` (ms), or undefined. */
export const lineTime = (lines, re) => lines.find((l) => re.test(l.text))?.t

/**
 * Deletes store paths made by a benchmark, here and on node1 (best effort: a path still in use
 * stays). Only paths named nsh-bench-* are touched.
 */
const deletePaths = (paths) => {
  const ours = [...new Set(paths)].filter((p) => /^\/nix\/store\/[a-z0-9]{32}-nsh-bench-/.test(p))
  if (ours.length === 0) return
  const nodeSide = [`${repoRoot}/test/harness/node-exec.sh`, node, "nix-store", "--delete"]
  for (const [command, prefix] of [["nix-store", ["--delete"]], ["bash", nodeSide]]) {
    // One call deletes referrers before what they refer to; if any path is alive it deletes
    // nothing, so then try them one by one.
    if (spawnSync(command, [...prefix, ...ours], { stdio: "ignore" }).status === 0) continue
    for (const path of [...ours].reverse()) spawnSync(command, [...prefix, path], { stdio: "ignore" })
  }
}

/** The .drv closure of a bench.nix attribute plus its outputs: everything its build adds to the stores. */
const storePaths = (attr, args) => {
  const drvs = sh("nix-instantiate", [benchNix, "-A", attr, ...args], "nix-instantiate").split("\n").filter((l) =>
    l !== ""
  )
  const closure = sh("nix-store", ["-qR", ...drvs]).split("\n").filter((l) => l !== "")
  const outputs = sh("nix-store", ["-q", "--outputs", ...closure.filter((p) => p.endsWith(".drv"))]).split("\n").filter(
    (l) => l !== ""
  )
  return [...closure, ...outputs]
}

/** The machine the figures come from. */
export const machine = () => ({
  cpus: cpus().length,
  model: cpus()[0]?.model ?? "?",
  node: process.version,
  nix: sh("nix-build", ["--version"]).trim(),
  slurm: sh("scontrol", ["--version"]).trim(),
  load: loadavg().map((l) => l.toFixed(2)).join(" ")
})
