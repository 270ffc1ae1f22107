/**
 * SlurmApi over slurmrestd's REST API, in the dialect of the negotiated API version.
 */
import { HttpClient, HttpClientError } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Data, Effect, Either, Layer, Option } from "effect"
import * as Os from "node:os"
import { Config } from "../config/Config.js"
import { slurmEndpoint } from "../config/Endpoint.js"
import type { Settings } from "../config/Settings.js"
import { type ApiVersion, dialectFor, jobsOf, ownJobsOf, pingsOf, submitBody } from "./dialects/index.js"
import { tokenSourceOf } from "./http/Credentials.js"
import {
  defaultHttpOptions,
  makeSlurmHttp,
  type Method,
  type Reply,
  type SlurmHttpOptions,
  Transient
} from "./http/SlurmHttp.js"
import { readCas, trustedCas } from "./http/Tls.js"
import type { JobInfo, JobSpec } from "./JobSpec.js"
import { fileVersionMemory, makeVersionChoice, noVersionMemory, type VersionMemory } from "./Negotiate.js"
import { SlurmApi, type SlurmApiService, type SubmittedJob } from "./SlurmApi.js"
import {
  type SlurmError,
  SlurmJobNotFound,
  SlurmProtocolError,
  SlurmRequestError,
  SlurmSubmitUnanswered,
  SlurmUnreachable,
  SlurmVersionUnsupported
} from "./SlurmErrors.js"
import { checkSubmission } from "./SubmitChecks.js"

// 2017 ESLURM_INVALID_JOB_ID (unknown or purged), 2021 ESLURM_ALREADY_DONE.
const InvalidJobId = 2017
const AlreadyDone = 2021

/** The lookup of a submit whose outcome was unclear failed: resubmitting could queue a twin. */
class LookupFailed extends Data.TaggedError("LookupFailed")<{ readonly error: SlurmError }> {}

/** A submit whose answer was lost has not shown up (yet) in the job list. */
class NotFoundYet extends Data.TaggedError("NotFoundYet")<{}> {}

const isTransient = (e: unknown): e is Transient => e instanceof Transient

const refused = (operation: string, reply: Reply, jobId?: number) =>
  new SlurmRequestError({
    operation,
    status: reply.status,
    errors: reply.errors.length > 0 ? reply.errors.map((e) => e.text) : [reply.text.trim() || `HTTP ${reply.status}`],
    ...(jobId === undefined ? {} : { jobId })
  })

