/**
 * `nsh --dry-run [--json] DRV…`: what nsh would do with each derivation — the routing decision,
 * the resolved settings and where each came from, the endpoint, and the exact request body —
 * without contacting slurmrestd, any node, or writing anything.
 */
import { Console, Effect, Either, Option } from "effect"
import * as path from "node:path"
import { Config } from "../config/Config.js"
import { slurmEndpoint } from "../config/Endpoint.js"
import { type LoadedSettings, type Settings, type SettingSource, SettingsTable } from "../config/Settings.js"
import { defaultBuildOptions } from "../dispatch/BuildOptions.js"
import { NixLog, Verbosity } from "../dispatch/NixLog.js"
import { type Route, route } from "../dispatch/Routing.js"
import { newJobIds } from "../job/JobTag.js"
import { type ExtraSource, jobSpecFor, mergedExtras, type SubmissionError } from "../job/Submission.js"
import { trustedCas } from "../slurm/http/Tls.js"
import { SlurmApi } from "../slurm/SlurmApi.js"
import { renderVersion, SlurmApiRecording } from "../slurm/SlurmApiRecording.js"
import { requiredSystemFeatures } from "../store/Derivation.js"
import { NixStore } from "../store/NixStore.js"
import { DerivationError, type StoreError } from "../store/StoreErrors.js"
import { isJsonObject } from "../util/Json.js"
import { ExitCode } from "./ExitCodes.js"

/** What can stop a dry run; `dryRunExitCode` maps each to the process exit code. */
export type DryRunError = StoreError | SubmissionError

/** Exit code for a failed dry run: 2 when the path is not a readable derivation (a usage error), else 1. */
export const dryRunExitCode = (error: DryRunError): number =>
  error._tag === "DerivationError" ? ExitCode.usage : ExitCode.failure

/** Shown in place of the job's nonce: it is a secret of each real submission. */
export const NoncePlaceholder = "<nonce>"

/** One resolved setting as shown to the user. */
export interface ShownSetting {
  readonly key: string
  /** The typed value; the token is replaced by `<redacted: from …>`. */
  readonly value: unknown
  /** `file:line`, `default`, or `env VAR`. */
  readonly source: string
}

/** Everything a dry run shows; `--json` prints it as is. */
export interface DryRunReport {
  readonly drvPath: string
  /** The path given on the command line, when it was an output whose deriver is shown. */
  readonly givenPath?: string
  readonly decision: { readonly accept: true } | { readonly accept: false; readonly reason: string }
  readonly settings: ReadonlyArray<ShownSetting>
  readonly configFiles: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
  readonly apiVersion: string
  readonly apiVersionNote: string | undefined
  readonly endpoint: string
  /** How requests reach it: TLS and the CAs verified against, or plain HTTP; the token's header. */
  readonly transport: string
  /** The submission's tag (fresh for each run, as for a real submission). */
  readonly tag: string
  /** The exact JSON body of the submit request, the nonce replaced by NoncePlaceholder. */
  readonly request: unknown
  /** The job script from the body, for reading. */
  readonly script: string
  /** Each field of the body's `job` object and who set it (nsh, a feature's params, an extra). */
  readonly jobFieldSources: Readonly<Record<string, string>>
}

const describeExtraSource = (source: ExtraSource | undefined): string => {
  switch (source?._tag) {
    case undefined:
      return "nsh"
    case "feature":
      return `slurm-feature-params "${source.feature}"`
    case "derivation":
      return "the derivation's extraSlurmParams"
    case "conf":
      return "slurm-extra-submission-params"
  }
}

/** nsh's own fields that extras only add to (Submission.ts). */
const addedTo: Readonly<Record<string, string>> = { environment: "nsh, with entries from", comment: "nsh's tag, then" }

/** Who set each field of the request's `job` object: a field not in the extras is nsh's own. */
const jobFieldSources = (request: unknown, sources: Readonly<Record<string, ExtraSource>>) => {
  const job = isJsonObject(request) && isJsonObject(request["job"]) ? request["job"] : {}
  return Object.fromEntries(
    Object.keys(job).map((key) => {
      const source = sources[key]
      const base = addedTo[key]
      return [
        key,
        source !== undefined && base !== undefined
          ? `${base} ${describeExtraSource(source)}`
          : describeExtraSource(source)
      ]
    })
  )
}

