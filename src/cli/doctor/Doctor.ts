/**
 * `nsh doctor [--job] [--json]`: before a first real build, checks in order everything a build
 * needs, each with what was found and, when it fails, what to do: the nsh.conf files, the token,
 * slurmrestd, and with `--job` a tiny real job, SSH to its node by name, Nix on that node and
 * `slurm-state-dir` there. A check that needs an earlier one that failed is skipped.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Duration, Effect, Layer, Option, Schedule, type Scope } from "effect"
import { Config } from "../../config/Config.js"
import { describeSource } from "../../config/ConfigErrors.js"
import { type ConfigEnv, configFiles } from "../../config/ConfigFiles.js"
import { loadSettings } from "../../config/ConfigLive.js"
import { slurmEndpoint } from "../../config/Endpoint.js"
import type { LoadedSettings } from "../../config/Settings.js"
import { JobPath } from "../../job/Submission.js"
import { credentialsOf, tokenSourceOf } from "../../slurm/http/Credentials.js"
import { defaultHttpOptions, makeSlurmHttp } from "../../slurm/http/SlurmHttp.js"
import { probeTls, readCas, trustedCas } from "../../slurm/http/Tls.js"
import type { JobInfo } from "../../slurm/JobSpec.js"
import { offeredVersions } from "../../slurm/Negotiate.js"
import { SlurmApi } from "../../slurm/SlurmApi.js"
import { layerForConfig, SlurmHttpClientLive } from "../../slurm/SlurmApiLive.js"
import type { SshError } from "../../ssh/SshErrors.js"
import { type SshConnection, SshSession } from "../../ssh/SshSession.js"
import { nixStoreCommand } from "../../store/StoreCommands.js"
import { shellCommand, shellQuote } from "../../util/ShellQuote.js"
import { type CheckResult, fail, pass, skip } from "./Check.js"

/** How long `--job` waits for its job to start before the check fails. */
export const JobStartTimeout = Duration.seconds(60)

const decoder = new TextDecoder()

// ---------------------------------------------------------------- nsh.conf

const checkConfig = (env: ConfigEnv) =>
  loadSettings(env).pipe(
    Effect.map((loaded) => {
      const files = loaded.files.length > 0
        ? loaded.files.join(", ")
        : `none found (looked for ${configFiles(env).map((f) => f.path).join(", ")}); every setting is its default`
      return {
        loaded: Option.some(loaded),
        result: pass("nsh.conf", files, loaded.warnings.map((w) => `warning: ${w}`))
      }
    }),
    Effect.catchAll((error) =>
      Effect.succeed({
        loaded: Option.none<LoadedSettings>(),
        result: fail("nsh.conf", error.message, "fix that line; until then nsh declines every build")
      })
    )
  )

// ---------------------------------------------------------------- token

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")

const checkToken = (loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const { settings } = loaded
    const getOne =
      "get one with `scontrol token lifespan=…` and put it in a file named by slurm-jwt-token-file (chmod 600)"
    const read = yield* Effect.either(credentialsOf(settings))
    if (read._tag === "Left") return fail("token", read.left.message, getOne)
    const credentials = read.right
    if (Option.isNone(credentials)) {
      return fail("token", "no Slurm token: none of slurm-jwt-token, slurm-jwt-token-file, SLURM_JWT is set", getOne)
    }
    const { expiresAt, userName } = credentials.value
    const source = loaded.sources.get("slurm-jwt-token") ?? { _tag: "default" as const }
    const where = settings.slurmJwtTokenFile !== "" && source._tag === "file"
      ? `the file ${settings.slurmJwtTokenFile} (slurm-jwt-token-file, ${describeSource(source)})`
      : source._tag === "env"
      ? `the environment variable ${source.variable}`
      : `slurm-jwt-token in ${describeSource(source)}`
    const details = [`found in ${where}`, `user ${userName}`]
    if (settings.slurmJwtTokenFile !== "" && source._tag === "file") {
      const fs = yield* FileSystem.FileSystem
      const mode = yield* fs.stat(settings.slurmJwtTokenFile).pipe(
        Effect.map((info) => info.mode & 0o777),
        Effect.orElseSucceed(() => 0)
      )
      const octal = mode.toString(8).padStart(4, "0")
      if ((mode & 0o044) !== 0) {
        return fail(
          "token",
          `the token file ${settings.slurmJwtTokenFile} is readable by others (mode ${octal})`,
          `chmod 600 ${settings.slurmJwtTokenFile}`,
          details
        )
      }
      details.push(`file mode ${octal}: readable by you only`)
    }
    const now = (yield* Clock.currentTimeMillis) / 1000
    if (expiresAt === undefined) {
      return fail("token", "the token is not a readable JWT (no expiry claim)", getOne, details)
    }
    if (expiresAt <= now) return fail("token", `the token expired at ${iso(expiresAt)}`, getOne, details)
    const minutes = Math.floor((expiresAt - now) / 60)
    return pass("token", `expires at ${iso(expiresAt)} (in ${Math.floor(minutes / 60)} h ${minutes % 60} min)`, details)
  })

