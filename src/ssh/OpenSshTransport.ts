/**
 * SshConnection over the system's OpenSSH client, for what ssh2 cannot do (certificates,
 * Kerberos, smart cards, ProxyCommand): one control master per connection, its socket in a
 * private per-user directory, and each command an `ssh` client multiplexed on it, so a command
 * costs a process start, not a handshake.
 */
import { Command, CommandExecutor, FileSystem } from "@effect/platform"
import { Chunk, Data, Effect, Option, Ref, type Scope, Stream } from "effect"
import * as nodeFs from "node:fs"
import * as os from "node:os"
import { forAnyLoginShell } from "../util/ShellQuote.js"
import type { OpenSshHost, OpenSshOptions } from "./OpenSshConfig.js"
import { execVia, hangupGuard } from "./SshChannel.js"
import { SshChannelError, SshConnectError, type SshError, SshHostKeyError } from "./SshErrors.js"
import type { RemoteProcess, SshConnection } from "./SshSession.js"

/** Idle seconds a master outlives its last command: a hook killed with SIGKILL leaves it no longer. */
const controlPersistSeconds = 30

/** Like the ssh2 transport's handshake limit, where the user's config sets no ConnectTimeout. */
const defaultConnectTimeoutSeconds = 20

/** ssh's own exit status for its errors (a remote command's 255 is told apart by `-O check`). */
const sshFailed = 255

/** Our input stream's own failure, told apart from the pipe to ssh breaking. */
class InputFailed extends Data.TaggedError("InputFailed")<{ readonly error: unknown }> {}

type Env = Record<string, string | undefined>

/** $XDG_RUNTIME_DIR/nsh, else <tmp>/nsh-ssh-<uid>: made 0700, and refused unless it is ours alone. */
export const controlDirectory = (env: Env): Effect.Effect<string, SshConnectError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const uid = process.getuid?.() ?? -1
    const base = env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== ""
      ? `${env.XDG_RUNTIME_DIR}/nsh`
      : `${os.tmpdir()}/nsh-ssh-${uid}`
    const refuse = (why: string) =>
      new SshConnectError({
        host: "",
        reason: `the directory for SSH control sockets ${base} ${why}; remove it (nsh makes it again, private)`
      })
    yield* fs.makeDirectory(base, { mode: 0o700 }).pipe(
      Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.void),
      Effect.mapError((e) => refuse(`cannot be made: ${e.message}`))
    )
    // lstat: a symlink planted by someone else must not redirect our sockets.
    const info = yield* Effect.try({
      try: () => nodeFs.lstatSync(base),
      catch: (e) => refuse(`cannot be read: ${String(e)}`)
    })
    if (!info.isDirectory()) return yield* refuse("is not a directory")
    if (uid !== -1 && info.uid !== uid) return yield* refuse(`belongs to uid ${info.uid}, not to you`)
    if ((info.mode & 0o077) !== 0) return yield* refuse(`is open to others (mode ${(info.mode & 0o777).toString(8)})`)
    return base
  })

/** What ssh printed when it could not connect, worded like the ssh2 transport's errors. */
export const connectError = (host: string, exitCode: number, stderr: string): SshError => {
  const text = stderr.trim()
  const fingerprint = /SHA256:[A-Za-z0-9+/=]+/.exec(text)?.[0]
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(text)) {
    return new SshHostKeyError({ host, fingerprint: fingerprint ?? "see ssh's message", reason: "has CHANGED" })
  }
  if (/Host key verification failed|host key is known|No \S+ host key is known/.test(text)) {
    const type = /No (\S+) host key is known/.exec(text)?.[1]
    return new SshHostKeyError({
      host,
      fingerprint: fingerprint ?? (type === undefined ? "fingerprint not shown" : `${type} key`),
      reason: "is unknown"
    })
  }
  const last = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0).slice(-3).join("; ")
  return new SshConnectError({
    host,
    reason: `${last || `ssh exited with ${exitCode}`} (OpenSSH client); check that \`ssh ${host} true\` works`
  })
}

/**
 * Opens a control master to `config.host` in the caller's scope; closing the scope stops it
 * (`ssh -O exit`, bounded) and removes its socket.
 */
