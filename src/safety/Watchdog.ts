/**
 * The hook's watchdog: Nix ends a hook by killing its whole process group (SIGKILL up to Nix 2.34),
 * so no finalizer of the hook can be trusted to cancel the job. Before submitting, the build starts
 * a watchdog in a session of its own, holding none of the hook's descriptors (all /dev/null; Nix
 * waits for EOF on fds 1/2), and tells it over a private socket (fd 3) how to cancel the
 * submission. If the socket closes without `finished` — the hook died or the build's scope was
 * interrupted — the watchdog cancels the job (found by its tag if the id never came) and removes
 * its files.
 *
 * The watchdog idles for the whole build, once per running build, so its idle stage is a shell
 * (~1 MB, ready in milliseconds) that keeps the messages in memory; only for a vanished hook does
 * it start the clean-up stage, `node <bundle> __watchdog` (src/safety/WatchdogMain.ts), with the
 * messages on its stdin.
 */
import { Context, Data, Deferred, Effect, Exit, Layer, type Redacted, type Scope } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import { shellQuote } from "../util/ShellQuote.js"
import { encodeHookMessage, finishedLine, type HookMessage, isReadyLine, readyLine } from "./WatchdogProtocol.js"

/** The watchdog could not be started or reached; the build should not submit unguarded. */
export class WatchdogError extends Data.TaggedError("WatchdogError")<{ readonly reason: string }> {
  override get message() {
    return `nsh's watchdog (which cancels the Slurm job if the hook is killed) failed: ${this.reason}`
  }
}

/** What the watchdog needs to clean up one submission. */
export interface WatchdogParams {
  readonly slurm: {
    /** slurmrestd's endpoint settings, as the hook had them. */
    readonly url: string
    readonly host: string
    readonly port: number
    readonly caFile: string
    readonly auth: "x-slurm" | "bearer"
    /** The negotiated API version (e.g. v0.0.38). */
    readonly apiVersion: string
    readonly userName: string
    readonly token: Redacted.Redacted<string>
    /** The file the token came from: read again when slurmctld rejects the token. */
    readonly tokenFile?: string
  }
  /** The submission's tag (`nsh-<16 hex>`): the job's comment starts with `nsh:<tag> `. */
  readonly tag: string
  /** The job's files in slurm-state-dir on the node (see JobFiles). */
  readonly nodeFiles: ReadonlyArray<string>
  /** Files on this machine to remove once the job is dealt with: the journal entry. */
  readonly localFiles: ReadonlyArray<string>
  /** Extra `ssh` options for reaching the node (e.g. `-F <config>`). */
  readonly sshArgs?: ReadonlyArray<string>
  /** The clean-up stage's argv; default `<node> <this bundle> __watchdog`. */
  readonly command?: ReadonlyArray<string>
}

/** A running watchdog, guarding one submission. */
export interface WatchdogHandle {
  readonly pid: number
  /** Succeeds once the watchdog has read its instructions (from then on it outlives the hook). */
  readonly ready: Effect.Effect<void, WatchdogError>
  /** Call right after the submit answered (or the job was found by its comment). */
  readonly jobSubmitted: (jobId: number) => Effect.Effect<void, WatchdogError>
  /** Call once the job's batch host is known: the job's files are there. */
  readonly nodeKnown: (node: string) => Effect.Effect<void, WatchdogError>
  /**
   * Call once the job needs nothing more (ended, files dealt with): the watchdog exits untouched.
   * Closing the scope without it makes the watchdog cancel and clean up.
   */
  readonly finished: () => Effect.Effect<void, WatchdogError>
}

export interface WatchdogService {
  /** Starts a watchdog for one submission; scoped: closing the scope closes the socket (not `finished`). */
  readonly start: (params: WatchdogParams) => Effect.Effect<WatchdogHandle, WatchdogError, Scope.Scope>
}

export class Watchdog extends Context.Tag("nsh/Watchdog")<Watchdog, WatchdogService>() {
  /** Starts a watchdog with the Watchdog in context. */
  static readonly start = (params: WatchdogParams) => Effect.flatMap(Watchdog, (w) => w.start(params))
}

// The watchdog gets a clean environment: the token (maybe in SLURM_JWT) only travels in `start`.
const passedEnv = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "SSH_AUTH_SOCK", "TZ"]

const watchdogEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(passedEnv.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])))

const defaultCommand = (): ReadonlyArray<string> => [process.execPath, process.argv[1] ?? "", "__watchdog"]