// ---------------------------------------------------------------- slurmrestd

/** How the connection is protected: the TLS version and what the certificate was verified against. */
const transport = (loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const endpoint = slurmEndpoint(loaded.settings)
    if (!endpoint.tls) {
      return {
        summary: "plain HTTP",
        details: ["no TLS: the token crosses the network readable (use an https:// slurm-api-url)"]
      }
    }
    const cas = yield* trustedCas(loaded.settings)
    const facts = yield* Effect.either(
      Effect.flatMap(readCas(endpoint.url, cas), (ca) => probeTls(endpoint, ca, cas.description))
    )
    return facts._tag === "Left"
      ? { summary: "TLS", details: [`TLS handshake not described: ${facts.left.message}`] }
      : {
        summary: facts.right.protocol,
        details: [
          `certificate ${facts.right.subject}, issued by ${facts.right.issuer}, valid until ${facts.right.validTo}`,
          `verified against ${cas.description}, for the host name ${endpoint.host}`
        ]
      }
  })

const checkSlurmrestd = (loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const url = slurmEndpoint(loaded.settings).url
    const api = yield* SlurmApi
    const outcome = yield* Effect.either(Effect.zipLeft(api.apiVersion, api.ping))
    if (outcome._tag === "Left") {
      return fail(
        "slurmrestd",
        outcome.left.message,
        outcome.left._tag === "SlurmTlsError"
          ? "fix what the message names (slurm-api-ca-file, the host name in slurm-api-url)"
          : "check slurm-api-url (or slurm-api-host, slurm-api-port), slurm-api-auth and slurm-api-version in nsh.conf, the token, and that slurmrestd runs with rest_auth/jwt"
      )
    }
    const http = yield* makeSlurmHttp(loaded.settings, defaultHttpOptions, tokenSourceOf(loaded)).pipe(
      Effect.provide(SlurmHttpClientLive(loaded.settings))
    )
    const offered = yield* offeredVersions(http)
    const how = loaded.settings.slurmApiVersion === "auto" ? "the newest both speak" : "set by slurm-api-version"
    const { details, summary } = yield* transport(loaded)
    return pass("slurmrestd", `${url} answers and accepts the token (${summary})`, [
      ...details,
      `token sent as ${loaded.settings.slurmApiAuth === "bearer" ? "Authorization: Bearer" : "X-SLURM-USER-TOKEN"}`,
      `API versions offered: ${offered.length > 0 ? offered.join(", ") : "(its /openapi/v3 lists none)"}`,
      `API version chosen: ${outcome.right} (${how})`
    ])
  })

// ---------------------------------------------------------------- a tiny real job

const isStarted = (job: JobInfo) => job.state !== undefined && job.state !== "PENDING" && job.batchHost !== ""