export const openSshConnect = (
  config: OpenSshHost,
  options: OpenSshOptions,
  env: Env
): Effect.Effect<SshConnection, SshError, Scope.Scope | FileSystem.FileSystem | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const host = config.host
    const fs = yield* FileSystem.FileSystem
    // Only the executor: a whole context would carry this connection's Scope into every command.
    const executor = yield* CommandExecutor.CommandExecutor
    const base = yield* controlDirectory(env).pipe(
      Effect.mapError((e) => new SshConnectError({ host, reason: e.reason }))
    )
    const dir = yield* fs.makeTempDirectory({ directory: base, prefix: "cm-" }).pipe(
      Effect.mapError((e) => new SshConnectError({ host, reason: `cannot make a control socket: ${e.message}` }))
    )
    const socket = `${dir}/s`
    const configArgs = options.configFile === undefined ? [] : ["-F", options.configFile]
    const controlArgs = [...configArgs, "-o", `ControlPath=${socket.replaceAll("%", "%%")}`]
    const sshArgs = [
      ...controlArgs,
      "-o",
      "BatchMode=yes",
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPersist=${controlPersistSeconds}`,
      ...(Option.isNone(config.connectTimeout) ? ["-o", `ConnectTimeout=${defaultConnectTimeoutSeconds}`] : [])
    ]
    const control = (operation: string) =>
      Command.exitCode(Command.make("ssh", ...controlArgs, "-O", operation, "--", host)).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor)
      )

    // Added before the master starts: an interrupted start leaves nothing behind either.
    yield* Effect.addFinalizer(() =>
      control("exit").pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.ignore,
        Effect.zipRight(fs.remove(dir, { recursive: true }).pipe(Effect.ignore))
      )
    )

    const run = (args: ReadonlyArray<string>) =>
      Command.start(Command.make("ssh", ...sshArgs, ...args)).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        Effect.mapError((e) =>
          new SshConnectError({
            host,
            reason: e._tag === "SystemError" && e.reason === "NotFound"
              ? "the OpenSSH client `ssh` is not installed or not on PATH; install openssh-client"
              : `cannot run ssh: ${e.message}`
          })
        )
      )

    // -f: ssh goes to the background once authenticated, so its exit status says whether it did.
    yield* Effect.scoped(Effect.gen(function*() {
      const master = yield* run(["-n", "-N", "-f", "-T", "--", host])
      const [stderr, exitCode] = yield* Effect.all([
        master.stderr.pipe(Stream.decodeText(), Stream.mkString),
        master.exitCode
      ], { concurrency: "unbounded" }).pipe(
        Effect.mapError((e) => new SshConnectError({ host, reason: `ssh failed: ${e.message}` }))
      )
      if (exitCode !== 0) return yield* connectError(host, exitCode, stderr)
    }))
    yield* Effect.logDebug(`ssh ${host}: OpenSSH control master at ${socket}`)

    const masterAlive = control("check").pipe(Effect.map((code) => code === 0), Effect.orElseSucceed(() => false))

    const spawn = (
      command: string,
      stdin?: Stream.Stream<Uint8Array, unknown>
    ): Effect.Effect<RemoteProcess, SshError, Scope.Scope> =>
      Effect.gen(function*() {
        const fail = (reason: string) => new SshChannelError({ host, command, reason })
        // Without input the hangup guard holds our end of stdin, which we never close: when the
        // client dies (or we do), the remote command's process group is killed, as with ssh2.
        const wrapped = forAnyLoginShell(stdin === undefined ? hangupGuard + command : command)
        const proc = yield* run(["-T", "--", host, wrapped]).pipe(
          Effect.mapError((e) => fail(e.reason))
        )
        // Set when our input stream failed (not when the command stopped reading it).
        const inputFailed = yield* Ref.make<string | undefined>(undefined)
        const status = yield* Effect.cached(
          proc.exitCode.pipe(
            Effect.mapError((e) => fail(`ssh ended: ${e.message}`)),
            Effect.zipLeft(
              Effect.flatMap(Ref.get(inputFailed), (why) =>
                why === undefined ? Effect.void : Effect.fail(fail(`its input failed: ${why}`)))
            ),
            Effect.flatMap((exitCode) =>
              exitCode !== sshFailed
                ? Effect.succeed(exitCode)
                : Effect.flatMap(masterAlive, (alive) =>
                  alive
                    ? Effect.succeed(exitCode)
                    : Effect.fail(fail(`the connection to ${host} closed before the command exited`)))
            ),
            Effect.map((exitCode) => ({ exitCode, signal: undefined }))
          )
        )
        if (stdin !== undefined) {
          const input = stdin.pipe(
            Stream.mapError((error) =>
              new InputFailed({ error })
            ),
            // The platform's sink waits for "drain" after any element but a chunk's last: an empty
            // last element makes every real one wait, so input never runs ahead of ssh's pipe.
            Stream.mapChunks(Chunk.append(new Uint8Array(0)))
          )
          yield* Stream.run(input, proc.stdin).pipe(
            Effect.catchAll((e) =>
              e instanceof InputFailed
                ? Ref.set(inputFailed, e.error instanceof Error ? e.error.message : String(e.error)).pipe(
                  Effect.zipRight(proc.kill("SIGTERM")),
                  Effect.ignore
                )
                // The command stopped reading (it exited): its exit status tells why.
                : Effect.void
            ),
            Effect.forkScoped
          )
        }
        // Output that ended because the connection did is cut off, not complete.
        const output = (stream: Stream.Stream<Uint8Array, unknown>, name: string) =>
          stream.pipe(
            Stream.mapError((e) => fail(`reading its ${name} failed: ${String(e)}`)),
            Stream.concat(Stream.execute(status))
          )
        return {
          stdout: output(proc.stdout, "stdout"),
          stderr: output(proc.stderr, "stderr"),
          exit: status
        } satisfies RemoteProcess
      })

    return { host, exec: (command, stdin) => execVia(spawn, command, stdin), spawn } satisfies SshConnection
  })
