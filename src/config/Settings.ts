/**
 * The typed nsh settings and the table that documents them.
 *
 * `SettingsTable` is the single source of truth: the parser decodes each value with the
 * entry's codec, `nsh.conf.example` and the README's reference are generated from it.
 */
import { Option, Redacted } from "effect"
import type { JsonObject } from "../util/Json.js"

/** How one setting's text value (as written in nsh.conf) becomes a typed value. */
export type SettingKind =
  | { readonly _tag: "string" }
  | { readonly _tag: "path" }
  | { readonly _tag: "strings" }
  | { readonly _tag: "bool" }
  | { readonly _tag: "int"; readonly min: number; readonly max: number }
  | { readonly _tag: "enum"; readonly values: ReadonlyArray<string> }
  /** `of: "objects"`: every value of the object must be an object itself. */
  | { readonly _tag: "json-object"; readonly of?: "objects" }
  | { readonly _tag: "secret" }

export interface SettingDoc {
  /** The key as written in nsh.conf. */
  readonly key: string
  readonly kind: SettingKind
  /** The default, as it would be written in nsh.conf ("" = empty/unset). */
  readonly default: string
  readonly description: string
}

const s = (key: string, kind: SettingKind, def: string, description: string): SettingDoc => ({
  key,
  kind,
  default: def,
  description
})