/** Submits a job that does nothing, cancelled when the scope closes; its node once it started. */
const checkJob = (loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const api = yield* SlurmApi
    const submitted = yield* Effect.acquireRelease(
      Effect.either(api.submit({
        name: "nsh-doctor",
        comment: "nsh doctor --job",
        script: "#!/bin/sh\nexit 0\n",
        currentWorkingDirectory: "/tmp",
        environment: { PATH: JobPath },
        standardOutput: "/dev/null",
        timeLimitMinutes: 1,
        extra: loaded.settings.slurmExtraSubmissionParams
      })),
      (outcome) =>
        outcome._tag === "Right"
          ? api.cancel(outcome.right.jobId).pipe(Effect.timeoutOption("10 seconds"), Effect.ignore)
          : Effect.void
    )
    if (submitted._tag === "Left") {
      return {
        node: Option.none<string>(),
        result: fail(
          "job",
          `slurmrestd refused the test job: ${submitted.left.message}`,
          "check slurm-extra-submission-params (partition, account, qos) against what the cluster allows you"
        )
      }
    }
    const jobId = submitted.right.jobId
    const last = yield* api.getJob(jobId).pipe(
      Effect.repeat(
        Schedule.spaced("1 second").pipe(
          Schedule.whileInput((job: JobInfo) =>
            !isStarted(job) && (job.state === undefined || job.state === "PENDING")
          ),
          Schedule.passthrough
        )
      ),
      Effect.timeoutOption(JobStartTimeout),
      Effect.either
    )
    if (last._tag === "Left") {
      return {
        node: Option.none<string>(),
        result: fail("job", `job ${jobId} was queued, then could not be observed: ${last.left.message}`, "run it again")
      }
    }
    if (Option.isNone(last.right)) {
      const seen = yield* Effect.either(api.getJob(jobId))
      const why = seen._tag === "Right" ? ` (${seen.right.rawState}, ${seen.right.reason})` : ""
      return {
        node: Option.none<string>(),
        result: fail(
          "job",
          `job ${jobId} was queued but did not start within ${Duration.format(JobStartTimeout)}${why}`,
          "check the partition and its limits (`sinfo`, `squeue -j ID`); it was cancelled"
        )
      }
    }
    const job = last.right.value
    if (!isStarted(job)) {
      return {
        node: Option.none<string>(),
        result: fail(
          "job",
          `job ${jobId} ended without starting: ${job.rawState} (${job.reason})`,
          "check the partition and `scontrol show job ID`"
        )
      }
    }
    return {
      node: Option.some(job.batchHost),
      result: pass("job", `job ${jobId} was queued and started on ${job.batchHost}`, [`state ${job.rawState}`])
    }
  })

// ---------------------------------------------------------------- on the node

const run = (conn: SshConnection, command: string) =>
  Effect.map(conn.exec(command), (r) => ({
    exitCode: r.exitCode,
    stdout: decoder.decode(r.stdout),
    stderr: decoder.decode(r.stderr).trim()
  }))

const marker = "nsh-doctor-ok"

/** Connects by name as a build would, and checks that the login shell runs a command cleanly. */
const checkSsh = (node: string) =>
  Effect.gen(function*() {
    const ssh = yield* SshSession
    const connected = yield* Effect.either(ssh.connect(node))
    if (connected._tag === "Left") {
      return {
        conn: Option.none<SshConnection>(),
        result: fail(
          "ssh",
          connected.left.message,
          `make \`ssh ${node} true\` work without a prompt: the host key in known_hosts, a key or an agent (nsh reads your ~/.ssh/config)`
        )
      }
    }
    const conn = connected.right
    const shell = yield* Effect.either(run(conn, `printf '${marker}:%s' "$SHELL"`))
    if (shell._tag === "Left") {
      return { conn: Option.none<SshConnection>(), result: fail("ssh", shell.left.message, `try \`ssh ${node} true\``) }
    }
    const match = new RegExp(`^${marker}:(.*)$`).exec(shell.right.stdout)
    if (shell.right.exitCode !== 0 || match === null) {
      return {
        conn: Option.none<SshConnection>(),
        result: fail(
          "ssh",
          `the login shell on ${node} does not run a command cleanly (exit ${shell.right.exitCode}, output ${
            JSON.stringify(shell.right.stdout.slice(0, 200))
          })`,
          "make your shell's start-up files print nothing for non-interactive shells (nsh streams binary data over SSH)"
        )
      }
    }
    return {
      conn: Option.some(conn),
      result: pass("ssh", `connected to ${node} by name: host key known, no prompt`, [
        `login shell ${match[1] || "(SHELL unset)"} runs commands cleanly`
      ])
    }
  })

