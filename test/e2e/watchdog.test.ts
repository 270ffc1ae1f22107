/**
 * The watchdog against the real cluster: a stand-in hook (test/fixtures/watchdog/fake-hook.ts)
 * starts the real `nsh __watchdog` for a long `sleep` job, and is then SIGKILLed with its whole
 * process group, as Nix ends a hook. The job must leave squeue and its files must go, while the
 * hook's stdout/stderr reach EOF at once (Nix waits for that). A hook that said `finished` leaves
 * the job alone.
 */
import { build } from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { cluster, slurmFetch, squeueJobs, ssh, token, waitFor } from "./support/cluster.js"

// node1's /tmp is its own: the state directory is made there, per run (another run's may be alive).
let stateDir = ""
let work = ""
let fakeHook = ""
const submitted: Array<number> = []
const hooks: Array<ChildProcess> = []

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "nsh-e2e-watchdog-"))
  fakeHook = join(work, "fake-hook.mjs")
  await build({
    entryPoints: [join(cluster().repoRoot, "test/fixtures/watchdog/fake-hook.ts")],
    outfile: fakeHook,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["cpu-features", "*.node"],
    banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
    logLevel: "warning"
  })
  const made = await ssh("node1", "mktemp -d /tmp/nsh-e2e-watchdog-XXXXXX")
  assert.strictEqual(made.code, 0, made.stderr)
  stateDir = made.stdout.trim()
})

afterAll(async () => {
  // A test that failed half-way may leave its stand-in hook (and so its watchdog) waiting.
  for (const hook of hooks) if (hook.exitCode === null && hook.signalCode === null) process.kill(-hook.pid!, "SIGKILL")
  await Promise.all(submitted.map((id) => slurmFetch(`/job/${id}`, { method: "DELETE" }).catch(() => undefined)))
  if (stateDir !== "") await ssh("node1", `rm -rf '${stateDir}'`)
  await rm(work, { recursive: true, force: true })
})

/** A submission like nsh's: a tag, its comment, its files in the state dir on node1. */
const submitSleep = async () => {
  const tag = `nsh-${randomBytes(8).toString("hex")}`
  const response = await slurmFetch("/job/submit", {
    method: "POST",
    body: JSON.stringify({
      script: "#!/bin/sh\nexec sleep 600\n",
      job: {
        name: "nsh-e2e-watchdog",
        comment: `nsh:${tag} /nix/store/00000000000000000000000000000000-watchdog-e2e.drv`,
        current_working_directory: "/tmp",
        environment: { PATH: "/usr/bin:/bin" },
        standard_output: `${stateDir}/${tag}.log`,
        time_limit: 15
      }
    })
  })
  const body = (await response.json()) as { job_id?: number }
  assert.strictEqual(response.status, 200)
  const jobId = body.job_id ?? assert.fail("no job_id")
  submitted.push(jobId)
  await waitFor(
    async () => (await squeueJobs()).find((j) => j.id === jobId && j.state === "RUNNING"),
    30_000,
    `job ${jobId} running`
  )
  // What the hook would have put there: its lease and the outputs' GC root.
  const files = [`${stateDir}/${tag}.log`, `${stateDir}/${tag}.lease`, `${stateDir}/${tag}.root`]
  const touched = await ssh("node1", `touch ${files[1]} ${files[2]}`)
  assert.strictEqual(touched.code, 0, touched.stderr)
  const journal = join(work, `${tag}.json`)
  await writeFile(journal, "{}")
  return { tag, jobId, files, journal }
}

type Submission = Awaited<ReturnType<typeof submitSleep>>

const nodeFilesLeft = async (files: ReadonlyArray<string>) =>
  (await ssh("node1", `for f in ${files.join(" ")}; do [ -e "$f" ] && echo "$f"; done; true`)).stdout.trim()

/** Whether a process is gone (a zombie waiting for its new parent counts as gone). */
const processGone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true
  } catch {
    return true
  }
}

const sessionOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[3])

/**
 * Starts the stand-in hook like Nix starts a hook: its own process group, stdin/stdout/stderr and
 * fds 4/5 pipes held by us. Resolves once the watchdog has read its orders.
 */
