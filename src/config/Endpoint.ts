/**
 * Where slurmrestd is: `slurm-api-url`, else `http://slurm-api-host:slurm-api-port`. Derived in
 * this one place, so the hook, its watchdog, `--dry-run` and `nsh doctor` name the same URL; and
 * checked once at load time, so a URL that contradicts host/port, or a CA file for plain HTTP, is
 * an nsh.conf error naming the line rather than a surprise at the first request.
 */
import { Either } from "effect"
import { describeSource, NshConfError } from "./ConfigErrors.js"
import type { Settings, SettingSource } from "./Settings.js"

/** slurmrestd's address as nsh uses it. */
export interface SlurmEndpoint {
  /** The base URL without a trailing slash (`https://host:port[/prefix]`); API paths are appended. */
  readonly url: string
  readonly tls: boolean
  /** Without IPv6 brackets: what the certificate must name. */
  readonly host: string
  readonly port: number
}

const bare = (host: string) => host.replace(/^\[(.*)\]$/, "$1").toLowerCase()

/** Parses a `slurm-api-url` value; Left says what is wrong with it. */
export const parseApiUrl = (raw: string): Either.Either<SlurmEndpoint, string> =>
  Either.try(() => new URL(raw)).pipe(
    Either.mapLeft(() => "not a URL"),
    Either.flatMap((url) => {
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        return Either.left(`the scheme must be https:// or http://, not ${url.protocol}//`)
      }
      if (url.username !== "" || url.password !== "") {
        return Either.left("a user or password in the URL is never sent: the token goes in slurm-jwt-token-file")
      }
      if (url.search !== "" || url.hash !== "") return Either.left("a query or fragment has no place in it")
      if (url.hostname === "") return Either.left("it names no host")
      const tls = url.protocol === "https:"
      return Either.right({
        url: `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`,
        tls,
        host: bare(url.hostname),
        port: url.port === "" ? (tls ? 443 : 80) : Number(url.port)
      })
    })
  )

/** The endpoint of these settings (they were checked by `checkEndpoint` when loaded). */
export const slurmEndpoint = (
  settings: Pick<Settings, "slurmApiUrl" | "slurmApiHost" | "slurmApiPort">
): SlurmEndpoint => {
  const fromHost = (): SlurmEndpoint => {
    const host = settings.slurmApiHost.includes(":") ? `[${settings.slurmApiHost}]` : settings.slurmApiHost
    return {
      url: `http://${host}:${settings.slurmApiPort}`,
      tls: false,
      host: bare(settings.slurmApiHost),
      port: settings.slurmApiPort
    }
  }
  return settings.slurmApiUrl === "" ? fromHost() : Either.getOrElse(parseApiUrl(settings.slurmApiUrl), fromHost)
}

/**
 * The endpoint settings agree with each other: `slurm-api-url` is well-formed, host and port
 * (when set at all) repeat its own, and `slurm-api-ca-file` is set only for an https:// URL.
 */
export const checkEndpoint = (
  settings: Settings,
  sources: ReadonlyMap<string, SettingSource>
): Either.Either<void, NshConfError> => {
  const sourceOf = (key: string): SettingSource => sources.get(key) ?? { _tag: "default" }
  const isSet = (key: string) => sourceOf(key)._tag !== "default"
  const urlSource = sourceOf("slurm-api-url")
  const endpoint = settings.slurmApiUrl === "" ? Either.right(slurmEndpoint(settings)) : Either.mapLeft(
    parseApiUrl(settings.slurmApiUrl),
    (why) =>
      NshConfError.at(
        urlSource,
        "slurm-api-url",
        `expected a URL such as https://slurm-rest.example.org:6820, got '${settings.slurmApiUrl}' (${why})`
      )
  )
  return Either.flatMap(endpoint, (endpoint): Either.Either<void, NshConfError> => {
    const contradiction = (key: string, value: string, urlHas: string) =>
      NshConfError.at(
        sourceOf(key),
        key,
        `${value} contradicts slurm-api-url = ${settings.slurmApiUrl} (${
          describeSource(urlSource)
        }), whose ${urlHas}: name the endpoint once, in slurm-api-url (remove ${key}), or make them agree`
      )
    if (settings.slurmApiUrl !== "" && isSet("slurm-api-host") && bare(settings.slurmApiHost) !== endpoint.host) {
      return Either.left(contradiction("slurm-api-host", `'${settings.slurmApiHost}'`, `host is ${endpoint.host}`))
    }
    if (settings.slurmApiUrl !== "" && isSet("slurm-api-port") && settings.slurmApiPort !== endpoint.port) {
      return Either.left(contradiction("slurm-api-port", `${settings.slurmApiPort}`, `port is ${endpoint.port}`))
    }
    if (settings.slurmApiCaFile !== "" && !endpoint.tls) {
      return Either.left(
        NshConfError.at(
          sourceOf("slurm-api-ca-file"),
          "slurm-api-ca-file",
          `a CA file is for TLS, but slurmrestd is reached over plain HTTP (${endpoint.url}): set slurm-api-url = https://…, or remove slurm-api-ca-file`
        )
      )
    }
    return Either.void
  })
}
