/**
 * Public key authentication the way ssh does it: the agent (SSH_AUTH_SOCK or IdentityAgent),
 * then the IdentityFiles; with IdentitiesOnly only agent keys that match those files.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import type * as Ssh2 from "ssh2"
import { expandIdentityPath, localIdentity, type OpenSshHost } from "./OpenSshConfig.js"
import type { Ssh2Module } from "./Ssh2.js"

/** An IdentityFile that exists: its private key when usable, its public key for agent matching. */
interface Identity {
  readonly label: string
  readonly privateKey: Ssh2.ParsedKey | undefined
  readonly publicKey: Buffer | undefined
}

/** The methods to try, in order, and what was left out and why (for the error message). */
export interface AuthPlan {
  readonly username: string
  readonly agentSocket: string | undefined
  readonly identities: ReadonlyArray<Identity>
  readonly skipped: ReadonlyArray<string>
}

/** The agent socket ssh would use: IdentityAgent ("none", "SSH_AUTH_SOCK", `$VAR`, a path) or $SSH_AUTH_SOCK. */
export const agentSocket = (host: OpenSshHost, env: Record<string, string | undefined>) => {
  const socket = Option.match(host.identityAgent, {
    onNone: () => env.SSH_AUTH_SOCK,
    onSome: (
      value
    ) => (value === "SSH_AUTH_SOCK" ? env.SSH_AUTH_SOCK : value.startsWith("$") ? env[value.slice(1)] : value)
  })
  return socket === "" ? undefined : socket
}

const firstKey = (parsed: ReturnType<typeof Ssh2.utils.parseKey> | Array<Ssh2.ParsedKey>) =>
  Array.isArray(parsed) ? parsed[0] : parsed

/** Reads the IdentityFiles; missing ones are skipped silently (ssh's defaults mostly are). */
export const planAuth = (ssh2: Ssh2Module, host: OpenSshHost, env: Record<string, string | undefined>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const local = yield* localIdentity
    const identities: Array<Identity> = []
    const skipped: Array<string> = []
    const skip = (label: string, why: string) =>
      Effect.sync(() => skipped.push(`${label} (${why})`)).pipe(
        Effect.zipRight(Effect.logDebug(`ssh ${host.host}: skipping identity ${label}: ${why}`))
      )
    const readOptional = (file: string) =>
      fs.readFile(file).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          error._tag === "SystemError" && error.reason === "NotFound"
            ? Effect.succeed(Option.none<Uint8Array>())
            : Effect.as(skip(file, `unreadable: ${error.message}`), Option.none<Uint8Array>())
        )
      )
    for (const configured of host.identityFiles) {
      const expanded = expandIdentityPath(configured, host, local, env)
      if (Option.isNone(expanded)) {
        yield* skip(configured, "uses a %token or ${VAR} nsh cannot expand")
        continue
      }
      const file = expanded.value
      const data = yield* readOptional(file)
      if (Option.isNone(data)) continue
      const parsed = firstKey(ssh2.utils.parseKey(Buffer.from(data.value)))
      if (parsed !== undefined && !(parsed instanceof Error) && parsed.isPrivateKey()) {
        identities.push({ label: file, privateKey: parsed, publicKey: parsed.getPublicSSH() })
        continue
      }
      // An encrypted key can still be used through the agent: match it by its .pub.
      const pub = yield* readOptional(`${file}.pub`)
      const publicKey = Option.flatMap(pub, (text) => {
        const key = firstKey(ssh2.utils.parseKey(Buffer.from(text)))
        return key === undefined || key instanceof Error ? Option.none() : Option.some(key.getPublicSSH())
      })
      identities.push({ label: file, privateKey: undefined, publicKey: Option.getOrUndefined(publicKey) })
      yield* skip(
        file,
        parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message)
          ? "encrypted: nsh cannot ask for a passphrase, add the key to ssh-agent"
          : `not a private key ssh2 can use${parsed instanceof Error ? `: ${parsed.message}` : ""}`
      )
    }
    return { username: host.user, agentSocket: agentSocket(host, env), identities, skipped } satisfies AuthPlan
  })

/** What an authentication attempt tried, filled in while ssh2 authenticates. */
export interface AuthTrace {
  readonly tried: Array<string>
  /** The methods the server said it accepts (after the first failure). */
  serverMethods: ReadonlyArray<string> | undefined
  /** Agent failures and the like, reported only if authentication fails. */
  readonly notes: Array<string>
}

/** ssh2's authHandler, typed as it really behaves (it accepts `false` = give up). */
type AuthHandler = (
  methodsLeft: ReadonlyArray<string> | null,
  partialSuccess: boolean | null,
  next: (method: Ssh2.AnyAuthMethod | false) => void
) => void