/** Builds the service from Config on the given HttpClient. */
export const makeSlurmApi = (
  options: SlurmHttpOptions = defaultHttpOptions,
  memory: (settings: Settings) => VersionMemory = () => noVersionMemory
): Effect.Effect<SlurmApiService, never, Config | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const loaded = yield* Config
    const { settings } = loaded
    const http = yield* makeSlurmHttp(settings, options, tokenSourceOf(loaded))
    const versions = yield* makeVersionChoice(http, settings.slurmApiVersion, memory(settings))

    // A plain-text 404 is slurmrestd's router: the version went away (an upgrade), so negotiate anew next time.
    const routed = (version: ApiVersion) => (reply: Reply): Effect.Effect<Reply, SlurmError> =>
      reply.status === 404 && reply.json === undefined
        ? Effect.zipRight(
          versions.forget,
          Effect.fail(new SlurmVersionUnsupported({ url: http.url, wanted: version, offered: [] }))
        )
        : Effect.succeed(reply)

    /** One idempotent request, retried while transient. */
    const request = (operation: string, method: Exclude<Method, "POST">, path: string) =>
      Effect.flatMap(versions.current, (version) =>
        http.settle(http.send(operation, method, `/slurm/${version}${path}`).pipe(Effect.flatMap(routed(version)))))

    const decoded = <A>(operation: string, result: Either.Either<A, string>) =>
      Either.match(result, {
        onLeft: (detail) =>
          Effect.fail(new SlurmProtocolError({ operation, detail })),
        onRight: (value) =>
          Effect.succeed(value)
      })

    const ping = Effect.gen(function*() {
      const reply = yield* request("ping", "GET", "/ping")
      if (reply.status !== 200 || reply.errors.length > 0) return yield* refused("ping", reply)
      const pings = yield* decoded("ping", pingsOf(reply.json))
      if (pings.length > 0 && !pings.some((p) => p.up)) {
        // Since 24.11 a rejected token reads the same (HTTP 200, every controller DOWN): slurmctld
        // refuses the ping RPC. GET /diag names it (HTTP 511, error 1007); one try, only here.
        const version = yield* versions.current
        yield* http.send("ping", "GET", `/slurm/${version}/diag`).pipe(
          Effect.catchAll((error) => error._tag === "SlurmAuthError" ? Effect.fail(error) : Effect.void)
        )
        return yield* new SlurmUnreachable({
          url: http.url,
          reason: `slurmrestd answers, but its slurmctld (${pings.map((p) => p.host).join(", ")}) does not`
        })
      }
    })

    const getJob = (jobId: number) =>
      Effect.gen(function*() {
        const operation = `get job ${jobId}`
        const reply = yield* request(operation, "GET", `/job/${jobId}`)
        if (reply.status === 404 || reply.errors.some((e) => e.code === InvalidJobId)) {
          return yield* new SlurmJobNotFound({ jobId })
        }
        if (reply.status !== 200 || reply.errors.length > 0) return yield* refused(operation, reply)
        const jobs = yield* decoded(operation, jobsOf(reply.json))
        const job = jobs.find((j) => j.jobId === jobId) ?? jobs[0]
        return job ?? (yield* new SlurmJobNotFound({ jobId }))
      })

    const listJobs = Effect.gen(function*() {
      const reply = yield* request("list jobs", "GET", "/jobs")
      if (reply.status !== 200 || reply.errors.length > 0) return yield* refused("list jobs", reply)
      return yield* decoded("list jobs", ownJobsOf(reply.json, reply.userName))
    })

    const cancel = (jobId: number) =>
      Effect.gen(function*() {
        const operation = `cancel job ${jobId}`
        const version = yield* versions.current
        const reply = yield* request(operation, "DELETE", `/job/${jobId}`)
        const reported = dialectFor(version).cancelErrors(reply.json)
        // Cancelling a job that already ended, or was purged, leaves nothing to do.
        const failures = reported.filter((e) => e.code !== InvalidJobId && e.code !== AlreadyDone)
        const answered = reply.status === 200 || reply.status === 404 || reported.length > 0
        if (failures.length > 0 || !answered) return yield* refused(operation, { ...reply, errors: failures })
      })

    // A job queued despite errors would pend forever (lab 41/42): take it back before failing.
    const takeBack = (jobId: number) => cancel(jobId).pipe(Effect.timeoutOption("15 seconds"), Effect.ignore)

    const interpretSubmit = (version: ApiVersion, reply: Reply): Effect.Effect<SubmittedJob, SlurmError> => {
      const { jobId, errors, warnings } = dialectFor(version).submitReply(reply.json)
      if (jobId !== undefined && reply.status === 200 && errors.length === 0) return Effect.succeed({ jobId, warnings })
      if (jobId !== undefined) {
        return Effect.zipRight(
          takeBack(jobId),
          Effect.fail(
            new SlurmRequestError({
              operation: "submit",
              status: reply.status,
              errors: [
                ...errors.map((e) => e.text),
                `slurmctld queued it anyway as job ${jobId}, which nsh cancelled`
              ],
              jobId
            })
          )
        )
      }
      if (reply.status === 200 && errors.length === 0) {
        return Effect.fail(new SlurmProtocolError({ operation: "submit", detail: "HTTP 200 without a job_id" }))
      }
      return Effect.fail(refused("submit", reply))
    }

    const findByComment = (comment: string): Effect.Effect<Option.Option<JobInfo>, SlurmError> =>
      Effect.map(listJobs, (jobs) =>
        Option.fromNullable(
          jobs.filter((j) => j.comment === comment).sort((a, b) => b.jobId - a.jobId)[0]
        ))

    // A submit whose answer was lost may have queued its job, maybe only a moment later: look for it
    // for a while, and never send it again (that could queue a twin with the same tag and log). If it
    // is not found, the submit fails as a passing fault, and the submission's watchdog, which keeps
    // looking for the tag once the hook lets go of it, cancels a job that lands late.
    const lostAnswer = (spec: JobSpec, transient: Transient): Effect.Effect<SubmittedJob, LookupFailed | Transient> =>
      findByComment(spec.comment).pipe(
        Effect.mapError((error) => new LookupFailed({ error })),
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new NotFoundYet()),
          onSome: (job): Effect.Effect<SubmittedJob> =>
            Effect.succeed({
              jobId: job.jobId,
              warnings: [`the submit answer was lost (${transient.error.message}); found the job by its comment`]
            })
        })),
        Effect.retry({ schedule: options.retrySchedule, while: (e) => e._tag === "NotFoundYet" }),
        Effect.catchTag("NotFoundYet", () => Effect.fail(transient))
      )

    const submit = (spec: JobSpec) =>
      Effect.gen(function*() {
        yield* checkSubmission(spec)
        const version = yield* versions.current
        const attempt = http.send("submit", "POST", `/slurm/${version}/job/submit`, submitBody(version, spec)).pipe(
          Effect.flatMap(routed(version)),
          Effect.flatMap((reply) => interpretSubmit(version, reply)),
          Effect.catchIf(isTransient, (transient) =>
            transient.sent ? lostAnswer(spec, transient) : Effect.fail(transient))
        )
        return yield* attempt.pipe(
          // Only a request that certainly never reached slurmrestd is sent again.
          Effect.retry({
            schedule: options.retrySchedule,
            while: (e) =>
              isTransient(e) && !e.sent
          }),
          Effect.catchTags({
            Transient: (transient) =>
              transient.sent
                ? Effect.flatMap(Effect.flip(http.giveUp(transient)), (error) =>
                  Effect.fail(new SlurmSubmitUnanswered({ error })))
                : http.giveUp(transient),
            LookupFailed: (e) =>
              Effect.fail(new SlurmSubmitUnanswered({ error: e.error }))
          })
        )
      })

    return SlurmApi.of({
      apiVersion: versions.current,
      renderSubmission: (spec) =>
        Effect.map(versions.current, (version) => submitBody(version, spec)),
      ping,
      submit,
      getJob,
      cancel,
      listJobs
    })
  })

