/**
 * SshSession over ssh2, reaching a node by host name exactly like `ssh <host>`: `ssh -G` for the
 * configuration, known_hosts for the host key, agent and IdentityFiles for the user, ProxyJump hops.
 */
import type { CommandExecutor, FileSystem } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Layer, Option, type Scope } from "effect"
import type * as Ssh2 from "ssh2"
import { Config } from "../config/Config.js"
import { acquireInterruptible } from "./Interruptible.js"
import {
  appendKnownHost,
  checkHostKey,
  type HostKeyVerdict,
  type KnownHostEntry,
  knownHostName,
  knownHostsLine,
  loadKnownHosts,
  preferredHostKeyAlgorithms
} from "./KnownHosts.js"
import { type OpenSshHost, type OpenSshOptions, resolveHost } from "./OpenSshConfig.js"
import { openSshConnect } from "./OpenSshTransport.js"
import { loadSsh2, type Ssh2Module } from "./Ssh2.js"
import { authFailureReason, authHandler, type AuthPlan, type AuthTrace, planAuth } from "./SshAuth.js"
import { execOn, spawnOn, type Ssh2Connection } from "./SshChannel.js"
import { SshConnectError, type SshError } from "./SshErrors.js"
import { type SshConnection, SshSession } from "./SshSession.js"
import { chooseTransport, type SshTransportSetting } from "./TransportChoice.js"

/** More hops than this is a loop in the ssh config (a jump host that jumps through itself). */
const maxHops = 8

/** ssh has no overall handshake limit; ssh2 needs one (it also covers authentication). */
const defaultReadyTimeoutMs = 20_000

type Env = Record<string, string | undefined>

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`, one ProxyJump hop. */
export const parseJump = (
  hop: string
): { readonly user: string | undefined; readonly host: string; readonly port: string | undefined } | undefined => {
  const match = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@/\s]+)(?::(\d+))?\/?$/.exec(hop.trim())
  if (match === null) return undefined
  return { user: match[1], host: match[2]!.replace(/^\[(.*)\]$/, "$1"), port: match[3] }
}

/** ssh2 error levels/codes turned into what a user can check. */
const connectFailure = (config: OpenSshHost, error: (Error & { level?: string; code?: string }) | undefined) => {
  const target = `${config.hostname}:${config.port}`
  switch (error?.code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve the host name ${config.hostname} (check /etc/hosts, DNS, or HostName in your ssh config)`
    case "ECONNREFUSED":
      return `${target} refused the connection: is sshd running there, on that port?`
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return `${target} is unreachable (${error.code})`
  }
  if (error?.level === "client-timeout") {
    return `no SSH handshake with ${target} within ${
      Option.getOrElse(config.connectTimeout, () => defaultReadyTimeoutMs / 1000)
    } s (ConnectTimeout)`
  }
  return `${
    error?.message ?? "the connection closed during the SSH handshake"
  } (${config.user}@${target}); check that \`ssh ${config.host} true\` works`
}