// The idle stage, `sh -c idleScript nsh-watchdog <clean-up argv>`, in builtins only (under
// nix-daemon PATH may be bare): a missing `cat` would look like a vanished hook. The socket moves
// to fd 0 (the shell would borrow fd 0 for each `read <&3` anyway). SIGPIPE ignored: the hook may
// be gone before `ready` is written. Shell variables are neither argv nor environment: the token
// stays in memory.
const idleScript = [
  "exec 0<&3 3<&-",
  "trap '' PIPE",
  "IFS= read -r start || exit 0",
  `printf '%s\\n' ${shellQuote(readyLine.trimEnd())} >&0`,
  "rest=",
  "while IFS= read -r line; do rest=\"$rest$line",
  "\"; done",
  `case $rest in *${shellQuote(finishedLine)}*) exit 0 ;; esac`,
  `printf '%s\\n%s' "$start" "$rest" | "$@"`
].join("\n")

/** Spawns the idle stage: own session (setsid), cwd /, every fd /dev/null but fd 3, our socket. */
const spawnWatchdog = (cleanup: ReadonlyArray<string>) =>
  Effect.try({
    try: () => {
      // The clean-up stage only runs when needed: make sure now that it could.
      Fs.accessSync(cleanup[0] ?? "", Fs.constants.X_OK)
      const devNull = Fs.openSync("/dev/null", "r+")
      try {
        // /dev/null over every other fd the hook has, up to its highest: "ignore" above fd 2 would
        // leave inherited ones (Nix's fds 4/5, whatever Nix's caller leaked) open in the child.
        const highest = Math.max(5, ...Fs.readdirSync("/proc/self/fd").map(Number).filter(Number.isInteger))
        const stdio = Array.from({ length: highest + 1 }, (_, fd) => (fd === 3 ? "pipe" : devNull))
        const child = spawn("/bin/sh", ["-c", idleScript, "nsh-watchdog", ...cleanup], {
          detached: true,
          cwd: "/",
          env: watchdogEnv(),
          stdio
        })
        // A failed spawn shows as a missing pid; its later 'error' event must not crash the hook.
        child.on("error", () => undefined)
        const socket = child.stdio[3] as Net.Socket
        if (child.pid === undefined) {
          socket.destroy()
          throw new Error("no such program?")
        }
        child.unref()
        return { pid: child.pid, socket }
      } finally {
        Fs.closeSync(devNull)
      }
    },
    catch: (e) =>
      new WatchdogError({
        reason: `cannot start it (${cleanup.join(" ")}): ${e instanceof Error ? e.message : String(e)}`
      })
  })

const startWatchdog = (params: WatchdogParams): Effect.Effect<WatchdogHandle, WatchdogError, Scope.Scope> =>
  Effect.gen(function*() {
    const { pid, socket } = yield* Effect.acquireRelease(
      spawnWatchdog(params.command ?? defaultCommand()),
      // EOF for the watchdog; without `finished` before it, that means: clean up.
      ({ socket }) => Effect.sync(() => socket.destroy())
    )
    const ready = yield* Deferred.make<void, WatchdogError>()
    let failure: WatchdogError | undefined
    const lost = (reason: string) => {
      failure ??= new WatchdogError({ reason })
      Deferred.unsafeDone(ready, Exit.fail(failure))
    }
    let pending = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      pending += chunk
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      if (lines.some(isReadyLine)) Deferred.unsafeDone(ready, Exit.void)
    })
    socket.on("error", (e) => lost(`its socket failed: ${e.message}`))
    socket.on("close", () => lost("it exited"))
    // The hook may exit while the watchdog still runs: neither keeps the other's event loop alive.
    socket.unref()

    const send = (message: HookMessage) =>
      Effect.async<void, WatchdogError>((resume) => {
        if (failure !== undefined) return resume(Effect.fail(failure))
        socket.write(encodeHookMessage(message), (e) =>
          resume(e ? Effect.fail(new WatchdogError({ reason: `cannot write to it: ${e.message}` })) : Effect.void))
      })

    yield* send({
      _tag: "start",
      slurm: params.slurm,
      tag: params.tag,
      nodeFiles: params.nodeFiles,
      localFiles: params.localFiles,
      sshArgs: params.sshArgs ?? []
    })
    return {
      pid,
      ready: Deferred.await(ready),
      jobSubmitted: (jobId) => send({ _tag: "job", jobId }),
      nodeKnown: (node) => send({ _tag: "node", node }),
      finished: () => send({ _tag: "finished" })
    }
  })

/** The real watchdog process. */
export const WatchdogLive: Layer.Layer<Watchdog> = Layer.succeed(Watchdog, Watchdog.of({ start: startWatchdog }))
