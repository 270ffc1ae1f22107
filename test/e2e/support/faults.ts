/**
 * Helpers for the fault e2e tests (test/e2e/faults-*.test.ts): a nix-build of
 * test/fixtures/e2e-faults/faults.nix watched line by line while it runs, the hook and watchdog
 * processes behind it, a filler job that keeps node1 busy, the faults themselves (signals,
 * slurmrestd restart, a cut SSH connection, node1 down) and the check that nothing was left behind.
 */
import { type Duration, Effect } from "effect"
import { spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs"
import { appendFile, readdir, readFile } from "node:fs/promises"
import { createServer } from "node:net"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { assert } from "vitest"
import {
  assertBuiltOnNode1,
  type BuildEnv,
  type BuildRun,
  type LiveBuild,
  outputsOf,
  scontrolJob,
  spawnNshBuild
} from "./build.js"
import { cluster, nodeExec, run, slurmFetch, squeueJobs, waitFor } from "./cluster.js"
import { fillerJobName, resumeIfDown } from "./health.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- processes (/proc)

interface ProcStat {
  readonly state: string
  readonly ppid: number
  readonly pgid: number
  readonly sid: number
}

/** /proc/<pid>/stat's state, parent, process group and session; undefined once the process is gone. */
const procStat = (pid: number): ProcStat | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: f[0]!, ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) }
  } catch {
    return undefined
  }
}