/** The TCP connection and SSH handshake with one resolved host, over `sock` when it is behind a jump host. */
const handshake = (
  ssh2: Ssh2Module,
  config: OpenSshHost,
  sock: Ssh2.ClientChannel | undefined,
  knownHosts: ReadonlyArray<KnownHostEntry>,
  plan: AuthPlan
): Effect.Effect<Ssh2Connection, SshError, Scope.Scope | FileSystem.FileSystem> => {
  const name = knownHostName(config.hostname, config.port, Option.getOrUndefined(config.hostKeyAlias))
  const trace: AuthTrace = { tried: [], serverMethods: undefined, notes: [] }
  let decided: { readonly verdict: HostKeyVerdict; readonly key: Buffer } | undefined
  const preferred = preferredHostKeyAlgorithms(knownHosts, name)

  const acquire = Effect.async<Ssh2Connection, SshError>((resume) => {
    const client = new ssh2.Client()
    const conn: Ssh2Connection = { host: config.host, client, state: { openChannels: 0, closed: undefined } }
    let ready = false
    let lastError: (Error & { level?: string; code?: string }) | undefined
    client.on("ready", () => {
      ready = true
      resume(Effect.succeed(conn))
    })
    client.on("error", (error: Error & { level?: string }) => {
      // ssh2 reports a broken agent as an error, then goes on with the next method.
      if (error.level === "agent") trace.notes.push(`the agent failed: ${error.message}`)
      else lastError = error
    })
    client.on("close", () => {
      conn.state.closed ??= lastError?.message ?? "closed by the server"
      if (ready) return
      if (decided?.verdict._tag === "Reject") return resume(Effect.fail(decided.verdict.error))
      const reason = lastError?.level === "client-authentication"
        ? authFailureReason(config.host, plan, trace)
        : connectFailure(config, lastError)
      resume(Effect.fail(new SshConnectError({ host: config.host, reason })))
    })
    client.connect({
      host: config.hostname,
      port: config.port,
      username: config.user,
      ...(sock === undefined ? {} : { sock }),
      readyTimeout: Option.match(config.connectTimeout, {
        onNone: () => defaultReadyTimeoutMs,
        onSome: (s) => s * 1000
      }),
      keepaliveInterval: config.serverAliveInterval * 1000,
      keepaliveCountMax: config.serverAliveCountMax,
      // remove + prepend moves the known types to the front (ssh2's prepend skips listed ones).
      ...(preferred.length === 0
        ? {}
        : { algorithms: { serverHostKey: { remove: preferred, prepend: preferred, append: [] } } }),
      hostVerifier: (key: Buffer) => {
        const files = [...config.userKnownHostsFiles, ...config.globalKnownHostsFiles]
        const verdict = checkHostKey({
          host: config.host,
          name,
          key,
          entries: knownHosts,
          policy: config.strictHostKeyChecking,
          files
        })
        decided = { verdict, key }
        return verdict._tag !== "Reject"
      },
      authHandler: authHandler(ssh2, plan, config.identitiesOnly, trace)
    })
    // Interrupted mid-handshake: drop the socket now rather than wait for a polite close.
    return Effect.sync(() => client.destroy())
  })

  // Like ssh: a key accepted by policy is recorded (and warned about) even if authentication then fails.
  const recordHostKey = Effect.suspend(() => {
    if (decided === undefined) return Effect.void
    const { verdict, key } = decided
    switch (verdict._tag) {
      case "AcceptNew":
        return appendKnownHost(config.host, verdict.file, knownHostsLine(verdict.name, key, config.hashKnownHosts))
          .pipe(
            Effect.zipRight(Effect.logWarning(`ssh ${config.host}: ${verdict.warning}`)),
            Effect.catchAll((error) => Effect.logWarning(`ssh ${config.host}: ${error.message}`))
          )
      case "AcceptChanged":
        return Effect.logWarning(`ssh ${config.host}: ${verdict.warning}`)
      default:
        return Effect.void
    }
  })

  return acquireInterruptible(
    acquire.pipe(Effect.ensuring(recordHostKey)),
    (conn) => Effect.sync(() => conn.client.end())
  )
}

/** The forwarded channel from a jump host to the target, used as the target's socket. */
const forwardThrough = (jump: Ssh2Connection, target: OpenSshHost) =>
  Effect.async<Ssh2.ClientChannel, SshConnectError>((resume) => {
    jump.client.forwardOut("127.0.0.1", 0, target.hostname, target.port, (error, channel) =>
      resume(
        error === undefined
          ? Effect.succeed(channel)
          : Effect.fail(
            new SshConnectError({
              host: target.host,
              reason: `jump host ${jump.host} cannot reach ${target.hostname}:${target.port}: ${error.message}`
            })
          )
      ))
  })

/**
 * Connects to `host` as `ssh [extraArgs] host` would. A ProxyJump list `a,b` is resolved the way
 * ssh does it: the last hop `b` is itself reached with `-J a`, each hop with its own config.
 */
