/**
 * Commands over one ssh2 connection: one session channel per command, several at once, with
 * backpressure both ways (the SSH window only reopens as our consumer reads).
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Cause, Chunk, Deferred, Effect, Exit, Scope, Stream } from "effect"
import * as os from "node:os"
import type { Readable } from "node:stream"
import type * as Ssh2 from "ssh2"
import { forAnyLoginShell } from "../util/ShellQuote.js"
import { acquireInterruptible } from "./Interruptible.js"
import { SshChannelError, type SshError } from "./SshErrors.js"
import type { ExecResult, RemoteProcess } from "./SshSession.js"

/** A connected ssh2 client and what its channels report about it. */
export interface Ssh2Connection {
  readonly host: string
  readonly client: Ssh2.Client
  readonly state: {
    openChannels: number
    /** Set when the connection has ended, with why. */
    closed: string | undefined
  }
}

type ExitStatus = { readonly exitCode: number; readonly signal: string | undefined }

/** ssh2 reports "SIGKILL"; we say "KILL" and, like a shell, exit code 128 + signal number. */
const signalStatus = (signal: string): ExitStatus => {
  const name = signal.replace(/^SIG/, "")
  const number = (os.constants.signals as Record<string, number | undefined>)[`SIG${name}`]
  return { exitCode: number === undefined ? 255 : 128 + number, signal: name }
}

/**
 * Prefix for a command without input. sshd refuses signal requests on root logins (no privilege
 * separation), and closing a channel does not stop its command, so `tail -F` would outlive us.
 * Instead the command reads /dev/null (like `ssh -n`) while a watcher holds the channel's stdin,
 * which we never end: when the channel closes, the watcher's read ends and it kills the
 * session's process group (sshd makes each session its own).
 */
export const hangupGuard = "exec 3<&0 </dev/null; (read -r _ <&3; kill -TERM 0) >/dev/null 2>&1 & exec 3<&-; "

/** Writes one chunk; false when the command can take no more input (it exited or the channel closed). */
const writeChunk = (channel: Ssh2.ClientChannel, chunk: Uint8Array) =>
  Effect.async<boolean>((resume) => {
    if (!channel.writable) return resume(Effect.succeed(false))
    if (channel.write(chunk)) return resume(Effect.succeed(true))
    const settle = (open: boolean) => () => {
      cleanup()
      resume(Effect.succeed(open))
    }
    const onDrain = settle(true)
    const onGone = settle(false)
    const cleanup = () => {
      channel.off("drain", onDrain)
      channel.off("exit", onGone)
      channel.off("close", onGone)
    }
    channel.on("drain", onDrain).on("exit", onGone).on("close", onGone)
    return Effect.sync(cleanup)
  })

/**
 * Starts `command` in a new session channel. The channel is closed with the scope; a command still
 * running then gets SIGTERM (a signal request where sshd allows it, the hangup guard otherwise).
 */