/** Every setting nsh.conf understands, in documentation order. */
export const SettingsTable: ReadonlyArray<SettingDoc> = [
  s(
    "job-scheduler",
    { _tag: "enum", values: ["slurm"] },
    "slurm",
    "Which job scheduler to use. Only `slurm` (through slurmrestd) is available."
  ),
  s(
    "system",
    { _tag: "string" },
    "x86_64-linux",
    "The system type of the cluster's nodes. Derivations for another system are not sent to the scheduler."
  ),
  s(
    "system-features",
    { _tag: "strings" },
    "nsh",
    "Features the cluster provides. A derivation is sent to the scheduler only if every feature it requires is listed here. Also passed to the node's `nix-store --realise` as `--option system-features`."
  ),
  s(
    "mandatory-system-features",
    { _tag: "strings" },
    "",
    "Features a derivation must require to be sent to the scheduler (e.g. `nsh`: only derivations that ask for it)."
  ),
  s("store-dir", { _tag: "path" }, "/nix/store", "The logical store directory of the node's store."),
  s(
    "remote-store",
    { _tag: "string" },
    "auto",
    "The store URL the job uses on the node (`auto`, a daemon, or a local path such as `/local/store`, a store on node-local disk)."
  ),
  s(
    "remote-nix-bin-dir",
    { _tag: "path" },
    "",
    "Directory holding `nix-store` on the nodes, when Nix is not on the nodes' PATH (e.g. a static Nix on a shared file system)."
  ),
  s("collect-garbage", { _tag: "bool" }, "false", "Run `nix-store --gc` on the node's store after each build."),
  s(
    "ssh-transport",
    { _tag: "enum", values: ["auto", "ssh2", "openssh"] },
    "auto",
    "How nsh reaches the nodes over SSH: `ssh2` (in-process), `openssh` (the system's `ssh`, one shared connection per build), or `auto`: OpenSSH when your ssh config for the node needs what ssh2 cannot do (a `CertificateFile` or a `-cert.pub` beside an `IdentityFile`, `GSSAPIAuthentication yes` with a Kerberos ticket, `PKCS11Provider`, a FIDO `sk-` key, `HostbasedAuthentication`, `ProxyCommand`, `KnownHostsCommand`), else ssh2."
  ),
  s(
    "slurm-state-dir",
    { _tag: "path" },
    "~/.local/state/nsh",
    "Directory for each job's log file, lease and GC root on the node, and for nsh's job journal on this machine. nsh creates it here; on the nodes it must already exist, because Slurm opens the job's log file there before the job starts: a directory in a home on a shared file system is the usual choice."
  ),
  s(
    "slurm-api-url",
    { _tag: "string" },
    "",
    "URL of slurmrestd, `https://host:port` (TLS) or `http://host:port`, optionally with a path prefix for a proxy (`https://gw.example.org/slurmrestd`); without a port, the scheme's (443, 80). When set it is the endpoint: `slurm-api-host` and `slurm-api-port` may then only repeat its host and port (a contradiction is an error). Empty = `http://` `slurm-api-host`:`slurm-api-port`."
  ),
  s(
    "slurm-api-host",
    { _tag: "string" },
    "localhost",
    "Host name or address of slurmrestd, reached over plain HTTP (for TLS use `slurm-api-url`)."
  ),
  s("slurm-api-port", { _tag: "int", min: 1, max: 65535 }, "6820", "Port of slurmrestd."),
  s(
    "slurm-api-ca-file",
    { _tag: "path" },
    "",
    "PEM file of the CA certificate(s) that slurmrestd's certificate is verified against, instead of the system's CA bundle (`$NIX_SSL_CERT_FILE`, `$SSL_CERT_FILE`, else /etc/ssl/certs/ca-certificates.crt or the distribution's equivalent). Only with an `https://` `slurm-api-url`. nsh never falls back to plain HTTP or skips verification."
  ),
  s(
    "slurm-api-auth",
    { _tag: "enum", values: ["x-slurm", "bearer"] },
    "x-slurm",
    "How the token is sent: `x-slurm` as `X-SLURM-USER-TOKEN` with `X-SLURM-USER-NAME` (every Slurm version), `bearer` as `Authorization: Bearer` (Slurm 23.02 and later; `X-SLURM-USER-NAME` only when `slurm-user-name` is set), for proxies that expect the standard header."
  ),
  s(
    "slurm-api-version",
    {
      _tag: "enum",
      values: ["auto", "v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"]
    },
    "auto",
    "slurmrestd API version. `auto` uses the newest version the server offers."
  ),
  s(
    "slurm-jwt-token",
    { _tag: "secret" },
    "",
    "JWT for slurmrestd (`scontrol token`). Prefer `slurm-jwt-token-file` or the `SLURM_JWT` environment variable: a token in nsh.conf is readable by whoever can read the file."
  ),
  s(
    "slurm-jwt-token-file",
    { _tag: "path" },
    "",
    "File holding the JWT (a leading `SLURM_JWT=` is accepted). Should be readable only by you."
  ),
  s(
    "slurm-user-name",
    { _tag: "string" },
    "",
    "User name sent as `X-SLURM-USER-NAME`. Default: the token's `sun` claim, else the current user."
  ),
  s(
    "slurm-feature-params",
    { _tag: "json-object", of: "objects" },
    "",
    "JSON object mapping a Nix system feature to the job fields a derivation requiring it gets, e.g. {\"cuda\": {\"gres\": \"gpu:1\", \"partition\": \"gpu\"}, \"big-parallel\": {\"cpus_per_task\": 32}}. Merged in this order, later winning: nsh's base job, these (features in alphabetical order), the derivation's `extraSlurmParams`, `slurm-extra-submission-params`. `nsh --dry-run` shows which one set each field."
  ),
  s(
    "slurm-derivation-params",
    { _tag: "strings" },
    "default",
    "The job fields a derivation's `extraSlurmParams` may set; any other field is refused (the build fails, naming the field). `default` stands for the resource and placement fields of the API version in use (CPUs, memory, time, TRES/GRES, partition, qos, constraints, nodes, exclusive/shared, account, comment, environment: see the README), `-KEY` removes a field, any other word adds one: `default reservation` widens the list, `default -account` narrows it. nsh.conf's own params are not restricted."
  ),
  s(
    "slurm-extra-submission-params",
    { _tag: "json-object" },
    "",
    "JSON object merged into the submitted `job` object, overriding the derivation's `extraSlurmParams`. Written in the shape of the slurmrestd API version in use."
  ),
  s(
    "slurm-default-time-limit",
    { _tag: "int", min: 1, max: 525600 },
    "1440",
    "Slurm time limit in minutes for jobs whose Nix `timeout` is 0 (unlimited). Every job gets a time limit."
  ),
  s(
    "job-lease-timeout",
    { _tag: "int", min: 10, max: 86400 },
    "60",
    "Seconds a job waits for its inputs, and for the hook's lease renewal while building, before it gives up. Bounds how long an abandoned job can keep a node busy."
  ),
  s(
    "slurm-outage-timeout",
    { _tag: "int", min: 10, max: 86400 },
    "300",
    "Seconds nsh keeps following a submitted job while slurmrestd is unreachable (a restart, a maintenance), the build's log streaming on meanwhile. After that the build fails with the reason and its job is cancelled."
  ),
  s(
    "max-jobs",
    { _tag: "int", min: 0, max: 100000 },
    "0",
    "Most Slurm jobs (pending + running) nsh keeps at once for this user on this machine; above it nsh answers Nix `postpone`. 0 = unlimited."
  ),
  s(
    "postpone-timeout",
    { _tag: "int", min: 0, max: 86400 },
    "300",
    "Seconds nsh answers Nix `postpone` for a derivation (Nix asks again every `build-poll-interval`) while a passing fault keeps it from submitting: slurmrestd unreachable, timing out or answering 5xx, the watchdog not starting, the token file unreadable or empty. After that the derivation is declined with the reason. 0 = decline at once."
  )
]