const describeSource = (source: SettingSource | undefined): string => {
  switch (source?._tag) {
    case "file":
      return `${source.file}:${source.line}`
    case "env":
      return `env ${source.variable}`
    case undefined:
    case "default":
      return "default"
  }
}

const sameSource = (a: SettingSource | undefined, b: SettingSource | undefined): boolean =>
  JSON.stringify(a) === JSON.stringify(b)

// Settings fields are the nsh.conf keys in camelCase (slurm-api-host -> slurmApiHost).
const fieldOf = (key: string) => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Settings

const tokenShown = (loaded: LoadedSettings): string => {
  if (Option.isNone(loaded.settings.slurmJwtToken)) return "<none>"
  const source = loaded.sources.get("slurm-jwt-token")
  const file = loaded.settings.slurmJwtTokenFile
  return file !== "" && sameSource(source, loaded.sources.get("slurm-jwt-token-file"))
    ? `<redacted: from the file ${file}>`
    : `<redacted: from ${describeSource(source)}>`
}

/** Every setting with its value and source; the token only as where it came from. */
export const shownSettings = (loaded: LoadedSettings): ReadonlyArray<ShownSetting> =>
  SettingsTable.map(({ key, kind }) => ({
    key,
    value: kind._tag === "secret" ? tokenShown(loaded) : loaded.settings[fieldOf(key)],
    source: describeSource(loaded.sources.get(key))
  }))

const decisionOf = (r: Route): DryRunReport["decision"] =>
  r._tag === "Accept" ? { accept: true } : { accept: false, reason: r.reason }

/**
 * The .drv to show for a path given on the command line: a .drv as is, an output path (or any
 * store path) as the derivation the local store records as its deriver.
 */
export const drvPathFor = (given: string): Effect.Effect<string, StoreError, NixStore> => {
  const resolved = path.resolve(given)
  if (resolved.endsWith(".drv")) return Effect.succeed(resolved)
  const notDerivation = (why: string) =>
    new DerivationError({
      drvPath: resolved,
      reason:
        `it is not a derivation (a .drv), and ${why}; pass the .drv, e.g. from nix-instantiate or nix path-info --derivation`
    })
  return Effect.flatMap(NixStore, (store) => store.deriverOf(resolved)).pipe(
    Effect.catchAll((error) => Effect.fail(notDerivation(`Nix cannot tell what built it (${error.message})`))),
    Effect.flatMap(Option.match({
      onNone: () => Effect.fail(notDerivation("the store records no deriver for it")),
      onSome: Effect.succeed
    }))
  )
}

/** Works out the report for one derivation; reads the drv and the settings, sends nothing. */
export const dryRunReport = (given: string): Effect.Effect<DryRunReport, DryRunError, Config | NixStore> =>
  Effect.gen(function*() {
    const loaded = yield* Config
    const store = yield* NixStore
    const drvPath = yield* drvPathFor(given)
    const drv = yield* store.readDerivation(drvPath)
    const decision = route(
      {
        amWilling: true,
        neededSystem: drv.system,
        drvPath: drv.drvPath,
        requiredFeatures: requiredSystemFeatures(drv)
      },
      loaded.settings
    )
    const { tag } = yield* newJobIds
    const { version, note } = renderVersion(loaded.settings.slurmApiVersion)
    // Nix's limits are unknown outside a build; the defaults (none) apply, as for `nix-build` without options.
    const spec = yield* jobSpecFor(drv, loaded.settings, defaultBuildOptions, { tag, nonce: NoncePlaceholder }, version)
    const { sources } = yield* mergedExtras(drv, loaded.settings, version)
    const api = yield* SlurmApi
    const request = yield* api.renderSubmission(spec).pipe(Effect.orDie)
    return {
      drvPath: drv.drvPath,
      ...(drv.drvPath === path.resolve(given) ? {} : { givenPath: path.resolve(given) }),
      decision: decisionOf(decision),
      settings: shownSettings(loaded),
      configFiles: loaded.files,
      warnings: loaded.warnings,
      apiVersion: version,
      apiVersionNote: note,
      endpoint: `${slurmEndpoint(loaded.settings).url}/slurm/${version}/job/submit`,
      transport: yield* transportOf(loaded.settings),
      tag,
      request,
      script: spec.script,
      jobFieldSources: jobFieldSources(request, sources)
    }
  }).pipe(Effect.provide(SlurmApiRecording))

