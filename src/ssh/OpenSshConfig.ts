/**
 * A host as `ssh <host>` would see it: `ssh -G` applies ~/.ssh/config, /etc/ssh/ssh_config,
 * Match, Include and canonicalisation for us; we decode the fields nsh uses.
 */
import { Command, type CommandExecutor } from "@effect/platform"
import { Effect, Option, ParseResult, Schema, Stream } from "effect"
import * as os from "node:os"
import { SshConnectError } from "./SshErrors.js"

/** How `ssh -G` is run: an alternative config file (`ssh -F`) replaces ~/.ssh/config and the global one. */
export interface OpenSshOptions {
  readonly configFile?: string | undefined
}

/** StrictHostKeyChecking, with OpenSSH's synonyms folded ("true" = yes, "false"/"off" = no). */
export type StrictHostKeyChecking = "yes" | "accept-new" | "no" | "ask"

const Flag = Schema.transformLiterals(["yes", true], ["true", true], ["no", false], ["false", false])

const Strict = Schema.transformLiterals(
  ["yes", "yes"],
  ["true", "yes"],
  ["accept-new", "accept-new"],
  ["no", "no"],
  ["false", "no"],
  ["off", "no"],
  ["ask", "ask"]
)

const Count = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

const Port = Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 65535))

/** A value where OpenSSH's "none" means unset. */
const NoneOr = <A>(value: Schema.Schema<A, string>) =>
  Schema.transform(
    Schema.Union(Schema.Literal("none"), value),
    Schema.OptionFromSelf(Schema.typeSchema(value)),
    {
      strict: true,
      decode: (v) => (v === "none" ? Option.none() : Option.some(v as A)),
      encode: (o) => Option.getOrElse(o, () => "none" as const)
    }
  )

const optionalSetting = <A>(value: Schema.Schema<A, string>, key: string) =>
  Schema.optionalWith(NoneOr(value), { default: () => Option.none<A>() }).pipe(Schema.fromKey(key))

/** `ssh -G` prints file lists space-separated on one line ("none" = no file). */
const FileList = Schema.transform(Schema.String, Schema.Array(Schema.String), {
  strict: true,
  decode: (s) => (s === "none" ? [] : s.split(/\s+/).filter((f) => f.length > 0)),
  encode: (files) => (files.length === 0 ? "none" : files.join(" "))
})

/** The `ssh -G` fields nsh uses, keyed like OpenSSH prints them. */
export const OpenSshHost = Schema.Struct({
  host: Schema.String,
  hostname: Schema.String,
  user: Schema.String,
  port: Port,
  identityFiles: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).pipe(
    Schema.fromKey("identityfile")
  ),
  identitiesOnly: Schema.optionalWith(Flag, { default: () => false }).pipe(Schema.fromKey("identitiesonly")),
  proxyJump: optionalSetting(Schema.String, "proxyjump"),
  proxyCommand: optionalSetting(Schema.String, "proxycommand"),
  userKnownHostsFiles: Schema.optionalWith(FileList, { default: () => [] }).pipe(Schema.fromKey("userknownhostsfile")),
  globalKnownHostsFiles: Schema.optionalWith(FileList, { default: () => [] }).pipe(
    Schema.fromKey("globalknownhostsfile")
  ),
  strictHostKeyChecking: Schema.optionalWith(Strict, { default: () => "ask" as const }).pipe(
    Schema.fromKey("stricthostkeychecking")
  ),
  connectTimeout: optionalSetting(Count, "connecttimeout"),
  serverAliveInterval: Schema.optionalWith(Count, { default: () => 0 }).pipe(Schema.fromKey("serveraliveinterval")),
  serverAliveCountMax: Schema.optionalWith(Count, { default: () => 3 }).pipe(Schema.fromKey("serveralivecountmax")),
  batchMode: Schema.optionalWith(Flag, { default: () => false }).pipe(Schema.fromKey("batchmode")),
  hashKnownHosts: Schema.optionalWith(Flag, { default: () => false }).pipe(Schema.fromKey("hashknownhosts")),
  hostKeyAlias: optionalSetting(Schema.String, "hostkeyalias"),
  identityAgent: optionalSetting(Schema.String, "identityagent"),
  // What only OpenSSH itself can do (see TransportChoice.ts).
  certificateFiles: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).pipe(
    Schema.fromKey("certificatefile")
  ),
  gssapiAuthentication: Schema.optionalWith(Flag, { default: () => false }).pipe(
    Schema.fromKey("gssapiauthentication")
  ),
  hostbasedAuthentication: Schema.optionalWith(Flag, { default: () => false }).pipe(
    Schema.fromKey("hostbasedauthentication")
  ),
  pkcs11Provider: optionalSetting(Schema.String, "pkcs11provider"),
  knownHostsCommand: optionalSetting(Schema.String, "knownhostscommand")
})
export type OpenSshHost = typeof OpenSshHost.Type

