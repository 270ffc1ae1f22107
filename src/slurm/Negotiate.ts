/**
 * Which slurmrestd API version nsh speaks: the configured one, or with `auto` the newest one the
 * server serves, found once per process by pinging newest → oldest (an unserved version answers
 * a plain-text 404 before any other check, so each probe is one cheap round trip).
 */
import { Effect, Either, Option, Schema, SynchronizedRef } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { type ApiVersion, ApiVersions, isApiVersion } from "./dialects/index.js"
import type { SlurmHttp } from "./http/SlurmHttp.js"
import { type SlurmError, SlurmVersionUnsupported } from "./SlurmErrors.js"

const OpenApi = Schema.Struct({ paths: Schema.Record({ key: Schema.String, value: Schema.Unknown }) })

/** The `/slurm/vX` versions an OpenAPI document lists, oldest first. */
export const versionsInSpec = (spec: unknown): ReadonlyArray<string> =>
  Schema.decodeUnknownOption(OpenApi)(spec).pipe(
    Option.map(({ paths }) =>
      [...new Set(Object.keys(paths).flatMap((p) => p.match(/^\/slurm\/(v\d+\.\d+\.\d+)\//)?.[1] ?? []))].sort(
        (a, b) => a.localeCompare(b, "en", { numeric: true })
      )
    ),
    Option.getOrElse((): ReadonlyArray<string> => [])
  )

/** True when the server serves `version` (its ping is anything but a router 404). */
const serves = (http: SlurmHttp, version: ApiVersion): Effect.Effect<boolean, SlurmError> =>
  http.settle(http.send(`ping (${version})`, "GET", `/slurm/${version}/ping`)).pipe(
    Effect.map((reply) => !(reply.status === 404 && reply.json === undefined))
  )

/** What the server offers according to its /openapi/v3 (only read to word an error). */
export const offeredVersions = (http: SlurmHttp): Effect.Effect<ReadonlyArray<string>> =>
  http.settle(http.send("list API versions", "GET", "/openapi/v3")).pipe(
    Effect.map((reply) => versionsInSpec(reply.json)),
    Effect.orElseSucceed(() => [])
  )

/**
 * The newest version nsh speaks that the server serves. All versions are probed at once: every
 * hook process negotiates, and eight round trips in a row would delay its first submission.
 */
export const negotiate = (http: SlurmHttp): Effect.Effect<ApiVersion, SlurmError> =>
  Effect.gen(function*() {
    const newestFirst = [...ApiVersions].reverse()
    const answers = yield* Effect.forEach(newestFirst, (version) => Effect.either(serves(http, version)), {
      concurrency: "unbounded"
    })
    const served = newestFirst.find((_, i) => Either.getOrElse(answers[i]!, () => false))
    if (served !== undefined) return served
    // Nothing served: a probe that failed (unreachable, token rejected) explains why.
    const failure = answers.find(Either.isLeft)
    if (failure !== undefined) return yield* Effect.fail(failure.left)
    return yield* new SlurmVersionUnsupported({
      url: http.url,
      wanted: `any of ${ApiVersions.join(", ")}`,
      offered: yield* offeredVersions(http)
    })
  })

/** The API version in use. */
export interface VersionChoice {
  /** The version to use; with `auto`, negotiated on first use and kept (failures are not kept). */
  readonly current: Effect.Effect<ApiVersion, SlurmError>
  /** Forgets a negotiated version, e.g. after the server stopped serving it (an upgrade). */
  readonly forget: Effect.Effect<void>
}

/**
 * Where negotiated versions are remembered between processes: Nix starts a hook per build, and
 * each would otherwise probe every version again. A wrong memory costs one 404 and a new probe.
 */
export interface VersionMemory {
  readonly recall: Effect.Effect<Option.Option<ApiVersion>>
  readonly remember: (version: ApiVersion) => Effect.Effect<void>
  readonly forget: Effect.Effect<void>
}

/** Remembers nothing (tests, and when no state directory is usable). */
export const noVersionMemory: VersionMemory = {
  recall: Effect.succeed(Option.none()),
  remember: () => Effect.void,
  forget: Effect.void
}

/** Remembers the version in `file` for `maxAgeMs`; failures to read or write only cost a probe. */
export const fileVersionMemory = (file: string, maxAgeMs: number): VersionMemory => ({
  recall: Effect.try(() => {
    if (Date.now() - Fs.statSync(file).mtimeMs > maxAgeMs) return Option.none<ApiVersion>()
    const text = Fs.readFileSync(file, "utf8").trim()
    return isApiVersion(text) ? Option.some(text) : Option.none<ApiVersion>()
  }).pipe(Effect.orElseSucceed(() => Option.none<ApiVersion>())),
  remember: (version) =>
    Effect.try(() => {
      Fs.mkdirSync(Path.dirname(file), { recursive: true })
      const temp = `${file}.${process.pid}.tmp`
      Fs.writeFileSync(temp, `${version}\n`)
      Fs.renameSync(temp, file)
    }).pipe(Effect.ignore),
  forget: Effect.try(() => Fs.rmSync(file, { force: true })).pipe(Effect.ignore)
})

/** The version choice for a `slurm-api-version` setting (`auto` or an explicit version). */
export const makeVersionChoice = (
  http: SlurmHttp,
  configured: string,
  memory: VersionMemory = noVersionMemory
): Effect.Effect<VersionChoice> =>
  Effect.gen(function*() {
    if (configured !== "auto") {
      const fixed: Effect.Effect<ApiVersion, SlurmError> = isApiVersion(configured)
        ? Effect.succeed(configured)
        : Effect.fail(new SlurmVersionUnsupported({ url: http.url, wanted: configured, offered: [...ApiVersions] }))
      return { current: fixed, forget: Effect.void }
    }
    const chosen = yield* SynchronizedRef.make(Option.none<ApiVersion>())
    // modifyEffect serialises callers: concurrent first uses share one negotiation.
    const current = SynchronizedRef.modifyEffect(chosen, (known) =>
      Option.match(known, {
        onSome: (version) => Effect.succeed([version, known] as const),
        onNone: () =>
          memory.recall.pipe(
            Effect.flatMap(Option.match({
              onSome: Effect.succeed,
              onNone: () => Effect.tap(negotiate(http), memory.remember)
            })),
            Effect.map((version) => [version, Option.some(version)] as const)
          )
      }))
    return { current, forget: Effect.zipRight(SynchronizedRef.set(chosen, Option.none()), memory.forget) }
  })
