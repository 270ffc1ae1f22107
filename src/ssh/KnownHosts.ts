/**
 * known_hosts as OpenSSH reads it (patterns, `[host]:port`, hashed names, @revoked,
 * @cert-authority) and the host key decision ssh makes for each StrictHostKeyChecking value.
 */
import { FileSystem } from "@effect/platform"
import { Data, Effect } from "effect"
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as path from "node:path"
import type { ServerHostKeyAlgorithm } from "ssh2"
import type { StrictHostKeyChecking } from "./OpenSshConfig.js"
import { SshConnectError, SshHostKeyError } from "./SshErrors.js"

/** Which host names a known_hosts line covers. */
export type HostNames =
  | { readonly _tag: "Hashed"; readonly salt: Buffer; readonly hash: Buffer }
  | { readonly _tag: "Patterns"; readonly patterns: ReadonlyArray<string> }

/** One parsed known_hosts line. */
export interface KnownHostEntry {
  readonly file: string
  readonly line: number
  readonly marker: "none" | "revoked" | "cert-authority"
  readonly names: HostNames
  readonly keyType: string
  readonly key: Buffer
}

/** The name ssh looks up: HostKeyAlias as is, else the host, bracketed with its port when not 22. */
export const knownHostName = (hostname: string, port: number, alias?: string) =>
  alias ?? (port === 22 ? hostname : `[${hostname}]:${port}`)

/** Parses a known_hosts file; lines ssh would skip (comments, garbage) are skipped. */
export const parseKnownHosts = (text: string, file: string): Array<KnownHostEntry> => {
  const entries: Array<KnownHostEntry> = []
  text.split("\n").forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === undefined || fields[0] === "" || fields[0].startsWith("#")) return
    const marker = markers[fields[0]] ?? (fields[0].startsWith("@") ? undefined : "none")
    if (marker === undefined) return
    const [hosts, keyType, keyText] = marker === "none" ? fields : fields.slice(1)
    if (hosts === undefined || keyType === undefined || keyText === undefined) return
    const key = Buffer.from(keyText, "base64")
    if (key.length === 0 || keyTypeOf(key) !== keyType) return
    const names = parseNames(hosts)
    if (names !== undefined) entries.push({ file, line: index + 1, marker, names, keyType, key })
  })
  return entries
}

const markers: Record<string, KnownHostEntry["marker"]> = { "@revoked": "revoked", "@cert-authority": "cert-authority" }

