/**
 * Helpers for the build e2e tests (test/e2e/build-*.test.ts): a per-test nsh.conf and state
 * directory, nix-build of test/fixtures/e2e-build/builds.nix with bin/nsh as the build hook (its
 * stderr lines timestamped on arrival), the Slurm jobs it reports, and the checks every build
 * test makes afterwards (outputs valid here and built on node1, no job left, no job file left).
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { assert } from "vitest"
import { cluster, nodeExec, run, squeueJobs, token, waitFor } from "./cluster.js"

/** One test's nsh.conf, state directory and nonce; all files go when the test's scope closes. */
export interface BuildEnv {
  /** Private to this machine (/tmp is node-private): nsh.conf, the token file, generated sources. */
  readonly dir: string
  readonly confPath: string
  /** slurm-state-dir: under /root, which node1 shares, as a home on a cluster file system would be. */
  readonly stateDir: string
  /** Passed to builds.nix so nothing is cached from an earlier run. */
  readonly nonce: string
}

const stateRoot = "/root/.cache/nsh-e2e"

/**
 * Creates a BuildEnv for test `name`; `extraConf` lines are appended to its nsh.conf, and
 * `endpointConf` replaces its slurm-api-host/slurm-api-port lines (e.g. with a slurm-api-url).
 */
export const buildEnv = (name: string, extraConf = "", endpointConf?: string) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<BuildEnv> => {
      const dir = await mkdtemp(join(tmpdir(), `nsh-e2e-${name}-`))
      await mkdir(stateRoot, { recursive: true })
      const stateDir = await mkdtemp(join(stateRoot, `${name}-`))
      const facts = cluster()
      const url = new URL(facts.restUrl)
      const tokenFile = join(dir, "slurm.jwt")
      await writeFile(tokenFile, `${token()}\n`, { mode: 0o600 })
      const confPath = join(dir, "nsh.conf")
      await writeFile(
        confPath,
        [
          `# test/e2e/build-${name}.test.ts`,
          "system-features = nsh",
          "mandatory-system-features = nsh",
          ...(endpointConf === undefined
            ? [`slurm-api-host = ${url.hostname}`, `slurm-api-port = ${url.port}`]
            : [endpointConf]),
          `slurm-user-name = ${facts.userName}`,
          `slurm-jwt-token-file = ${tokenFile}`,
          `slurm-state-dir = ${stateDir}`,
          extraConf,
          ""
        ].join("\n")
      )
      await chmod(confPath, 0o600)
      const nonce = `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`
      return { dir, confPath, stateDir, nonce }
    }),
    (env) =>
      Effect.promise(async () => {
        await rm(env.dir, { recursive: true, force: true })
        await rm(env.stateDir, { recursive: true, force: true })
      })
  )

/** A line nix-build wrote to stderr, with when it arrived (ms since nix-build started). */
export interface TimedLine {
  readonly atMs: number
  readonly text: string
}

/** How a nix-build ended: its exit code, output paths (stdout), stderr (also as timed lines), duration. */
export interface BuildRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly lines: ReadonlyArray<TimedLine>
  readonly wallMs: number
}

const fixture = () => `${cluster().repoRoot}test/fixtures/e2e-build/builds.nix`

/** A nix-build in progress: its stderr lines so far, and how it ended once it has. */
export interface LiveBuild {
  readonly pid: number
  /** When the build was started (performance.now()): the lines' atMs count from here. */
  readonly startedAt: number
  readonly lines: ReadonlyArray<TimedLine>
  readonly stderr: () => string
  readonly ended: Promise<BuildRun & { readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts nix-build of one attribute of the Nix file `nixFile` with nsh as the build hook, as root
 * without a build users group or substituters; `args` are added (e.g. `-v`, `--max-jobs`).
 * Killed after `timeoutMs`.
 */
export const spawnNshBuild = (
  nixFile: string,
  env: BuildEnv,
  attr: string,
  args: ReadonlyArray<string>,
  timeoutMs: number
): LiveBuild => {
  const startedAt = performance.now()
  const child = spawn(
    "nix-build",
    [
      nixFile,
      "-A",
      attr,
      "--argstr",
      "nonce",
      env.nonce,
      "--no-out-link",
      "--option",
      "build-hook",
      cluster().nshBin,
      "--option",
      "build-users-group",
      "",
      "--option",
      "substituters",
      "",
      // Nix must be willing to build these derivations at all; nsh decides where.
      "--option",
      "system-features",
      "nsh",
      ...args
    ],
    { cwd: env.dir, env: { ...process.env, NSH_CONF: env.confPath }, stdio: ["ignore", "pipe", "pipe"] }
  )
  const out: Array<Buffer> = []
  const lines: Array<TimedLine> = []
  let partial = ""
  child.stdout.on("data", (b: Buffer) => out.push(b))
  child.stderr.on("data", (b: Buffer) => {
    const atMs = performance.now() - startedAt
    const parts = (partial + b.toString()).split("\n")
    partial = parts.pop() ?? ""
    for (const text of parts) lines.push({ atMs, text })
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
  const stderr = () => lines.map((l) => l.text).join("\n")
  const ended = new Promise<BuildRun & { readonly signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const wallMs = performance.now() - startedAt
      if (partial !== "") lines.push({ atMs: wallMs, text: partial })
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: stderr(), lines, wallMs })
    })
  })
  assert.isDefined(child.pid, "nix-build did not start")
  return { pid: child.pid!, startedAt, lines, stderr, ended }
}

/** nix-build of one attribute of builds.nix through nsh (see spawnNshBuild), to its end. */
export const nshBuild = (env: BuildEnv, attr: string, args: ReadonlyArray<string> = [], timeoutMs = 120_000) =>
  Effect.promise((): Promise<BuildRun> => spawnNshBuild(fixture(), env, attr, args, timeoutMs).ended)

