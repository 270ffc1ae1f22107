/**
 * Which client reaches a host: ssh2 in-process, or the system's OpenSSH where the user's
 * configuration asks for what ssh2 cannot do. The promise is: wherever `ssh node1 true` works,
 * nsh works.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Option } from "effect"
import { expandIdentityPath, localIdentity, type OpenSshHost } from "./OpenSshConfig.js"

/** The `ssh-transport` setting. */
export type SshTransportSetting = "auto" | "ssh2" | "openssh"

export interface TransportChoice {
  readonly transport: "ssh2" | "openssh"
  /** Why, for the debug log and `nsh doctor`. */
  readonly why: string
}

/**
 * The first thing in `host`'s configuration ssh2 cannot do, if any: OpenSSH user certificates
 * (CertificateFile, or a `<key>-cert.pub` beside an IdentityFile; ssh2 1.17 cannot use one at
 * all, it even skips the agent's, mscdex/ssh2#551), Kerberos (GSSAPIAuthentication with a ticket cache), smart cards (PKCS11Provider), FIDO keys
 * (an `sk-` IdentityFile), host-based authentication, ProxyCommand, KnownHostsCommand.
 */
export const ssh2Lacks = (
  host: OpenSshHost,
  env: Record<string, string | undefined>
): Effect.Effect<Option.Option<string>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (host.certificateFiles.length > 0) return Option.some(`CertificateFile ${host.certificateFiles[0]}`)
    const fs = yield* FileSystem.FileSystem
    const local = yield* localIdentity
    // Debian's own ssh_config says GSSAPIAuthentication yes for every host: it needs OpenSSH only
    // when there is a Kerberos ticket to offer.
    if (host.gssapiAuthentication && (yield* hasKerberosTicket(env, local.uid))) {
      return Option.some("GSSAPIAuthentication yes with a Kerberos ticket cache")
    }
    if (Option.isSome(host.pkcs11Provider)) return Option.some(`PKCS11Provider ${host.pkcs11Provider.value}`)
    if (host.hostbasedAuthentication) return Option.some("HostbasedAuthentication yes")
    if (Option.isSome(host.proxyCommand) && Option.isNone(host.proxyJump)) {
      return Option.some(`ProxyCommand ${host.proxyCommand.value}`)
    }
    if (Option.isSome(host.knownHostsCommand)) return Option.some(`KnownHostsCommand ${host.knownHostsCommand.value}`)
    for (const configured of host.identityFiles) {
      const file = expandIdentityPath(configured, host, local, env)
      if (Option.isNone(file)) continue
      const cert = `${file.value}-cert.pub`
      if (yield* fs.exists(cert).pipe(Effect.orElseSucceed(() => false))) return Option.some(`the certificate ${cert}`)
      const pub = yield* fs.readFileString(`${file.value}.pub`).pipe(Effect.option)
      if (Option.isSome(pub) && pub.value.trimStart().startsWith("sk-")) {
        return Option.some(`the security key ${file.value}`)
      }
    }
    return Option.none()
  })

/** KRB5CCNAME, or MIT Kerberos's default cache file for this uid. */
const hasKerberosTicket = (env: Record<string, string | undefined>, uid: number) =>
  (env["KRB5CCNAME"] ?? "") !== ""
    ? Effect.succeed(true)
    : Effect.flatMap(
      FileSystem.FileSystem,
      (fs) => fs.exists(`/tmp/krb5cc_${uid}`).pipe(Effect.orElseSucceed(() => false))
    )

/** `auto` keeps ssh2 unless the configuration needs OpenSSH. */
export const chooseTransport = (
  setting: SshTransportSetting,
  host: OpenSshHost,
  env: Record<string, string | undefined>
): Effect.Effect<TransportChoice, never, FileSystem.FileSystem> => {
  if (setting !== "auto") return Effect.succeed({ transport: setting, why: `ssh-transport = ${setting}` })
  return ssh2Lacks(host, env).pipe(
    Effect.map(Option.match({
      onNone: () => ({
        transport: "ssh2" as const,
        why: "ssh-transport = auto: nothing in the ssh config needs OpenSSH"
      }),
      onSome: (what) => ({
        transport: "openssh" as const,
        why: `ssh-transport = auto: the ssh config for ${host.host} uses ${what}, which only OpenSSH supports`
      })
    }))
  )
}
