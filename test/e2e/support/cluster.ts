/**
 * Helpers for e2e tests on the harness cluster (test/harness/, brought up by test/e2e/globalSetup.ts):
 * the facts globalSetup provides, a fresh token, squeue, running commands on a node, Nix on the
 * submit side. Promise-based so plain `it` and `Effect.promise` can both use them.
 */
import { execFileSync, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { inject } from "vitest"

/** What globalSetup found out about the cluster (no secrets: the token is provided separately). */
export interface ClusterFacts {
  /** slurmrestd's base URL, e.g. http://127.0.0.1:6820. */
  readonly restUrl: string
  /** The newest API version the cluster's slurmrestd serves (v0.0.38 on Slurm 22.05). */
  readonly apiVersion: string
  /** The user the token belongs to (X-SLURM-USER-NAME). */
  readonly userName: string
  readonly nodes: ReadonlyArray<string>
  /** `owned`: the harness runs the daemons; `adopted`: an identical lab was already running. */
  readonly mode: "owned" | "adopted"
  /** The key `ssh node1` uses (differs between an owned and an adopted cluster). */
  readonly sshIdentityFile: string
  /** Absolute path of bin/nsh (the bundle was rebuilt by globalSetup). */
  readonly nshBin: string
  readonly repoRoot: string
  /** Epoch ms when globalSetup started; jobs submitted later are this run's. */
  readonly startedAt: number
}

declare module "vitest" {
  export interface ProvidedContext {
    nshCluster: ClusterFacts
    /** A JWT for `userName`, valid for 2 hours. Never log it. */
    nshSlurmToken: string
  }
}

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url))

/** The absolute path of a harness script. */
export const harnessScript = (name: string): string => `${repoRoot}test/harness/${name}`

/** The cluster's facts, as provided by globalSetup. */
export const cluster = (): ClusterFacts => inject("nshCluster")

/** A JWT for slurmrestd, minted once per test run by globalSetup. */
export const token = (): string => inject("nshSlurmToken")

/** How a finished command ended and what it printed. */
export interface RunResult {
  readonly stdout: string
  readonly stderr: string
  /** null when it was killed by a signal. */
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface RunOptions {
  readonly input?: string
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Kill (SIGKILL) after this many ms; default 120 s so a hung command fails the test, not the run. */
  readonly timeoutMs?: number
}

/** Runs a program to completion, capturing stdout, stderr and the exit status (never rejects on exit != 0). */
export const run = (command: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"]
    })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal })
    })
    // A command that does not read its stdin may close it first: that is no failure.
    child.stdin.on("error", () => undefined)
    child.stdin.end(options.input ?? "")
  })

/** One line of squeue: the jobs slurmctld still has pending, running or completing. */
export interface QueuedJob {
  readonly id: number
  readonly state: string
  /** Empty while pending. */
  readonly nodes: string
  readonly name: string
  readonly comment: string
}

/** The jobs in squeue (all users), e.g. to assert that a cancelled job is gone. */
export const squeueJobs = async (): Promise<ReadonlyArray<QueuedJob>> => {
  // Tab-separated, comment last: names and comments may contain spaces, never tabs.
  const result = await run("squeue", ["-h", "-o", "%i\t%T\t%N\t%j\t%k"])
  if (result.code !== 0) throw new Error(`squeue failed (exit ${result.code}): ${result.stderr}`)
  return result.stdout
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = "", state = "", nodes = "", name = "", comment = ""] = line.split("\t")
      return { id: Number(id), state, nodes, name, comment: comment === "(null)" ? "" : comment }
    })
}

/** Runs a shell command inside a node's namespaces (its /nix, /tmp, /etc/nix) without ssh. */
export const nodeExec = (cmd: string, node = "node1", options: RunOptions = {}): Promise<RunResult> =>
  run("bash", [harnessScript("node-exec.sh"), node, "sh", "-c", cmd], options)

/** Runs a shell command on a node through root's `ssh <node>` (the path nsh's jobs take). */
export const ssh = (node: string, cmd: string, options: RunOptions = {}): Promise<RunResult> =>
  run("ssh", [node, cmd], options)

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined/false/null,
 * and resolves with that; rejects naming `what` after `timeoutMs`.
 */
export const waitFor = async <A>(
  probe: () => A | undefined | null | false | Promise<A | undefined | null | false>,
  timeoutMs: number,
  what = "condition",
  intervalMs = 100
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== null && value !== false) return value
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Runs `nix-build` on the submit side without substituters (the machine is offline). */
export const nixBuild = (args: ReadonlyArray<string>, options: RunOptions = {}): Promise<RunResult> =>
  run("nix-build", ["--option", "substituters", "", ...args], options)

/** An authenticated request to slurmrestd: `path` is relative to /slurm/<apiVersion>, e.g. "/ping". */
export const slurmFetch = (path: string, init: RequestInit = {}): Promise<Response> => {
  const facts = cluster()
  return fetch(`${facts.restUrl}/slurm/${facts.apiVersion}${path}`, {
    ...init,
    headers: {
      "X-SLURM-USER-NAME": facts.userName,
      "X-SLURM-USER-TOKEN": token(),
      ...(init.body === undefined ? {} : { "Content-Type": "application/json" }),
      ...(init.headers as Record<string, string> | undefined)
    }
  })
}

/** This machine's Nix version, e.g. [2, 34] ("nix-store (Nix) 2.34.8"). */
export const nixVersion = (): readonly [number, number] => {
  const match = /(\d+)\.(\d+)/.exec(execFileSync("nix-store", ["--version"], { encoding: "utf8" }))
  return match === null ? [0, 0] : [Number(match[1]), Number(match[2])]
}

/**
 * nix-build's exit code when a hook build failed with `code` (100 build failure, 101 timeout):
 * Nix 2.29 and later report every failed hook build as 1 (NixOS/nix#12641).
 */
export const hookFailureExitCode = (code: 100 | 101): number => {
  const [major, minor] = nixVersion()
  return major > 2 || (major === 2 && minor >= 29) ? 1 : code
}

/** How `nsh jobs` names a derivation in its last column: `/nix/store/<hash>-hello.drv` → `hello`. */
export const drvNameOf = (drvPath: string): string => drvPath.replace(/^.*\/[0-9a-z]{32}-/, "").replace(/\.drv$/, "")