export const spawnOn = (
  conn: Ssh2Connection,
  command: string,
  stdin?: Stream.Stream<Uint8Array, unknown>
): Effect.Effect<RemoteProcess, SshError, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (reason: string) => new SshChannelError({ host: conn.host, command, reason })
    const exit = yield* Deferred.make<ExitStatus, SshChannelError>()
    let settled = false
    const settle = (result: Exit.Exit<ExitStatus, SshChannelError>) => {
      if (settled) return false
      settled = true
      Deferred.unsafeDone(exit, result)
      return true
    }
    // Set when the connection dropped before the exit status: output that ended then is truncated.
    let lost = false

    // Listeners go on inside ssh2's callback: a quick command's exit can arrive in the same packet batch.
    const wire = (channel: Ssh2.ClientChannel) => {
      const onClientClose = () => {
        const why = conn.state.closed === undefined ? "" : ` (${conn.state.closed})`
        lost = settle(Exit.fail(fail(`the connection to ${conn.host} closed before the command exited${why}`)))
      }
      conn.client.on("close", onClientClose)
      channel.on("exit", (code: number | null, signal?: string) => {
        settle(Exit.succeed(code === null ? signalStatus(signal ?? "") : { exitCode: code, signal: undefined }))
      })
      channel.on("close", () => {
        conn.client.off("close", onClientClose)
        settle(Exit.fail(fail("the channel closed without an exit status")))
      })
      channel.on("error", (error: Error) => settle(Exit.fail(fail(error.message))))
      return () => conn.client.off("close", onClientClose)
    }

    const open = Effect.async<readonly [Ssh2.ClientChannel, () => void], SshChannelError>((resume) => {
      let interrupted = false
      const onOpen = (error: Error | undefined, channel: Ssh2.ClientChannel) => {
        if (error !== undefined) {
          return resume(
            Effect.fail(
              fail(
                `${conn.host} refused a new channel (${error.message}) with ${conn.state.openChannels} open on this connection; if that is many, raise MaxSessions in the node's sshd_config`
              )
            )
          )
        }
        const unwire = wire(channel)
        if (interrupted) {
          unwire()
          channel.close()
        } else {
          resume(Effect.succeed([channel, unwire] as const))
        }
      }
      if (conn.state.closed !== undefined) {
        return resume(Effect.fail(fail(`the connection is closed (${conn.state.closed})`)))
      }
      conn.client.exec(forAnyLoginShell(stdin === undefined ? hangupGuard + command : command), onOpen)
      return Effect.sync(() => {
        interrupted = true
      })
    })

    const [channel] = yield* acquireInterruptible(
      open.pipe(Effect.tap(() => Effect.sync(() => conn.state.openChannels++))),
      ([channel, unwire]) =>
        Effect.sync(() => {
          conn.state.openChannels--
          // ssh2 sends it only before our EOF: a command fed all its input has been told to finish.
          if (!settled) channel.signal("TERM")
          channel.close()
          unwire()
        })
    )

    if (stdin !== undefined) {
      yield* Stream.runForEachWhile(stdin, (chunk) => writeChunk(channel, chunk)).pipe(
        Effect.zipRight(Effect.sync(() => channel.end())),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.sync(() => {
              const error = Cause.squash(cause)
              settle(Exit.fail(fail(`its input failed: ${error instanceof Error ? error.message : String(error)}`)))
              channel.signal("TERM")
              channel.close()
            })
        ),
        Effect.forkScoped
      )
    }

    const output = (readable: Readable, name: string): Stream.Stream<Uint8Array, SshError> =>
      NodeStream.fromReadable<SshChannelError, Uint8Array>(
        () => readable,
        (error) => fail(`reading its ${name} failed: ${String(error)}`),
        { closeOnDone: false }
      ).pipe(
        Stream.concat(
          Stream.suspend(() => (lost
            ? Stream.fail(fail(`its ${name} was cut off: the connection to ${conn.host} closed`))
            : Stream.empty)
          )
        )
      )

    return {
      stdout: output(channel, "stdout"),
      stderr: output(channel.stderr, "stderr"),
      exit: Deferred.await(exit)
    } satisfies RemoteProcess
  })

const collectBytes = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Stream.runCollect(stream).pipe(Effect.map((chunks) => new Uint8Array(Buffer.concat(Chunk.toReadonlyArray(chunks)))))

/** Runs a command started by `spawn` to completion, collecting its output (both transports). */
export const execVia = (
  spawn: (
    command: string,
    stdin?: Stream.Stream<Uint8Array, unknown>
  ) => Effect.Effect<RemoteProcess, SshError, Scope.Scope>,
  command: string,
  stdin?: Stream.Stream<Uint8Array, unknown>
): Effect.Effect<ExecResult, SshError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const proc = yield* spawn(command, stdin)
      const [stdout, stderr, status] = yield* Effect.all([
        collectBytes(proc.stdout),
        collectBytes(proc.stderr),
        proc.exit
      ], {
        concurrency: "unbounded"
      })
      return { exitCode: status.exitCode, signal: status.signal, stdout, stderr }
    })
  )

/** Runs `command` to completion, collecting its output. */
export const execOn = (
  conn: Ssh2Connection,
  command: string,
  stdin?: Stream.Stream<Uint8Array, unknown>
): Effect.Effect<ExecResult, SshError> => execVia((c, i) => spawnOn(conn, c, i), command, stdin)