const startHook = async (s: Submission, mode: "kill" | "finish", tell: { jobId?: number; node?: string }) => {
  const facts = cluster()
  const hook = spawn(process.execPath, [fakeHook], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe", "ignore", "pipe", "pipe"]
  })
  hooks.push(hook)
  const closed = new Promise<void>((resolve) => hook.on("close", () => resolve()))
  let out = ""
  let err = ""
  hook.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  hook.stderr!.on("data", (b: Buffer) => (err += b.toString()))
  hook.stdin!.end(JSON.stringify({
    mode,
    command: [process.execPath, join(facts.repoRoot, "dist/nsh.mjs"), "__watchdog"],
    slurm: { host: "127.0.0.1", port: 6820, apiVersion: facts.apiVersion, userName: facts.userName, token: token() },
    tag: s.tag,
    nodeFiles: s.files,
    localFiles: [s.journal],
    ...tell
  }))
  const watchdogPid = await waitFor(
    () => Number(out.match(/^ready (\d+)$/m)?.[1] ?? 0) || (hook.exitCode !== null ? -1 : undefined),
    30_000,
    "the stand-in hook"
  )
  assert.isAbove(watchdogPid, 0, `the stand-in hook failed: ${err}`)
  return { hook, watchdogPid, closed }
}

/** SIGKILL to the hook's whole process group, as Nix 2.3–2.34 does; the watchdog must survive it. */
const killLikeNix = async (hook: ChildProcess, closed: Promise<void>) => {
  const killedAt = Date.now()
  process.kill(-hook.pid!, "SIGKILL")
  // Nix reads the hook's stderr to EOF: nothing (the watchdog least of all) may hold it open.
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error("stdout/stderr still open")), 5_000))
  ])
  return killedAt
}

describe("watchdog on the real cluster", () => {
  it("cancels the job and removes its files when the hook's process group is SIGKILLed", async () => {
    const s = await submitSleep()
    const { hook, watchdogPid, closed } = await startHook(s, "kill", { jobId: s.jobId, node: "node1" })
    assert.notStrictEqual(sessionOf(watchdogPid), sessionOf(hook.pid!), "the watchdog shares the hook's session")

    const killedAt = await killLikeNix(hook, closed)
    assert.isFalse(processGone(watchdogPid), "the watchdog died with the hook")
    await waitFor(
      async () => !(await squeueJobs()).some((j) => j.id === s.jobId),
      60_000,
      `job ${s.jobId} to leave squeue`
    )
    const seconds = (Date.now() - killedAt) / 1000
    console.info(
      `[watchdog e2e] SIGKILL of the hook's group -> job ${s.jobId} gone from squeue: ${seconds.toFixed(2)} s`
    )

    await waitFor(() => processGone(watchdogPid), 60_000, "the watchdog to exit")
    assert.strictEqual(await nodeFilesLeft(s.files), "", "the job's files are still on node1")
    assert.isFalse(existsSync(s.journal), "the journal entry is still there")
  })

  it("finds the job by its tag when the hook died before reporting the id", async () => {
    const s = await submitSleep()
    const { hook, watchdogPid, closed } = await startHook(s, "kill", {})
    await killLikeNix(hook, closed)
    await waitFor(
      async () => !(await squeueJobs()).some((j) => j.id === s.jobId),
      60_000,
      `job ${s.jobId} to leave squeue`
    )
    await waitFor(() => processGone(watchdogPid), 60_000, "the watchdog to exit")
    // The node was learned from the job itself.
    assert.strictEqual(await nodeFilesLeft(s.files), "")
    assert.isFalse(existsSync(s.journal))
  })

  it("leaves the job and its files alone after finished", async () => {
    const s = await submitSleep()
    const { watchdogPid, closed } = await startHook(s, "finish", { jobId: s.jobId, node: "node1" })
    await closed
    await waitFor(() => processGone(watchdogPid), 30_000, "the watchdog to exit")
    const job = (await squeueJobs()).find((j) => j.id === s.jobId)
    assert.strictEqual(job?.state, "RUNNING")
    assert.strictEqual(await nodeFilesLeft(s.files), s.files.join("\n"))
    assert.isTrue(existsSync(s.journal))

    await slurmFetch(`/job/${s.jobId}`, { method: "DELETE" })
    await waitFor(
      async () => !(await squeueJobs()).some((j) => j.id === s.jobId),
      60_000,
      `job ${s.jobId} to leave squeue`
    )
  })
})