/**
 * The agent ssh would use: keys matching the IdentityFiles first, the others only without
 * IdentitiesOnly. Remembers what it offered so the files are not offered twice.
 */
const orderedAgent = (
  ssh2: Ssh2Module,
  socket: string,
  plan: AuthPlan,
  identitiesOnly: boolean,
  offered: Array<Buffer>
) => {
  const inner = new ssh2.OpenSSHAgent(socket)
  const wanted = plan.identities.flatMap((identity) => (identity.publicKey === undefined ? [] : [identity.publicKey]))
  class OrderedAgent extends ssh2.BaseAgent<Ssh2.ParsedKey> {
    getIdentities(cb: Ssh2.IdentityCallback<Ssh2.ParsedKey>) {
      inner.getIdentities((err, entries) => {
        if (err) return cb(err)
        // OpenSSHAgent hands out parsed keys; the typings also allow wrapped entries.
        const keys = (entries ?? []).flatMap((key) => ("getPublicSSH" in key ? [key] : []))
        const isWanted = (key: Ssh2.ParsedKey) => wanted.some((pub) => pub.equals(key.getPublicSSH()))
        const ordered = [...keys.filter(isWanted), ...(identitiesOnly ? [] : keys.filter((key) => !isWanted(key)))]
        offered.push(...ordered.map((key) => key.getPublicSSH()))
        cb(undefined, ordered)
      })
    }
    sign(pubKey: Ssh2.ParsedKey, data: Buffer, options: Ssh2.SigningRequestOptions, cb?: Ssh2.SignCallback): void
    sign(pubKey: Ssh2.ParsedKey, data: Buffer, cb: Ssh2.SignCallback): void
    sign(
      pubKey: Ssh2.ParsedKey,
      data: Buffer,
      options: Ssh2.SigningRequestOptions | Ssh2.SignCallback,
      cb?: Ssh2.SignCallback
    ) {
      if (typeof options === "function") inner.sign(pubKey, data, options)
      else inner.sign(pubKey, data, options, cb)
    }
  }
  return new OrderedAgent()
}

/** The authHandler for ssh2: "none" (to learn the server's methods), the agent, then the files. */
export const authHandler = (ssh2: Ssh2Module, plan: AuthPlan, identitiesOnly: boolean, trace: AuthTrace) => {
  const offered: Array<Buffer> = []
  const queue: Array<() => Option.Option<readonly [string, Ssh2.AnyAuthMethod]>> = []
  const socket = plan.agentSocket
  if (socket !== undefined) {
    queue.push(() =>
      Option.some(
        [
          `the agent at ${socket}`,
          { type: "agent", username: plan.username, agent: orderedAgent(ssh2, socket, plan, identitiesOnly, offered) }
        ] as const
      )
    )
  }
  for (const identity of plan.identities) {
    const key = identity.privateKey
    if (key === undefined) continue
    queue.push(() =>
      offered.some((pub) => pub.equals(key.getPublicSSH()))
        ? Option.none()
        : Option.some([identity.label, { type: "publickey", username: plan.username, key }] as const)
    )
  }
  const handler: AuthHandler = (methodsLeft, _partial, next) => {
    if (methodsLeft === null) return next({ type: "none", username: plan.username })
    trace.serverMethods = methodsLeft
    if (!methodsLeft.includes("publickey")) return next(false)
    for (let attempt = queue.shift(); attempt !== undefined; attempt = queue.shift()) {
      const method = attempt()
      if (Option.isSome(method)) {
        trace.tried.push(method.value[0])
        return next(method.value[1])
      }
    }
    next(false)
  }
  return handler as unknown as Ssh2.AuthHandlerMiddleware
}

/** "Permission denied (publickey): tried …; skipped …" with what to check. */
export const authFailureReason = (host: string, plan: AuthPlan, trace: AuthTrace) => {
  const methods = trace.serverMethods?.join(",") ?? "publickey"
  const tried = trace.tried.length > 0
    ? `tried ${trace.tried.join(", ")}`
    : "no key to try (no agent, no readable IdentityFile)"
  const skipped = plan.skipped.length > 0 ? `; skipped ${plan.skipped.join(", ")}` : ""
  const notes = trace.notes.length > 0 ? `; ${trace.notes.join("; ")}` : ""
  const keysOnly = trace.serverMethods !== undefined && !trace.serverMethods.includes("publickey")
    ? "; the node does not accept public keys, and nsh authenticates only with keys"
    : ""
  return `Permission denied (${methods}) for user ${plan.username}: ${tried}${skipped}${notes}${keysOnly} — check that \`ssh ${host} true\` works for this user without a prompt`
}
