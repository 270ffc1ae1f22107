/**
 * SshSession: connections to compute nodes by host name, resolved and verified the way
 * `ssh <host>` would (the user's OpenSSH config, known_hosts, agent and default keys).
 */
import { Context, type Effect, type Scope, type Stream } from "effect"
import type { SshError } from "./SshErrors.js"

export interface ExecResult {
  readonly exitCode: number
  /** Set when the remote command died of a signal (e.g. "KILL"). */
  readonly signal: string | undefined
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
}

/** A running remote command; its channel closes when the scope closes. */
export interface RemoteProcess {
  readonly stdout: Stream.Stream<Uint8Array, SshError>
  readonly stderr: Stream.Stream<Uint8Array, SshError>
  /** Completes when the command exits. */
  readonly exit: Effect.Effect<{ readonly exitCode: number; readonly signal: string | undefined }, SshError>
}

export interface SshConnection {
  /** The host name as given (what Slurm calls the node). */
  readonly host: string
  /** Runs a command, feeding `stdin` if given, and collects its output. */
  readonly exec: (command: string, stdin?: Stream.Stream<Uint8Array, unknown>) => Effect.Effect<ExecResult, SshError>
  /** Starts a command whose output is streamed (backpressured) as it arrives. */
  readonly spawn: (
    command: string,
    stdin?: Stream.Stream<Uint8Array, unknown>
  ) => Effect.Effect<RemoteProcess, SshError, Scope.Scope>
}

export interface SshSessionService {
  /** One connection per build; closed when the scope closes. */
  readonly connect: (host: string) => Effect.Effect<SshConnection, SshError, Scope.Scope>
}

export class SshSession extends Context.Tag("nsh/SshSession")<SshSession, SshSessionService>() {}