const argvOf = (pid: number): ReadonlyArray<string> => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`).toString().split("\0").filter((a) => a !== "")
  } catch {
    return []
  }
}

/** Every live (non-zombie) process, with its stat and argv. Node1 shares this pid namespace. */
const processes = () =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .flatMap((pid) => {
      const stat = procStat(pid)
      return stat === undefined || stat.state === "Z" ? [] : [{ pid, ...stat, argv: argvOf(pid) }]
    })

/** Whether a process is gone (a zombie waiting to be reaped counts as gone). */
export const processGone = (pid: number): boolean => {
  const stat = procStat(pid)
  return stat === undefined || stat.state === "Z"
}

/** The live processes of a session, e.g. a watchdog's (it is its session's leader), as "pid argv". */
const sessionMembers = (sid: number): ReadonlyArray<string> =>
  processes().filter((p) => p.sid === sid).map((p) => `${p.pid} ${p.argv.join(" ")}`)

/** The live processes whose argv mentions `text` (a job's tag), except this one, as "pid argv". */
export const processesMentioning = (text: string): ReadonlyArray<string> =>
  processes()
    .filter((p) => p.pid !== process.pid && p.argv.some((a) => a.includes(text)))
    .map((p) => `${p.pid} ${p.argv.join(" ")}`)

/**
 * The hook Nix started for this nix-build: its child running nsh's bundle (`node …/dist/nsh.mjs
 * <verbosity>`, or `node --snapshot-blob …/dist/nsh.blob <verbosity>` from the start-up snapshot),
 * leader of its own process group as Nix makes it.
 */
export const hookOf = (nixBuildPid: number) =>
  Effect.promise(() =>
    waitFor(
      () =>
        processes().find(
          (p) =>
            p.ppid === nixBuildPid &&
            p.argv.some((a) => a.endsWith("dist/nsh.mjs") || a.endsWith("dist/nsh.blob")) &&
            /^\d+$/.test(p.argv.at(-1) ?? "")
        ),
      10_000,
      `the nsh hook under nix-build ${nixBuildPid}`
    )
  ).pipe(
    Effect.map((hook) => {
      assert.strictEqual(hook.pgid, hook.pid, "Nix starts the hook as the leader of its own process group")
      return hook.pid
    })
  )

/** Waits up to `timeoutMs` for a child of `parentPid` whose argv holds `arg` (e.g. the hook's `nix-store --export`). */
export const childRunning = (parentPid: number, arg: string, timeoutMs: number) =>
  Effect.promise(() =>
    waitFor(
      () => processes().find((p) => p.ppid === parentPid && p.argv.includes(arg)),
      timeoutMs,
      `a child of ${parentPid} with ${arg} in its argv`,
      20
    ).catch((e: Error) => assert.fail(e.message))
  ).pipe(Effect.asVoid)

/**
 * Stops (SIGSTOP) the watchdog's whole session, so that nothing but the hook itself can cancel its
 * job; resumed (SIGCONT) by the returned effect or with the scope, whichever comes first.
 */
export const freezeWatchdog = (watchdogPid: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      process.kill(-watchdogPid, "SIGSTOP")
      let thawed = false
      return Effect.sync(() => {
        if (thawed) return
        thawed = true
        try {
          process.kill(-watchdogPid, "SIGCONT")
        } catch {
          // The session is gone already.
        }
      })
    }),
    (thaw) => thaw
  )

/** The hook's watchdog: its child `/bin/sh -c … nsh-watchdog …`, leader of a session of its own. */
export const watchdogOf = (hookPid: number) =>
  Effect.promise(() =>
    waitFor(
      () => processes().find((p) => p.ppid === hookPid && p.argv.includes("nsh-watchdog")),
      10_000,
      `the watchdog of hook ${hookPid}`
    )
  ).pipe(
    Effect.map((watchdog) => {
      assert.strictEqual(watchdog.sid, watchdog.pid, "the watchdog leads a session of its own")
      return watchdog.pid
    })
  )

// ---------------------------------------------------------------- a nix-build followed live

const fixture = () => `${cluster().repoRoot}test/fixtures/e2e-faults/faults.nix`

/** Starts nix-build of one attribute of the Nix file `nixFile` (support/build.ts's spawnNshBuild); killed with the scope. */
export const startBuildOf = (
  nixFile: string,
  env: BuildEnv,
  attr: string,
  args: ReadonlyArray<string>,
  timeoutMs: number
) =>
  Effect.acquireRelease(
    Effect.sync(() => spawnNshBuild(nixFile, env, attr, args, timeoutMs)),
    (build) =>
      Effect.promise(async () => {
        if (!processGone(build.pid)) process.kill(build.pid, "SIGKILL")
        await build.ended.catch(() => undefined)
      })
  )

/**
 * Starts nix-build of one attribute of faults.nix with nsh as the build hook, returning at once so
 * the test can strike mid-build. `-v` is always on: nsh's phase messages (`copying inputs to
 * node1...`) are what the tests wait for.
 */
export const startBuild = (env: BuildEnv, attr: string, args: ReadonlyArray<string> = [], timeoutMs = 180_000) =>
  startBuildOf(fixture(), env, attr, ["-v", ...args], timeoutMs)

/** Waits for a stderr line matching `pattern`; fails, showing stderr, if the build ends first or after `timeoutMs`. */
export const waitLine = (build: LiveBuild, pattern: RegExp, timeoutMs: number) =>
  Effect.promise(async () => {
    let ended = false
    void build.ended.then(() => (ended = true), () => (ended = true))
    const found = await waitFor(
      () => build.lines.map((l) => l.text.match(pattern)).find((m) => m !== null) ?? (ended ? "ended" : undefined),
      timeoutMs,
      `a line matching ${pattern}`,
      50
    ).catch((e: Error) => e.message)
    if (typeof found === "string") {
      assert.fail(`${found === "ended" ? "nix-build ended" : found} before ${pattern}:\n${build.stderr()}`)
    }
    return found as RegExpMatchArray
  })

/** How the build ended, within `timeoutMs`. */
export const buildEnded = (build: LiveBuild, timeoutMs: number) =>
  Effect.promise(async () => {
    const ended = await Promise.race([build.ended, sleep(timeoutMs).then(() => undefined)])
    if (ended === undefined) assert.fail(`nix-build still running ${timeoutMs} ms later:\n${build.stderr()}`)
    return ended
  })

/** A job nsh submitted for the build, with the tag of its files (from the job's comment). */
export interface Submission {
  readonly jobId: number
  readonly tag: string
  readonly drvPath: string
}

/** Waits for nix-build's `nth` (from 1) `nsh: submitted … as Slurm job N` line; the tag is in the job's comment. */
export const submission = (build: LiveBuild, nth = 1) =>
  Effect.gen(function*() {
    const pattern = /^nsh: submitted '(\S+\.drv)' as Slurm job (\d+)$/
    yield* Effect.promise(() =>
      waitFor(() => build.lines.filter((l) => pattern.test(l.text)).length >= nth, 60_000, `submission ${nth}`, 50)
        .catch(() => assert.fail(`no ${nth}. submission:\n${build.stderr()}`))
    )
    const [, drvPath, id] = build.lines.filter((l) => pattern.test(l.text))[nth - 1]!.text.match(pattern)!
    const jobId = Number(id)
    // scontrol still knows a job that ended (for MinJobAge), squeue does not.
    const comment = (yield* scontrolJob(jobId))["Comment"] ?? ""
    const tag = comment.match(/^nsh:(nsh-[0-9a-f]{16}) /)?.[1]
    assert.isDefined(tag, `job ${jobId} has no nsh comment: ${comment}`)
    return { jobId, tag: tag!, drvPath: drvPath! } satisfies Submission
  })

/**
 * Starts a build of `attr` and waits for its submission, its hook and watchdog, and a stderr line
 * matching `reached` (the phase the test strikes in).
 */
export const startFollowed = (env: BuildEnv, attr: string, reached: RegExp, args: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const build = yield* startBuild(env, attr, args)
    const job = yield* submission(build)
    const hookPid = yield* hookOf(build.pid)
    const watchdogPid = yield* watchdogOf(hookPid)
    yield* waitLine(build, reached, 120_000)
    return { build, job, hookPid, watchdogPid }
  })

/** Asserts that a build of a ticking attribute (`count` lines) succeeded: each line once, its output built on node1. */
export const assertTickedOk = (ended: BuildRun, env: BuildEnv, job: Submission, count: number) =>
  Effect.gen(function*() {
    assert.strictEqual(ended.code, 0, ended.stderr)
    assert.deepStrictEqual(tickCounts(ended.stderr, count, env.nonce).slice(1), Array(count).fill(1), ended.stderr)
    const [content] = yield* assertBuiltOnNode1(yield* outputsOf(job.drvPath))
    assert.strictEqual(content, `node1\n${env.nonce}\n${count} ticks\n`)
  })

/** nix-build arguments for faults.nix's `bigInput`: a 300 MiB source unique to this run (about 6 s to copy on the lab). */
export const bigInputArgs = (env: BuildEnv) =>
  Effect.promise(async () => {
    const file = join(env.dir, "big.bin")
    const made = await run("sh", ["-c", `head -c 314572800 /dev/urandom > '${file}'`])
    assert.strictEqual(made.code, 0, made.stderr)
    await appendFile(file, `${env.nonce}\n`)
    return ["--argstr", "bigSrc", file]
  })

/**
 * Prints a fault-table row: what nix-build said about the fault (nsh's warnings and errors, the
 * routine progress lines left out) and how it ended, so one CI run's output fills issue 11's table.
 */
export const printRow = (file: string, row: string, ended: BuildRun) => {
  const routine = /^nsh: (submitted |Slurm job \d+ is running on |copied )/
  const said = ended.lines.map((l) => l.text).filter((t) => t.startsWith("nsh: ") && !routine.test(t))
  console.info(
    `[${file}] ${row}: nix-build exit ${ended.code}; nsh said: ${said.length === 0 ? "nothing" : said.join(" | ")}`
  )
}

/** The journal entry of a submission, if any. */
export const journalEntry = (env: BuildEnv, tag: string) =>
  Effect.promise(async () => {
    const file = join(env.stateDir, "journal", `${tag}.json`)
    return existsSync(file)
      ? (JSON.parse(await readFile(file, "utf8")) as { jobId?: number; hookPid: number })
      : undefined
  })

/** The state of a job in squeue ("" once it left). */
export const queueState = (jobId: number) =>
  Effect.promise(async () => (await squeueJobs()).find((j) => j.id === jobId)?.state ?? "")

/** Milliseconds from `since` (performance.now()) until `jobId` has left squeue; fails after `timeoutMs`. */
export const goneFromQueue = (jobId: number, since: number, timeoutMs = 60_000) =>
  Effect.promise(async () => {
    await waitFor(
      async () => !(await squeueJobs()).some((j) => j.id === jobId),
      timeoutMs,
      `job ${jobId} to leave squeue`,
      50
    ).catch(
      (e: Error) => assert.fail(e.message)
    )
    return performance.now() - since
  })

// ---------------------------------------------------------------- node1 busy

/** A job that takes node1 whole (--exclusive), so nsh's job stays PENDING; cancelled by `release` or the scope. */
export const fillNode1 = Effect.acquireRelease(
  Effect.promise(async () => {
    const submitted = await run("sbatch", [
      "--parsable",
      `--job-name=${fillerJobName}`,
      "--nodelist=node1",
      "--exclusive",
      "--time=10",
      "--output=/dev/null",
      "--chdir=/tmp",
      "--wrap=exec sleep 600"
    ])
    assert.strictEqual(submitted.code, 0, `sbatch of the filler: ${submitted.stderr}`)
    const jobId = Number(submitted.stdout.trim().split(";")[0])
    let released = false
    const release = Effect.promise(async () => {
      if (released) return
      released = true
      await run("scancel", [String(jobId)])
      await waitFor(
        async () => !(await squeueJobs()).some((j) => j.id === jobId),
        60_000,
        `filler job ${jobId} to leave squeue`,
        100
      )
    })
    // Other jobs may hold node1 for a while (the lab is shared).
    await waitFor(
      async () => (await squeueJobs()).find((j) => j.id === jobId && j.state === "RUNNING"),
      120_000,
      `filler job ${jobId} running`,
      200
    )
    return { jobId, release }
  }),
  (filler) => filler.release
)

// ---------------------------------------------------------------- nothing left behind

/** What one build may leave behind, to check after the fact. */
export interface Traces {
  readonly jobIds: ReadonlyArray<number>
  readonly tags: ReadonlyArray<string>
  /** Processes that must be gone: the hook, and the watchdog's whole session. */
  readonly hookPid?: number
  readonly watchdogPid?: number
}

const leftovers = async (env: BuildEnv, traces: Traces): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  const queued = (await squeueJobs()).filter((j) => traces.jobIds.includes(j.id))
  for (const j of queued) found.push(`job ${j.id} still in squeue (${j.state})`)
  // The job's files are named by its tag; other files (the journal directory, nsh's caches) may stay.
  const ofJob = (name: string) => traces.tags.some((tag) => name.includes(tag))
  for (const name of (await readdir(env.stateDir)).filter(ofJob)) found.push(`${env.stateDir}/${name}`)
  const journalDir = join(env.stateDir, "journal")
  if (existsSync(journalDir)) { for (const name of await readdir(journalDir)) found.push(`${journalDir}/${name}`) }
  const onNode = await nodeExec(`ls -A '${env.stateDir}'`)
  for (const name of onNode.stdout.split("\n").filter(ofJob)) found.push(`node1:${env.stateDir}/${name}`)
  if (traces.hookPid !== undefined && !processGone(traces.hookPid)) {
    found.push(`the hook (pid ${traces.hookPid}) still runs`)
  }
  if (traces.watchdogPid !== undefined) {
    for (const p of sessionMembers(traces.watchdogPid)) found.push(`watchdog session: ${p}`)
  }
  // On node1 (same pid namespace): the job's nix-store --realise and the log's tail name the tag.
  for (const tag of traces.tags) for (const p of processesMentioning(tag)) found.push(`process: ${p}`)
  return found
}

/**
 * Asserts that the build left nothing: none of its jobs in squeue, no file named by its tags in
 * the state dir (here and as node1 sees it), no journal entry, no hook, watchdog or process naming
 * its tags. Waits up to `timeoutMs` for the watchdog to finish cleaning up;
 * resolves with when everything was gone (performance.now()).
 */
export const assertNothingLeft = (env: BuildEnv, traces: Traces, timeoutMs = 30_000) =>
  Effect.promise(async () => {
    const clean = await waitFor(async () => (await leftovers(env, traces)).length === 0, timeoutMs, "clean", 100).catch(
      () => false
    )
    if (!clean) assert.fail(`left behind after ${timeoutMs / 1000} s:\n${(await leftovers(env, traces)).join("\n")}`)
    return performance.now()
  })

/** The log lines `tick i/count <nonce>` of faults.nix's ticking builders, counted per i (index 0 unused). */
export const tickCounts = (stderr: string, count: number, nonce: string): ReadonlyArray<number> => {
  const counts = Array.from({ length: count + 1 }, () => 0)
  for (const line of stderr.split("\n")) {
    const i = line.match(new RegExp(`^tick (\\d+)/${count} ${nonce}$`))?.[1]
    if (i !== undefined) counts[Number(i)]!++
  }
  return counts
}

/** Removes a fault test's derivation, its outputs and input sources from both stores (best effort: they are large). */
export const forgetStorePaths = (drvPath: string) =>
  Effect.promise(async () => {
    const query = async (what: string) =>
      (await run("nix-store", ["--query", what, drvPath])).stdout.split("\n").filter((p) => p !== "")
    const paths = [
      ...(await query("--outputs")),
      drvPath,
      ...(await query("--references")).filter((p) => !p.endsWith(".drv"))
    ]
    await nodeExec(`nix-store --delete ${paths.map((p) => `'${p}'`).join(" ")} >/dev/null 2>&1; true`)
    await run("nix-store", ["--delete", ...paths])
  })

// ---------------------------------------------------------------- faults

/**
 * Sends a signal the way Nix ends a hook: SIGKILL to its group (2.3–2.34), or SIGTERM then SIGKILL
 * 500 ms later if it has not exited (2.35). Resolves with whether SIGKILL had to follow.
 */
export const killHookGroup = (hookPid: number, how: "SIGKILL" | "SIGHUP" | "nix-2.35") =>
  Effect.promise(async () => {
    if (how !== "nix-2.35") {
      process.kill(-hookPid, how)
      return false
    }
    process.kill(-hookPid, "SIGTERM")
    const exited = await waitFor(() => processGone(hookPid), 500, "the hook to exit", 10).catch(() => false)
    if (exited) return false
    try {
      process.kill(-hookPid, "SIGKILL")
    } catch {
      // The group emptied between the check and the kill.
    }
    return true
  })

/** The running slurmrestd: the harness's pid file if it is live, else the adopted lab's. */
const slurmrestdPidFile = (): { readonly file: string; readonly pid: number } => {
  for (const file of ["/run/nsh-test/slurmrestd.pid", "/run/nshlab/slurmrestd.pid"]) {
    const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : 0
    if (pid > 0 && !processGone(pid) && readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "slurmrestd") {
      return { file, pid }
    }
  }
  return assert.fail("no live slurmrestd in /run/nsh-test/slurmrestd.pid or /run/nshlab/slurmrestd.pid")
}

const restPing = async () => {
  try {
    return (await slurmFetch("/ping")).status === 200
  } catch {
    return false
  }
}

/**
 * Stops slurmrestd (SIGTERM, by its pid file) and returns `restore`, which starts it again exactly
 * as it ran (argv, environment, cwd, log file, own session; as test/harness/lib.sh starts it),
 * updates the pid file and waits until it answers. The scope restores it too: the lab is shared.
 */
export const stopSlurmrestd = Effect.acquireRelease(
  Effect.promise(async () => {
    const { file, pid } = slurmrestdPidFile()
    const argv = argvOf(pid)
    const environ = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`).toString().split("\0").filter((kv) => kv.includes("=")).map((kv) => [
        kv.slice(0, kv.indexOf("=")),
        kv.slice(kv.indexOf("=") + 1)
      ])
    )
    const cwd = readlinkSync(`/proc/${pid}/cwd`)
    const logFile = readlinkSync(`/proc/${pid}/fd/1`)
    process.kill(pid, "SIGTERM")
    await waitFor(() => processGone(pid), 10_000, `slurmrestd (pid ${pid}) to stop`).catch(() =>
      process.kill(pid, "SIGKILL")
    )
    await waitFor(() => processGone(pid), 5_000, `slurmrestd (pid ${pid}) to die`)
    let restored = false
    const restore = Effect.promise(async () => {
      if (restored) return
      restored = true
      const log = openSync(logFile.startsWith("/") ? logFile : "/dev/null", "a")
      try {
        // Through a shell that closes every inherited fd above 2 first: a daemon must not hold a
        // pipe that our caller (a CI runner) reads to EOF.
        const closeAndExec =
          "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec \"$@\""
        const child = spawn("/bin/bash", ["-c", closeAndExec, "bash", ...argv], {
          cwd,
          env: environ,
          detached: true,
          stdio: ["ignore", log, log]
        })
        child.unref()
        assert.isDefined(child.pid, "slurmrestd did not restart")
        writeFileSync(file, `${child.pid}\n`)
      } finally {
        closeSync(log)
      }
      await waitFor(restPing, 30_000, "the restarted slurmrestd to answer /ping", 200)
    })
    return { restore, stoppedAt: performance.now() }
  }),
  ({ restore }) => restore
)