/** SlurmApi on a caller-provided HttpClient (tests count or fake requests with it). */
export const layerWith = (
  options: SlurmHttpOptions = defaultHttpOptions,
  memory: (settings: Settings) => VersionMemory = () => noVersionMemory
): Layer.Layer<SlurmApi, never, Config | HttpClient.HttpClient> => Layer.effect(SlurmApi, makeSlurmApi(options, memory))

/** The negotiated version, remembered for an hour in the user's cache directory, per slurmrestd. */
const cachedMemory = (settings: Settings): VersionMemory => {
  const { url } = slurmEndpoint(settings)
  // http://localhost:6820 keeps the name it had before slurm-api-url: slurmrestd-localhost-6820.
  const name = url.replace(/^http:\/\//, "").replace(/^https:\/\//, "https-").replace(/[^A-Za-z0-9.-]+/g, "-")
  return fileVersionMemory(
    `${process.env["XDG_CACHE_HOME"] || `${Os.homedir()}/.cache`}/nsh/slurmrestd-${name}.version`,
    3_600_000
  )
}

// Keep-alive: one connection to slurmrestd reused for the whole process. `ca` replaces the CAs
// Node trusts (its own list) by the ones named in `trustedCas`.
const nodeHttpClient = (ca: string | undefined): Layer.Layer<HttpClient.HttpClient> =>
  NodeHttpClient.layerWithoutAgent.pipe(
    Layer.provide(
      NodeHttpClient.makeAgentLayer({
        keepAlive: true,
        maxSockets: defaultHttpOptions.maxConcurrentRequests,
        ...(ca === undefined ? {} : { ca })
      })
    )
  )

/** Node's HTTP client for plain HTTP (and https:// against Node's own CA list). */
export const NodeHttpClientLive: Layer.Layer<HttpClient.HttpClient> = nodeHttpClient(undefined)

/**
 * The HTTP client for the settings' endpoint: for https://, verifying against `trustedCas`. A CA
 * file that cannot be used fails every request with that reason (there is no unverified fallback).
 */
export const SlurmHttpClientLive = (settings: Settings): Layer.Layer<HttpClient.HttpClient> => {
  const endpoint = slurmEndpoint(settings)
  if (!endpoint.tls) return NodeHttpClientLive
  return Layer.unwrapEffect(
    trustedCas(settings).pipe(
      Effect.flatMap((cas) => readCas(endpoint.url, cas)),
      Effect.match({
        onSuccess: nodeHttpClient,
        onFailure: (error) =>
          Layer.succeed(
            HttpClient.HttpClient,
            HttpClient.make((request) =>
              Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: error }))
            )
          )
      })
    )
  )
}

/** SlurmApi for the settings of Config, on the HTTP client for their endpoint, without version memory. */
export const layerForConfig = (
  options: SlurmHttpOptions = defaultHttpOptions,
  memory: (settings: Settings) => VersionMemory = () => noVersionMemory
): Layer.Layer<SlurmApi, never, Config> =>
  Layer.unwrapEffect(
    Effect.map(Config, ({ settings }) => layerWith(options, memory).pipe(Layer.provide(SlurmHttpClientLive(settings))))
  )

/** The production SlurmApi. */
export const SlurmApiLive: Layer.Layer<SlurmApi, never, Config> = layerForConfig(defaultHttpOptions, cachedMemory)