/** A derivation nsh submitted, as nsh reported it to the user. */
export interface SubmittedJob {
  readonly drvPath: string
  readonly jobId: number
}

/** The jobs nsh reported (`nsh: submitted '<drv>' as Slurm job N`), in order. */
export const submittedJobs = (build: BuildRun): ReadonlyArray<SubmittedJob> =>
  [...build.stderr.matchAll(/^nsh: submitted '(\S+\.drv)' as Slurm job (\d+)$/gm)].map(([, drvPath, id]) => ({
    drvPath: drvPath!,
    jobId: Number(id)
  }))

/** The derivations nix-build announced it will build ("these N derivations will be built:"). */
export const plannedDerivations = (build: BuildRun): ReadonlyArray<string> => {
  const block = build.stderr.match(/^(?:this derivation|these \d+ derivations) will be built:\n((?: {2}\S+\n?)+)/m)?.[1]
  return (block ?? "").split("\n").map((l) => l.trim()).filter((l) => l !== "")
}

/** `scontrol show job -o <id>` as fields (finished jobs stay known for slurmctld's MinJobAge). */
export const scontrolJob = (jobId: number) =>
  Effect.promise(async () => {
    const result = await run("scontrol", ["show", "job", "-o", String(jobId)])
    assert.strictEqual(result.code, 0, `scontrol show job ${jobId}: ${result.stderr}`)
    // Values may hold spaces (Comment is "nsh:<tag> <drv>"): a field starts where `Key=` does.
    const fields = result.stdout.trim().split(/ (?=[A-Za-z][A-Za-z/:_]*=)/)
    return Object.fromEntries(
      fields.map((f) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1).trim()])
    ) as Record<
      string,
      string
    >
  })

/**
 * `scontrol show job` of a job once it has ended: after its end marker a job keeps its
 * allocation until the hook removed its lease (JobScript), so it may still run for a moment
 * after nix-build returned.
 */
export const endedJob = (jobId: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 150; i++) {
      const fields = yield* scontrolJob(jobId)
      if (!["PENDING", "CONFIGURING", "RUNNING", "COMPLETING"].includes(fields["JobState"] ?? "")) return fields
      yield* Effect.sleep("200 millis")
    }
    return assert.fail(`Slurm job ${jobId} has not ended after 30 s`)
  })

/** A time scontrol printed (local time, whole seconds) as epoch ms. */
export const slurmTime = (value: string | undefined): number => {
  const ms = Date.parse(value ?? "")
  assert.isFalse(Number.isNaN(ms), `not a Slurm time: ${value}`)
  return ms
}

/** The output paths of a derivation in the local store. */
export const outputsOf = (drvPath: string) =>
  Effect.promise(async () => {
    const result = await run("nix-store", ["--query", "--outputs", drvPath])
    assert.strictEqual(result.code, 0, result.stderr)
    return result.stdout.trim().split("\n")
  })

/** Whether `path` is valid in node1's own store. */
export const validOnNode1 = (path: string) =>
  Effect.promise(() => nodeExec(`nix-store --check-validity '${path}'`)).pipe(Effect.map((r) => r.code === 0))

/**
 * Asserts that each output is valid in the local store with its recorded hash, was built on node1
 * (its first line is the builder's hostname; this machine's is different) and is in node1's store.
 * Returns the outputs' contents.
 */
export const assertBuiltOnNode1 = (outputs: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    assert.notStrictEqual(hostname(), "node1", "the submit machine must not be called node1 for this check")
    assert.isNotEmpty(outputs)
    const contents: Array<string> = []
    for (const out of outputs) {
      assert.match(out, /^\/nix\/store\/[a-z0-9]{32}-/)
      const valid = yield* Effect.promise(() => run("nix-store", ["--check-validity", out]))
      assert.strictEqual(valid.code, 0, `${out} is not valid in the local store: ${valid.stderr}`)
      const verified = yield* Effect.promise(() => run("nix-store", ["--verify-path", out]))
      assert.strictEqual(verified.code, 0, `${out} does not match its recorded hash: ${verified.stderr}`)
      const content = yield* Effect.promise(() => readFile(out, "utf8"))
      assert.strictEqual(content.split("\n")[0], "node1", `${out} was not built on node1: ${content}`)
      assert.isTrue(yield* validOnNode1(out), `${out} is not in node1's store`)
      contents.push(content)
    }
    return contents
  })

/**
 * Asserts what a build leaves behind once nix-build returned: none of `jobIds` in squeue (a
 * finished job may show COMPLETING for a moment) and no file in the state directory (but its empty
 * journal directory), as this machine and node1 see it.
 */
export const assertCleanedUp = (env: BuildEnv, jobIds: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const ours = async () => (await squeueJobs()).map((j) => j.id).filter((id) => jobIds.includes(id))
    const gone = yield* Effect.promise(() =>
      waitFor(async () => (await ours()).length === 0, 30_000, "the jobs to leave squeue", 250).catch(() => false)
    )
    assert.isTrue(gone, `jobs of this test still in squeue after 30 s: ${(yield* Effect.promise(ours)).join(", ")}`)
    // The journal directory stays (other builds write into it at any time); its entries must not.
    const here = (yield* Effect.promise(() => readdir(env.stateDir, { recursive: true }))).filter((f) =>
      f !== "journal"
    )
    assert.deepStrictEqual(here, [], `files left in ${env.stateDir}`)
    const there = yield* Effect.promise(() => nodeExec(`cd '${env.stateDir}' && find . -mindepth 1 ! -path ./journal`))
    assert.strictEqual(there.code, 0, there.stderr)
    assert.strictEqual(there.stdout, "", `files left in ${env.stateDir} on node1`)
  })