const checkNix = (conn: SshConnection, loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const { settings } = loaded
    const target = { store: settings.remoteStore, binDir: settings.remoteNixBinDir }
    const version = yield* run(conn, nixStoreCommand(target, ["--version"]))
    const where = settings.remoteNixBinDir === "" ? "the node's PATH" : `remote-nix-bin-dir ${settings.remoteNixBinDir}`
    if (version.exitCode !== 0) {
      return fail(
        "nix",
        `nix-store does not run on ${conn.host} from ${where} (exit ${version.exitCode}: ${version.stderr})`,
        version.exitCode === 127
          ? "install Nix on the nodes, or set remote-nix-bin-dir to a directory holding nix-store there"
          : "check the Nix installation on the node"
      )
    }
    const store = settings.remoteStore
    const writable = store === "auto" || store === "" || store.startsWith("/")
      ? yield* run(
        conn,
        store.startsWith("/")
          ? `test -w ${shellQuote(store)} || { ! test -e ${shellQuote(store)} && test -w "$(dirname ${
            shellQuote(store)
          })"; }`
          : `test -w ${shellQuote(settings.storeDir)} || test -S /nix/var/nix/daemon-socket/socket`
      )
      : undefined
    const storeText = store === "auto" || store === "" ? `the node's ${settings.storeDir}` : `remote-store ${store}`
    if (writable !== undefined && writable.exitCode !== 0) {
      return fail(
        "nix",
        `${storeText} on ${conn.host} is not writable by you, and no Nix daemon socket is there`,
        "run nix-daemon on the nodes, or set remote-store to a store on node-local disk you can write (e.g. /local/store)"
      )
    }
    return pass("nix", `${version.stdout.trim()} on ${conn.host} (from ${where})`, [
      writable === undefined ? `store: ${storeText} (not checked)` : `store: ${storeText} is writable`
    ])
  })

const checkStateDir = (conn: SshConnection, loaded: LoadedSettings) =>
  Effect.gen(function*() {
    const dir = loaded.settings.slurmStateDir
    const found = yield* run(conn, shellCommand(["test", "-d", dir]) + " && " + shellCommand(["test", "-w", dir]))
    return found.exitCode === 0
      ? pass("state-dir", `slurm-state-dir ${dir} exists on ${conn.host} and is writable`)
      : fail(
        "state-dir",
        `slurm-state-dir ${dir} is missing or not writable on ${conn.host}: Slurm cannot open a job's log there`,
        `create it on the nodes (\`ssh ${conn.host} mkdir -p ${
          shellQuote(dir)
        }\`), or point slurm-state-dir at a directory of a shared home`
      )
  })

// ---------------------------------------------------------------- the whole

const NodeChecks = ["ssh", "nix", "state-dir"] as const

/** Runs every check in order and returns their outcomes; never fails. */
export const doctor = (
  env: ConfigEnv,
  options: { readonly job: boolean }
): Effect.Effect<
  ReadonlyArray<CheckResult>,
  never,
  FileSystem.FileSystem | SshSession | Scope.Scope
> =>
  Effect.gen(function*() {
    const results: Array<CheckResult> = []
    const skipRest = (names: ReadonlyArray<string>, why: string) => names.forEach((n) => results.push(skip(n, why)))
    const config = yield* checkConfig(env)
    results.push(config.result)
    if (Option.isNone(config.loaded)) {
      skipRest(["token", "slurmrestd", "job", ...NodeChecks], "needs a valid nsh.conf")
      return results
    }
    const loaded = config.loaded.value
    // A fresh negotiation, not the hook's remembered version: the doctor shows what the server says now.
    const slurm = yield* Layer.build(layerForConfig(defaultHttpOptions).pipe(Layer.provide(Config.fromLoaded(loaded))))
    const token = yield* checkToken(loaded)
    results.push(token)
    const restd = yield* checkSlurmrestd(loaded).pipe(Effect.provide(slurm))
    results.push(restd)
    if (!options.job) {
      skipRest(["job", ...NodeChecks], "not run: add --job to submit a tiny real job and check its node")
      return results
    }
    if (restd.status !== "pass") {
      skipRest(["job", ...NodeChecks], "needs slurmrestd")
      return results
    }
    const job = yield* checkJob(loaded).pipe(Effect.provide(slurm))
    results.push(job.result)
    if (Option.isNone(job.node)) {
      skipRest(NodeChecks, "needs a node from the test job")
      return results
    }
    const ssh = yield* checkSsh(job.node.value)
    results.push(ssh.result)
    if (Option.isNone(ssh.conn)) {
      skipRest(["nix", "state-dir"], "needs SSH to the node")
      return results
    }
    const broken = (name: string) => (e: SshError) => Effect.succeed(fail(name, e.message, "check SSH to the node"))
    results.push(yield* checkNix(ssh.conn.value, loaded).pipe(Effect.catchAll(broken("nix"))))
    results.push(yield* checkStateDir(ssh.conn.value, loaded).pipe(Effect.catchAll(broken("state-dir"))))
    return results
  })