const parseNames = (field: string): HostNames | undefined => {
  if (!field.startsWith("|")) return { _tag: "Patterns", patterns: field.split(",").filter((p) => p.length > 0) }
  const [, magic, salt, hash] = field.split("|")
  if (magic !== "1" || salt === undefined || hash === undefined) return undefined
  return { _tag: "Hashed", salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") }
}

/** The key type named inside a public key blob (string length + name). */
export const keyTypeOf = (key: Uint8Array): string => {
  if (key.length < 4) return ""
  const length = Buffer.from(key.buffer, key.byteOffset, key.length).readUInt32BE(0)
  return length > 64 || key.length < 4 + length ? "" : Buffer.from(key.subarray(4, 4 + length)).toString("latin1")
}

/** `SHA256:<base64>`, as OpenSSH prints key fingerprints. */
export const fingerprint = (key: Uint8Array) =>
  `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`

const globToRegExp = (pattern: string) =>
  new RegExp(
    `^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`,
    "i"
  )

/** OpenSSH's match_hostname: a matching `!pattern` excludes, else any matching pattern includes. */
const matchesPatterns = (patterns: ReadonlyArray<string>, name: string) => {
  let positive = false
  for (const pattern of patterns) {
    const negated = pattern.startsWith("!")
    if (!globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) continue
    if (negated) return false
    positive = true
  }
  return positive
}

/** HMAC-SHA1 of the name keyed by the line's salt, the way `ssh-keygen -H` hashes names. */
const hashName = (salt: Buffer, name: string) => createHmac("sha1", salt).update(name).digest()

/** Whether an entry's host field covers `name`. */
export const hostMatches = (entry: KnownHostEntry, name: string) => {
  if (entry.names._tag === "Patterns") return matchesPatterns(entry.names.patterns, name)
  const hash = hashName(entry.names.salt, name)
  return hash.length === entry.names.hash.length && timingSafeEqual(hash, entry.names.hash)
}

/** What to do with the key a server presented. */
export type HostKeyVerdict = Data.TaggedEnum<{
  Known: {}
  /** Not known, accepted by policy: add it to `file` under `name`. */
  AcceptNew: { readonly file: string; readonly name: string; readonly warning: string }
  /** Changed, and StrictHostKeyChecking=no lets it through (ssh does, with a warning). */
  AcceptChanged: { readonly warning: string }
  Reject: { readonly error: SshHostKeyError }
}>
export const HostKeyVerdict = Data.taggedEnum<HostKeyVerdict>()

/** Everything the host key decision depends on. */
export interface HostKeyCheck {
  /** The host as the user named it (for messages). */
  readonly host: string
  /** The known_hosts lookup name (see knownHostName). */
  readonly name: string
  readonly key: Uint8Array
  readonly entries: ReadonlyArray<KnownHostEntry>
  readonly policy: StrictHostKeyChecking
  /** The files searched, user files first: new keys go to the first one. */
  readonly files: ReadonlyArray<string>
}

const where = (entry: KnownHostEntry) => `${entry.file}:${entry.line}`

/**
 * ssh's decision: revoked → reject; known → ok; same key type known with another key → CHANGED;
 * unknown → StrictHostKeyChecking decides ("ask" cannot prompt here, so it refuses like "yes").
 */
export const checkHostKey = (check: HostKeyCheck): HostKeyVerdict => {
  const key = Buffer.from(check.key)
  const keyType = keyTypeOf(key)
  const fp = fingerprint(key)
  const reject = (reason: string) =>
    HostKeyVerdict.Reject({ error: new SshHostKeyError({ host: check.host, fingerprint: fp, reason }) })
  const forHost = check.entries.filter((entry) => hostMatches(entry, check.name))
  const revoked = forHost.find((entry) => entry.marker === "revoked" && entry.key.equals(key))
  if (revoked !== undefined) return reject(`is REVOKED (${where(revoked)}); refusing to connect`)
  const plain = forHost.filter((entry) => entry.marker === "none")
  if (plain.some((entry) => entry.key.equals(key))) return HostKeyVerdict.Known()
  const changed = plain.find((entry) => entry.keyType === keyType)
  if (changed !== undefined) {
    const detail = `${
      where(changed)
    } has another ${keyType} key for '${check.name}'; someone may be intercepting the connection, or the node was reinstalled (then remove the old key with \`ssh-keygen -R '${check.name}' -f ${changed.file}\`)`
    return check.policy === "no"
      ? HostKeyVerdict.AcceptChanged({
        warning:
          `host key of ${check.host} (${fp}) has CHANGED: ${detail}; connecting anyway because StrictHostKeyChecking=no`
      })
      : reject(`has CHANGED: ${detail}`)
  }
  const userFile = check.files[0]
  if ((check.policy === "accept-new" || check.policy === "no") && userFile !== undefined) {
    return HostKeyVerdict.AcceptNew({
      file: userFile,
      name: check.name,
      warning:
        `permanently added '${check.name}' (${keyType} ${fp}) to ${userFile} (StrictHostKeyChecking=${check.policy})`
    })
  }
  const others = plain.map((entry) => entry.keyType).filter((type, i, all) => all.indexOf(type) === i)
  const byCa = forHost.some((entry) => entry.marker === "cert-authority")
  return reject(
    [
      `is not known: no ${keyType} key for '${check.name}' in ${check.files.join(", ") || "any known_hosts file"}`,
      others.length > 0 ? ` (only ${others.join(", ")})` : "",
      byCa ? " (a @cert-authority line covers it, but host certificates are not supported)" : "",
      ` and StrictHostKeyChecking is ${check.policy}`,
      check.policy === "ask" ? " (nsh cannot ask)" : ""
    ].join("")
  )
}

/**
 * Host key algorithms to offer, those of keys known for the host first (like ssh), so a node
 * with several host keys presents the one known_hosts has.
 */
export const preferredHostKeyAlgorithms = (
  entries: ReadonlyArray<KnownHostEntry>,
  name: string
): Array<ServerHostKeyAlgorithm> => {
  const algorithms: Array<ServerHostKeyAlgorithm> = []
  for (const entry of entries) {
    if (entry.marker !== "none" || !hostMatches(entry, name)) continue
    for (
      const algorithm of entry.keyType === "ssh-rsa"
        ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        : [entry.keyType]
    ) {
      const supported = supportedHostKeyAlgorithms.find((known) => known === algorithm)
      if (supported !== undefined && !algorithms.includes(supported)) algorithms.push(supported)
    }
  }
  return algorithms
}

/** What ssh2 can verify (it has no host certificates). */
const supportedHostKeyAlgorithms: ReadonlyArray<ServerHostKeyAlgorithm> = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa"
]

/** A known_hosts line for `name`, hashed when HashKnownHosts is set (as ssh writes it). */
export const knownHostsLine = (name: string, key: Uint8Array, hash: boolean): string => {
  const blob = Buffer.from(key)
  if (!hash) return `${name} ${keyTypeOf(blob)} ${blob.toString("base64")}`
  const salt = randomBytes(20)
  return `|1|${salt.toString("base64")}|${hashName(salt, name).toString("base64")} ${keyTypeOf(blob)} ${
    blob.toString("base64")
  }`
}

/** Reads and parses the files that exist; unreadable ones are skipped with a debug note, as ssh does. */
export const loadKnownHosts = (files: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const parsed = yield* Effect.forEach(files, (file) =>
      fs.readFileString(file).pipe(
        Effect.map((text) => parseKnownHosts(text, file)),
        Effect.catchAll((error) =>
          Effect.as(
            error._tag === "SystemError" && error.reason === "NotFound"
              ? Effect.void
              : Effect.logDebug(`ssh: skipping known_hosts file ${file}: ${error.message}`),
            []
          )
        )
      ))
    return parsed.flat()
  })

/** Appends a line to a known_hosts file, creating it (and a private ~/.ssh) like ssh. */
export const appendKnownHost = (host: string, file: string, line: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(path.dirname(file), { recursive: true, mode: 0o700 })
    const existing = yield* fs.readFileString(file).pipe(
      Effect.catchIf(
        (error) => error._tag === "SystemError" && error.reason === "NotFound",
        () => Effect.succeed("")
      )
    )
    const separator = existing.length > 0 && !existing.endsWith("\n") ? "\n" : ""
    yield* fs.writeFileString(file, `${separator}${line}\n`, { flag: "a", mode: 0o600 })
  }).pipe(
    Effect.mapError(
      (error) => new SshConnectError({ host, reason: `cannot add the host key to ${file}: ${error.message}` })
    )
  )