/**
 * While slurmrestd is stopped: listens on its address in its place and resets every connection,
 * recording when each arrived (performance.now()), so a test can see nsh's requests meet the
 * outage. Closed by the returned `close` or with the scope (before slurmrestd is restored, when
 * acquired after stopSlurmrestd).
 */
export const standInForSlurmrestd = Effect.acquireRelease(
  Effect.promise(async () => {
    const url = new URL(cluster().restUrl)
    const arrivals: Array<number> = []
    const server = createServer((socket) => {
      arrivals.push(performance.now())
      socket.resetAndDestroy()
    })
    // The stopped slurmrestd's socket can take a moment to go (EADDRINUSE): try again, bounded.
    const listen = () =>
      new Promise<boolean>((resolve, reject) => {
        const failed = (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" ? resolve(false) : reject(e))
        server.once("error", failed)
        server.listen(Number(url.port), url.hostname, () => {
          server.off("error", failed)
          resolve(true)
        })
      })
    await waitFor(listen, 15_000, `${url.host} to be free for the stand-in`, 100)
    let closed = false
    const close = Effect.promise(async () => {
      if (closed) return
      closed = true
      await new Promise<void>((resolve) => server.close(() => resolve()))
    })
    return { arrivals: arrivals as ReadonlyArray<number>, close }
  }),
  ({ close }) => close
)

/** Whether slurmrestd answers (for asserting that an outage was real). */
export const slurmrestdAnswers = Effect.promise(restPing)

/**
 * Cuts the hook's SSH connections to node1 the hard way: SIGKILL to node1's sshd processes that
 * hold the other end of the hook's TCP connections. Returns the sshd processes killed.
 */
export const cutSshConnections = (hookPid: number) =>
  Effect.promise(async () => {
    const ss = await run("ss", ["-Htnp", "state", "established"])
    assert.strictEqual(ss.code, 0, ss.stderr)
    const rows = ss.stdout.split("\n").filter((l) => l !== "")
    // Columns: Recv-Q Send-Q Local:Port Peer:Port users:(("node",pid=N,fd=M))
    const hookPorts = rows
      .filter((r) => r.includes(`pid=${hookPid},`))
      .map((r) => r.trim().split(/\s+/))
      .filter((c) => c[3]?.endsWith(":22"))
      .map((c) => c[2]!)
    assert.isNotEmpty(hookPorts, `the hook (pid ${hookPid}) has no SSH connection:\n${ss.stdout}`)
    const sshdPids = new Set<number>()
    for (const row of rows) {
      const c = row.trim().split(/\s+/)
      if (c[2]?.endsWith(":22") && hookPorts.includes(c[3] ?? "")) {
        for (const [, pid] of row.matchAll(/pid=(\d+)/g)) sshdPids.add(Number(pid))
      }
    }
    assert.isNotEmpty(sshdPids, `no sshd holds the other end of ${hookPorts.join(", ")}:\n${ss.stdout}`)
    const killed = [...sshdPids].map((pid) => `${pid} ${argvOf(pid).join(" ")}`)
    for (const pid of sshdPids) process.kill(pid, "SIGKILL")
    return killed
  })

const resumeNode1IfDown = () => resumeIfDown("node1")

/**
 * A node failure as Slurm sees one: node1 set DOWN (its jobs are requeued or end NODE_FAIL), and
 * back `downFor` later. The scope resumes it too, should the test stop in between.
 */
export const node1Failure = (downFor: Duration.DurationInput) =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.promise(resumeNode1IfDown))
    const down = yield* Effect.promise(() =>
      run("scontrol", ["update", "NodeName=node1", "State=DOWN", "Reason=nsh-test faults-transient"])
    )
    assert.strictEqual(down.code, 0, `scontrol update NodeName=node1 State=DOWN: ${down.stderr}`)
    yield* Effect.sleep(downFor)
    yield* Effect.promise(resumeNode1IfDown)
  })