/** The typed settings, after decoding and defaulting. */
export interface Settings {
  readonly jobScheduler: "slurm"
  readonly system: string
  readonly systemFeatures: ReadonlyArray<string>
  readonly mandatorySystemFeatures: ReadonlyArray<string>
  readonly storeDir: string
  readonly remoteStore: string
  /** Empty = rely on the node's PATH. */
  readonly remoteNixBinDir: string
  readonly collectGarbage: boolean
  readonly sshTransport: "auto" | "ssh2" | "openssh"
  /** Absolute (a leading `~` is expanded at load time). */
  readonly slurmStateDir: string
  /** As written, "" = unset (use `slurmEndpoint` for the endpoint itself). */
  readonly slurmApiUrl: string
  readonly slurmApiHost: string
  readonly slurmApiPort: number
  /** Empty = the system's CA bundle. */
  readonly slurmApiCaFile: string
  readonly slurmApiAuth: "x-slurm" | "bearer"
  readonly slurmApiVersion: string
  /** The token from slurm-jwt-token, slurm-jwt-token-file or SLURM_JWT, never printed. */
  readonly slurmJwtToken: Option.Option<Redacted.Redacted<string>>
  readonly slurmJwtTokenFile: string
  readonly slurmUserName: string
  /** Feature → job fields (slurm-feature-params). */
  readonly slurmFeatureParams: Readonly<Record<string, JsonObject>>
  readonly slurmExtraSubmissionParams: JsonObject
  /** slurm-derivation-params as written: `default`, `-key` and key words, read in order. */
  readonly slurmDerivationParams: ReadonlyArray<string>
  readonly slurmDefaultTimeLimit: number
  readonly jobLeaseTimeout: number
  /** Seconds of slurmrestd being unreachable while following a job before the build fails. */
  readonly slurmOutageTimeout: number
  readonly maxJobs: number
  /** Seconds of postponing a derivation through passing faults before declining it. */
  readonly postponeTimeout: number
}

/** Where a resolved value came from, for `nsh --dry-run` and error messages. */
export type SettingSource =
  | { readonly _tag: "default" }
  | { readonly _tag: "file"; readonly file: string; readonly line: number }
  | { readonly _tag: "env"; readonly variable: string }

export interface LoadedSettings {
  readonly settings: Settings
  /** Keyed by nsh.conf key (e.g. "slurm-api-host"). */
  readonly sources: ReadonlyMap<string, SettingSource>
  /** Files read, in order (later override earlier). */
  readonly files: ReadonlyArray<string>
  /** Files looked for but absent (see ParsedConf.absent). */
  readonly absent: ReadonlyArray<string>
  /** Non-fatal findings (unknown keys, token file readable by others), already worded for users. */
  readonly warnings: ReadonlyArray<string>
}