const transportOf = (settings: Settings) =>
  Effect.map(trustedCas(settings), (cas) => {
    const token = settings.slurmApiAuth === "bearer" ? "Authorization: Bearer" : "X-SLURM-USER-TOKEN"
    return slurmEndpoint(settings).tls
      ? `TLS, the certificate verified against ${cas.description}; the token as ${token}`
      : `plain HTTP (no TLS); the token as ${token}`
  })

const textValue = (value: unknown): string =>
  typeof value === "string"
    ? value
    : Array.isArray(value)
    ? value.join(" ")
    : typeof value === "object" && value !== null
    ? JSON.stringify(value)
    : String(value)

const indent = (text: string) => text.replace(/^(?=.)/gm, "  ")

/** The report for people. */
export const renderText = (report: DryRunReport): string => {
  const width = Math.max(...report.settings.map((s) => s.key.length))
  const settings = report.settings.map((s) => `${s.key.padEnd(width)} = ${textValue(s.value)}   (${s.source})`).join(
    "\n"
  )
  const fieldWidth = Math.max(0, ...Object.keys(report.jobFieldSources).map((k) => k.length))
  const fieldSources = Object.entries(report.jobFieldSources).map(([key, by]) => `${key.padEnd(fieldWidth)}  ${by}`)
    .join("\n")
  const decision = report.decision.accept
    ? "accept: nsh would submit it as a Slurm job"
    : `decline: ${report.decision.reason}; Nix would build it locally or on its other builders`
  return [
    `nsh dry run for ${report.drvPath} (nothing was sent or written)`,
    ...(report.givenPath === undefined ? [] : [`(the derivation that built ${report.givenPath})`]),
    "",
    `Decision: ${decision}`,
    "",
    "Settings:",
    indent(settings),
    `Config files: ${report.configFiles.length > 0 ? report.configFiles.join(", ") : "none (all defaults)"}`,
    ...report.warnings.map((w) => `warning: ${w}`),
    "",
    `API version: ${report.apiVersion}${report.apiVersionNote === undefined ? "" : ` (${report.apiVersionNote})`}`,
    `Endpoint: POST ${report.endpoint}`,
    `Transport: ${report.transport}`,
    `Job tag: ${report.tag} (new for each submission; the nonce is secret and shown as ${NoncePlaceholder})`,
    "",
    "Request body:",
    JSON.stringify(report.request, null, 2),
    "",
    "Who set each job field (later wins: nsh < slurm-feature-params < extraSlurmParams < slurm-extra-submission-params):",
    indent(fieldSources),
    "",
    "Job script:",
    report.script
  ].join("\n")
}

/**
 * Runs `nsh --dry-run` on each path: prints the reports (text, or one JSON document: an object
 * for one path, an array for several) and each failure on stderr; returns the exit code, the
 * highest of the failures' (0 when every path had a report).
 */
export const dryRun = (
  paths: ReadonlyArray<string>,
  options: { readonly json: boolean }
): Effect.Effect<number, never, Config | NixStore | NixLog> =>
  Effect.gen(function*() {
    const log = yield* NixLog
    const outcomes = yield* Effect.forEach(paths, (given) => Effect.either(dryRunReport(given)))
    const reports = outcomes.flatMap((o) => (Either.isRight(o) ? [o.right] : []))
    for (const outcome of outcomes) {
      if (Either.isLeft(outcome)) yield* log.log(Verbosity.error, `nsh --dry-run: ${outcome.left.message}`)
    }
    if (reports.length > 0) {
      yield* Console.log(
        options.json
          ? JSON.stringify(paths.length === 1 ? reports[0] : reports, null, 2)
          : reports.map(renderText).join("\n\n")
      )
    }
    return Math.max(0, ...outcomes.flatMap((o) => (Either.isLeft(o) ? [dryRunExitCode(o.left)] : [])))
  })