/** `ssh -G` repeats these keys, one value per line; every other key is printed once. */
const repeated = new Set(["identityfile", "certificatefile"])

/** Splits `ssh -G` output into key → value (or values, for repeated keys). */
export const parseSshG = (text: string): Record<string, string | Array<string>> => {
  const fields: Record<string, string | Array<string>> = {}
  for (const line of text.split("\n")) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim())
    if (match === null) continue
    const key = match[1]!.toLowerCase()
    const value = match[2]!
    if (repeated.has(key)) {
      const list = fields[key]
      if (Array.isArray(list)) list.push(value)
      else fields[key] = [value]
    } else if (!(key in fields)) {
      fields[key] = value
    }
  }
  return fields
}

/** Decodes `ssh -G` output for `host`. */
export const decodeSshG = (host: string, text: string): Effect.Effect<OpenSshHost, SshConnectError> =>
  Schema.decodeUnknown(OpenSshHost)(parseSshG(text)).pipe(
    Effect.mapError(
      (error) =>
        new SshConnectError({
          host,
          reason: `cannot understand \`ssh -G ${host}\` output: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
        })
    )
  )

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) => stream.pipe(Stream.decodeText(), Stream.mkString)

/**
 * Resolves `host` with `ssh -G [extraArgs] -- host`. `extraArgs` carries `-l/-p/-J` for
 * ProxyJump hops, the way ssh itself resolves a jump host.
 */
export const resolveHost = (
  host: string,
  options: OpenSshOptions,
  extraArgs: ReadonlyArray<string> = []
): Effect.Effect<OpenSshHost, SshConnectError, CommandExecutor.CommandExecutor> => {
  const args = [
    "-G",
    ...(options.configFile === undefined ? [] : ["-F", options.configFile]),
    ...extraArgs,
    "--",
    host
  ]
  const shown = `ssh ${args.join(" ")}`
  return Effect.scoped(
    Effect.gen(function*() {
      const proc = yield* Command.start(Command.make("ssh", ...args))
      const [stdout, stderr, exitCode] = yield* Effect.all(
        [collect(proc.stdout), collect(proc.stderr), proc.exitCode],
        {
          concurrency: "unbounded"
        }
      )
      if (exitCode !== 0) {
        return yield* new SshConnectError({
          host,
          reason: `\`${shown}\` failed (exit ${exitCode}): ${stderr.trim() || "no message"}; fix your SSH configuration`
        })
      }
      return yield* decodeSshG(host, stdout)
    })
  ).pipe(
    Effect.catchTag("SystemError", (error) =>
      Effect.fail(
        new SshConnectError({
          host,
          reason: error.reason === "NotFound"
            ? "the OpenSSH client `ssh` is not installed or not on PATH; nsh runs `ssh -G` to read your SSH configuration, so install openssh-client"
            : `cannot run \`${shown}\`: ${error.message}`
        })
      )),
    Effect.catchTag(
      "BadArgument",
      (error) => Effect.fail(new SshConnectError({ host, reason: `cannot run \`${shown}\`: ${error.message}` }))
    )
  )
}

/** Local facts OpenSSH substitutes into IdentityFile paths. */
export interface LocalIdentity {
  readonly home: string
  readonly user: string
  readonly uid: number
  readonly hostname: string
}

/** The current user's, from the password database like OpenSSH ($HOME only when the uid has no entry). */
export const localIdentity: Effect.Effect<LocalIdentity> = Effect.try(() => os.userInfo()).pipe(
  Effect.orElseSucceed(() => ({
    homedir: os.homedir(),
    username: process.env.USER ?? "",
    uid: process.getuid?.() ?? -1
  })),
  Effect.map((info) => ({ home: info.homedir, user: info.username, uid: info.uid, hostname: os.hostname() }))
)

/**
 * Expands `~`, `%` tokens and `${VAR}` in an IdentityFile path as ssh does (ssh -G prints them
 * unexpanded); None when it uses a token we cannot expand.
 */
export const expandIdentityPath = (
  path: string,
  host: OpenSshHost,
  local: LocalIdentity,
  env: Record<string, string | undefined>
): Option.Option<string> => {
  const tokens: Record<string, string> = {
    "%": "%",
    d: local.home,
    u: local.user,
    i: String(local.uid),
    l: local.hostname,
    L: local.hostname.split(".")[0]!,
    h: host.hostname,
    n: host.host,
    r: host.user,
    p: String(host.port)
  }
  let unknown = false
  const expanded = path
    .replace(/^~(?=\/|$)/, local.home)
    .replace(/%(.)/g, (_, token: string) => tokens[token] ?? ((unknown = true), ""))
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? ((unknown = true), ""))
  return unknown ? Option.none() : Option.some(expanded)
}