const openHost = (
  ssh2: Ssh2Module,
  options: OpenSshOptions,
  host: string,
  extraArgs: ReadonlyArray<string>,
  hops: number,
  resolved?: OpenSshHost
): Effect.Effect<Ssh2Connection, SshError, Scope.Scope | FileSystem.FileSystem | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const config = resolved ?? (yield* resolveHost(host, options, extraArgs))
    if (Option.isSome(config.proxyCommand) && Option.isNone(config.proxyJump)) {
      return yield* new SshConnectError({
        host,
        reason:
          `your ssh config sets ProxyCommand (${config.proxyCommand.value}), which ssh2 cannot follow: set ssh-transport = auto or openssh in nsh.conf (or use ProxyJump)`
      })
    }
    let sock: Ssh2.ClientChannel | undefined
    if (Option.isSome(config.proxyJump)) {
      const chain = config.proxyJump.value.split(",")
      const last = parseJump(chain.pop() ?? "")
      if (last === undefined || hops >= maxHops) {
        return yield* new SshConnectError({
          host,
          reason: last === undefined
            ? `cannot parse ProxyJump ${config.proxyJump.value}`
            : `more than ${maxHops} ProxyJump hops: does a jump host's config jump through itself?`
        })
      }
      const jumpArgs = [
        ...(last.user === undefined ? [] : ["-l", last.user]),
        ...(last.port === undefined ? [] : ["-p", last.port]),
        ...(chain.length === 0 ? [] : ["-J", chain.join(",")])
      ]
      const jump = yield* openHost(ssh2, options, last.host, jumpArgs, hops + 1)
      sock = yield* forwardThrough(jump, config)
    }
    const env: Env = yield* Effect.sync(() => ({ ...process.env }))
    const knownHosts = yield* loadKnownHosts([...config.userKnownHostsFiles, ...config.globalKnownHostsFiles])
    const plan = yield* planAuth(ssh2, config, env)
    yield* Effect.logDebug(
      `ssh ${host}: ${config.user}@${config.hostname}:${config.port}${
        sock === undefined ? "" : ` via ${config.proxyJump.pipe(Option.getOrElse(() => ""))}`
      }`
    )
    return yield* handshake(ssh2, config, sock, knownHosts, plan)
  })

/** How the session is made: `ssh -F` config file (tests) and the `ssh-transport` setting. */
export interface SshSessionOptions extends OpenSshOptions {
  readonly transport?: SshTransportSetting | undefined
}

/**
 * SshSession for a given `ssh -F` config file (tests) or the user's own: each host is resolved
 * with `ssh -G` once, then reached over ssh2 or the system's OpenSSH (see TransportChoice.ts).
 */
export const makeSshSession = (options: SshSessionOptions = {}) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<CommandExecutor.CommandExecutor | FileSystem.FileSystem>()
    return SshSession.of({
      connect: (host) =>
        Effect.gen(function*() {
          const config = yield* resolveHost(host, options)
          const env: Env = yield* Effect.sync(() => ({ ...process.env }))
          const choice = yield* chooseTransport(options.transport ?? "auto", config, env)
          yield* Effect.logDebug(`ssh ${host}: over ${choice.transport} (${choice.why})`)
          if (choice.transport === "openssh") return yield* openSshConnect(config, options, env)
          const ssh2 = yield* loadSsh2(host)
          const conn = yield* openHost(ssh2, options, host, [], 0, config)
          return {
            host,
            exec: (command, stdin) => execOn(conn, command, stdin),
            spawn: (command, stdin) => spawnOn(conn, command, stdin)
          } satisfies SshConnection
        }).pipe(Effect.provide(context))
    })
  })

/** SshSession with explicit options (e.g. `configFile` for `ssh -F`, `transport`). */
export const SshSessionLayer = (options: SshSessionOptions): Layer.Layer<SshSession> =>
  Layer.effect(SshSession, makeSshSession(options)).pipe(Layer.provide(NodeContext.layer))

/** SshSession reading the user's own ssh configuration, like `ssh <host>`, with nsh.conf's `ssh-transport`. */
export const SshSessionLive: Layer.Layer<SshSession, never, Config> = Layer.unwrapEffect(
  Effect.map(Config, ({ settings }) => SshSessionLayer({ transport: settings.sshTransport }))
)
