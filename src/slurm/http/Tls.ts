/**
 * TLS to slurmrestd: which CA certificates its certificate is checked against (slurm-api-ca-file,
 * else the system's bundle, as Nix finds it), what a failed handshake means for the user, and for
 * `nsh doctor` what a handshake agreed on. Verification is never turned off.
 */
import { Duration, Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as NodeTls from "node:tls"
import { type SlurmEndpoint } from "../../config/Endpoint.js"
import type { Settings } from "../../config/Settings.js"
import { SlurmTlsError } from "../SlurmErrors.js"

/** Where the trusted CA certificates come from. */
export interface TrustedCas {
  /** In words, for messages: "slurm-api-ca-file /etc/nsh/ca.pem". */
  readonly description: string
  /** undefined: none found on this system, so Node's built-in list. */
  readonly file: string | undefined
}

// Nix's own order (NIX_SSL_CERT_FILE, SSL_CERT_FILE), then Debian/NixOS, Fedora/RHEL, SUSE, Alpine.
const systemBundles = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/ca-bundle.pem",
  "/etc/ssl/cert.pem"
]

/** The CA certificates slurmrestd's certificate is verified against. */
export const trustedCas = (settings: Pick<Settings, "slurmApiCaFile">): Effect.Effect<TrustedCas> =>
  Effect.sync(() => {
    if (settings.slurmApiCaFile !== "") {
      return { description: `slurm-api-ca-file ${settings.slurmApiCaFile}`, file: settings.slurmApiCaFile }
    }
    for (const variable of ["NIX_SSL_CERT_FILE", "SSL_CERT_FILE"]) {
      const file = process.env[variable]
      if (file !== undefined && file !== "") return { description: `the CA bundle $${variable} (${file})`, file }
    }
    const found = systemBundles.find((file) => Fs.existsSync(file))
    return found === undefined
      ? { description: "Node.js's built-in CA list (no system CA bundle found)", file: undefined }
      : { description: `the system CA bundle ${found}`, file: found }
  })

/** The PEM text of `cas` (undefined for Node's built-in list). */
export const readCas = (url: string, cas: TrustedCas): Effect.Effect<string | undefined, SlurmTlsError> => {
  const file = cas.file
  if (file === undefined) return Effect.succeed(undefined)
  const unusable = (reason: string) =>
    new SlurmTlsError({
      url,
      reason: `${cas.description} ${reason}`,
      fix: "point slurm-api-ca-file at the PEM file of the CA that signed slurmrestd's certificate"
    })
  return Effect.try({
    try: () => Fs.readFileSync(file, "utf8"),
    catch: (e) =>
      unusable(
        (e as NodeJS.ErrnoException).code === "ENOENT"
          ? "does not exist"
          : `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`
      )
  }).pipe(
    Effect.filterOrFail(
      (pem) => pem.includes("-----BEGIN CERTIFICATE-----"),
      () => unusable("holds no PEM certificate")
    )
  )
}

// OpenSSL's verdicts on the chain, and Node's on the name (node:tls and X509_V_ERR_*).
const untrusted = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA"
])
const expired = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"])
const notTls = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "EPROTO"])

/** The error a failed TLS handshake stands for, or undefined when `cause` is no TLS failure. */
export const describeTlsFailure = (
  endpoint: SlurmEndpoint,
  cas: string,
  cause: { readonly code?: unknown; readonly message?: unknown } | undefined
): SlurmTlsError | undefined => {
  const code = typeof cause?.code === "string" ? cause.code : ""
  const detail = typeof cause?.message === "string" ? cause.message : code
  const url = endpoint.url
  if (untrusted.has(code)) {
    return new SlurmTlsError({
      url,
      reason: `its certificate is not signed by a CA in ${cas} (${detail})`,
      fix: "set slurm-api-ca-file to the PEM file of the CA that signed it (ask the site for its CA certificate)"
    })
  }
  if (expired.has(code)) {
    return new SlurmTlsError({
      url,
      reason: `its certificate is outside its validity period (${detail})`,
      fix: "the server's certificate must be renewed (or this machine's clock is wrong)"
    })
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new SlurmTlsError({
      url,
      reason: `its certificate is not for ${endpoint.host} (${detail})`,
      fix: "use a host name the certificate names in slurm-api-url"
    })
  }
  if (notTls.has(code) && endpoint.tls) {
    return new SlurmTlsError({
      url,
      reason: `the server does not speak TLS on port ${endpoint.port} (${detail})`,
      fix: "use the port of the TLS endpoint in slurm-api-url (or http:// if the site serves slurmrestd only in plain)"
    })
  }
  return undefined
}

/** What a TLS handshake with slurmrestd agreed on, for `nsh doctor`. */
export interface TlsFacts {
  /** e.g. TLSv1.3 */
  readonly protocol: string
  readonly subject: string
  readonly issuer: string
  readonly validTo: string
}

const name = (fields: NodeTls.PeerCertificate["subject"] | undefined) =>
  fields === undefined ? "?" : Object.entries(fields).map(([k, v]) => `${k}=${String(v)}`).join(", ")

/** One handshake with the endpoint, verified as requests are (CA and host name). */
export const probeTls = (endpoint: SlurmEndpoint, ca: string | undefined, cas: string) =>
  Effect.async<TlsFacts, SlurmTlsError>((resume) => {
    const socket = NodeTls.connect({
      host: endpoint.host,
      port: endpoint.port,
      ...(Net.isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
      ...(ca === undefined ? {} : { ca })
    })
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate()
      resume(Effect.succeed({
        protocol: socket.getProtocol() ?? "?",
        subject: name(cert.subject),
        issuer: name(cert.issuer),
        validTo: cert.valid_to
      }))
      socket.end()
    })
    socket.once("error", (error) =>
      resume(Effect.fail(
        describeTlsFailure(endpoint, cas, error as NodeJS.ErrnoException) ??
          new SlurmTlsError({ url: endpoint.url, reason: error.message, fix: "check slurm-api-url" })
      )))
    return Effect.sync(() => socket.destroy())
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.seconds(10),
      onTimeout: () =>
        new SlurmTlsError({ url: endpoint.url, reason: "no TLS handshake within 10 s", fix: "check slurm-api-url" })
    })
  )
