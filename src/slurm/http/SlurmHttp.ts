/**
 * One authenticated exchange with slurmrestd, and the rules for what deserves another try.
 *
 * Every answer is screened the same way whatever the endpoint: 401/511 and rejected-token
 * bodies become SlurmAuthError, after one more try with a new token if the token's source (a
 * file, SLURM_JWT) holds one by then; connection trouble, 502–504 and slurmctld hiccups reported as 500
 * become `Transient` (retried by `settle`, or by the caller when a retry needs care, as a submit
 * does); everything else is handed to the caller to read.
 */
import { Headers, HttpClient, type HttpClientError, HttpClientRequest } from "@effect/platform"
import { Clock, Data, Duration, Effect, Either, Option, Redacted, Ref, Schedule, Stream } from "effect"
import { type SlurmEndpoint, slurmEndpoint } from "../../config/Endpoint.js"
import type { Settings } from "../../config/Settings.js"
import { envelopeOf, type SlurmMessage } from "../dialects/Envelope.js"
import {
  SlurmAuthError,
  type SlurmError,
  SlurmProtocolError,
  SlurmRequestError,
  SlurmTlsError,
  SlurmUnreachable
} from "../SlurmErrors.js"
import {
  authHeaders,
  type Credentials,
  credentialsOf,
  isExpired,
  rejectionReason,
  renewalAdvice,
  rereadCredentials,
  type TokenSource
} from "./Credentials.js"
import { describeTlsFailure, trustedCas } from "./Tls.js"

/** Tuning of the HTTP exchange (defaults in `defaultHttpOptions`). */
export interface SlurmHttpOptions {
  /** Bound on one request, answer body included. */
  readonly requestTimeout: Duration.DurationInput
  /** Requests in flight at once from this process: slurmrestd serves ~124 connections for everyone. */
  readonly maxConcurrentRequests: number
  /** Delays between tries after a transient failure (its recurrences bound the number of retries). */
  readonly retrySchedule: Schedule.Schedule<unknown, unknown>
  /** Bound on an answer's body: GET /jobs lists the whole cluster (slurmrestd cannot filter by user). */
  readonly maxResponseBytes: number
}

/**
 * 20 s per request; 8 at once; 5 retries 100 ms, 200 ms, … apart (±20 % jitter), ~3 s in all;
 * answers up to 256 MiB (GET /jobs of some 50 000 jobs).
 */
export const defaultHttpOptions: SlurmHttpOptions = {
  requestTimeout: "20 seconds",
  maxConcurrentRequests: 8,
  retrySchedule: Schedule.exponential("100 millis", 2).pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5))),
  maxResponseBytes: 256 * 1024 * 1024
}

/** An answer that passed screening. `json` is undefined for a non-JSON body (router rejections). */
export interface Reply {
  readonly status: number
  readonly json: unknown
  readonly text: string
  readonly errors: ReadonlyArray<SlurmMessage>
  readonly warnings: ReadonlyArray<string>
  /** The user the request was made as (X-SLURM-USER-NAME). */
  readonly userName: string
}

/** A failure another try may fix. */
export class Transient extends Data.TaggedError("Transient")<{
  readonly error: SlurmUnreachable | SlurmRequestError
  /** False when the request certainly never reached slurmrestd (connection refused). */
  readonly sent: boolean
  /** The answer is also what slurmctld gives for a rejected token (HTTP 500 with -1 or 5005). */
  readonly authSuspect: boolean
}> {}

/** The HTTP methods nsh uses with slurmrestd. */
export type Method = "GET" | "POST" | "DELETE"

/** The HTTP side of SlurmApi. */
export interface SlurmHttp {
  /** `https://host:port` or `http://host:port`, for messages. */
  readonly url: string
  /** One try. */
  readonly send: (
    operation: string,
    method: Method,
    path: string,
    body?: unknown
  ) => Effect.Effect<Reply, SlurmError | Transient>
  /** Retries the transient failures of an idempotent effect, then reports them as final errors. */
  readonly settle: <A, E>(effect: Effect.Effect<A, E | Transient>) => Effect.Effect<A, E | SlurmError>
  /** A transient failure that will not be retried, as the error to report. */
  readonly giveUp: (transient: Transient) => Effect.Effect<never, SlurmError>
}

// -1 "Unspecified error" (GET, ping) and 5005 "Zero Bytes were transmitted or received" (submit,
// cancel) are how 22.05–24.05 report a token slurmctld refused (lab 49–57) — and also a hiccup.
const authSuspectCodes = new Set([-1, 5005])
// 1007 PROTOCOL_AUTHENTICATION_ERROR (24.11+, HTTP 511), 6000 AUTH_CRED_INVALID, 6001 AUTH_EXPIRED.
const authCodes = new Set([1007, 6000, 6001])
const isTransientCode = (code: number) => (code >= 1000 && code < 2000) || (code >= 5000 && code < 6000)
const gatewayStatuses = new Set([502, 503, 504])

/** An answer's body outgrew `maxResponseBytes`. */
class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{}> {}

/** A body as text, read only up to `limit` bytes. */
const boundedText = <E>(body: Stream.Stream<Uint8Array, E>, limit: number): Effect.Effect<string, E | BodyTooLarge> =>
  Stream.runFoldEffect(
    body,
    { size: 0, chunks: [] as Array<Uint8Array> },
    (read, chunk) =>
      read.size + chunk.length > limit
        ? Effect.fail(new BodyTooLarge())
        : Effect.succeed({ size: read.size + chunk.length, chunks: [...read.chunks, chunk] })
  ).pipe(
    Effect.map(({ chunks }) => Buffer.concat(chunks).toString("utf8"))
  )

const parseJson = (text: string): unknown => Either.try(() => JSON.parse(text) as unknown).pipe(Either.getOrUndefined)

/**
 * The node error code behind a transport failure: how sure we are the request went out, and whether
 * to retry. A TLS failure is final: another try would meet the same certificate.
 */
const describeTransport = (
  endpoint: SlurmEndpoint,
  cas: string,
  error: HttpClientError.HttpClientError
): Transient | SlurmUnreachable | SlurmTlsError => {
  if (error.cause instanceof SlurmTlsError) return error.cause
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined
  const tls = describeTlsFailure(endpoint, cas, cause)
  if (tls !== undefined) return tls
  const url = endpoint.url
  const code = typeof cause?.code === "string" ? cause.code : ""
  const unreachable = (reason: string) => new SlurmUnreachable({ url, reason })
  switch (code) {
    case "ENOTFOUND":
      return unreachable("host name not found")
    case "ECONNREFUSED":
      return new Transient({ error: unreachable("connection refused"), sent: false, authSuspect: false })
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EAI_AGAIN":
      return new Transient({ error: unreachable(`network unreachable (${code})`), sent: false, authSuspect: false })
    case "ECONNRESET":
    case "EPIPE":
      return new Transient({ error: unreachable("connection reset"), sent: true, authSuspect: false })
  }
  if (error._tag === "RequestError" && error.reason === "InvalidUrl") return unreachable("invalid URL")
  const detail = typeof cause?.message === "string" ? cause.message : error.message
  return new Transient({ error: unreachable(detail), sent: true, authSuspect: false })
}

// The token headers must not show up in spans or logged requests.
const redactToken = Effect.locallyWith(
  Headers.currentRedactedNames,
  (names) => [...names, "x-slurm-user-token", "authorization"]
)

// slurmrestd before 23.02 reads only X-SLURM-USER-TOKEN (src/slurmrestd/plugins/auth/jwt/jwt.c).
const bearerHint =
  " (slurm-api-auth = bearer needs Slurm 23.02 or later; older slurmrestd wants slurm-api-auth = x-slurm)"

const sameToken = (a: Credentials, b: Credentials) => Redacted.value(a.token) === Redacted.value(b.token)

/** Builds the HTTP side for the given settings on an HttpClient; `source` is where a new token is read. */
export const makeSlurmHttp = (
  settings: Settings,
  options: SlurmHttpOptions,
  source: TokenSource
): Effect.Effect<SlurmHttp, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const endpoint = slurmEndpoint(settings)
    const url = endpoint.url
    const cas = (yield* trustedCas(settings)).description
    // The token in use: the loaded one until slurmctld rejects it, then what its source holds.
    const inUse = yield* Ref.make(Option.none<Credentials>())
    // Resolved until there is one: a token file unreadable at start (being rewritten) is read again.
    const credentials = Effect.flatMap(
      Ref.get(inUse),
      Option.match({
        onSome: (creds) => Effect.succeed(Option.some(creds)),
        onNone: () => Effect.tap(credentialsOf(settings), (found) => Ref.set(inUse, found))
      })
    )
    // The rejected token already said so, so that a build polling through a long wait says it once.
    const warned = yield* Ref.make(Option.none<Credentials>())
    const permits = yield* Effect.makeSemaphore(options.maxConcurrentRequests)
    const timeout = Duration.decode(options.requestTimeout)

    const authError = (creds: Credentials) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.fail(new SlurmAuthError({ host: url, reason: rejectionReason(creds, now) })))

    /** The rejected token, worded with how to renew it from its source (said once per token). */
    const rejectedFinally = (creds: Credentials, rejected: SlurmAuthError) =>
      Effect.gen(function*() {
        const error = new SlurmAuthError({
          host: rejected.host,
          reason: rejected.reason,
          renewal: renewalAdvice(source),
          renewable: source._tag === "File"
        })
        const said = yield* Ref.getAndSet(warned, Option.some(creds))
        if (Option.isNone(said) || !sameToken(said.value, creds)) {
          yield* Effect.logWarning(`nsh: ${error.message}`)
        }
        return yield* error
      })

    /** After `creds` was rejected: the token its source holds now, if another one (then in use). */
    const renewed = (creds: Credentials, rejected: SlurmAuthError) =>
      Effect.gen(function*() {
        const fresh = yield* rereadCredentials(settings, source).pipe(
          Effect.orElseSucceed(() =>
            Option.none<Credentials>()
          )
        )
        if (Option.isNone(fresh) || sameToken(fresh.value, creds)) return Option.none<Credentials>()
        yield* Ref.set(inUse, fresh)
        yield* Effect.logInfo(
          `nsh: slurmrestd rejected the Slurm token (${rejected.reason}); using the new one from ${
            source._tag === "File" ? source.file : "SLURM_JWT"
          }`
        )
        return fresh
      })

    /** `rejected` was answered for `creds`: one more try with a new token from its source, if there is one. */
    const renewing = <A>(
      creds: Credentials,
      rejected: SlurmAuthError,
      retry: (fresh: Credentials) => Effect.Effect<A, SlurmError | Transient>
    ): Effect.Effect<A, SlurmError | Transient> =>
      Effect.flatMap(renewed(creds, rejected), (fresh) =>
        Option.isNone(fresh)
          ? rejectedFinally(creds, rejected)
          : retry(fresh.value).pipe(
            Effect.catchIf(
              (e): e is SlurmAuthError => e instanceof SlurmAuthError && e.missing !== true,
              (e) => rejectedFinally(fresh.value, e)
            )
          ))

    const exchange = (creds: Credentials, method: Method, path: string, body: unknown) => {
      const base = HttpClientRequest.make(method)(url + path).pipe(
        HttpClientRequest.setHeaders(authHeaders(creds, settings)),
        HttpClientRequest.acceptJson
      )
      const request = body === undefined ? base : HttpClientRequest.bodyUnsafeJson(base, body)
      return client.execute(request).pipe(
        Effect.flatMap((response) =>
          Effect.map(boundedText(response.stream, options.maxResponseBytes), (text) => ({
            status: response.status,
            text
          }))
        ),
        Effect.mapError((e) => e instanceof BodyTooLarge ? e : describeTransport(endpoint, cas, e)),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new Transient({
              error: new SlurmUnreachable({ url, reason: `no answer within ${Duration.format(timeout)}` }),
              sent: true,
              authSuspect: false
            })
        }),
        permits.withPermits(1),
        redactToken
      )
    }

    const screen = (creds: Credentials, operation: string, status: number, text: string) =>
      Effect.gen(function*() {
        const json = parseJson(text)
        if (status === 401) {
          return yield* new SlurmAuthError({
            host: url,
            reason:
              `slurmrestd refused the authentication headers (HTTP 401 ${text.trim()}; user name ${creds.userName})${
                settings.slurmApiAuth === "bearer" ? bearerHint : ""
              }`
          })
        }
        const { errors, warnings } = envelopeOf(json)
        const requestError = new SlurmRequestError({
          operation,
          status,
          errors: errors.length > 0
            ? errors.map((e) => e.text)
            : json === undefined && gatewayStatuses.has(status)
            // A proxy's own error page (nginx's HTML) says only that slurmrestd behind it did not answer.
            ? [`HTTP ${status} from a proxy in front of slurmrestd: it could not reach slurmrestd`]
            : [text.trim() || `HTTP ${status}`]
        })
        const codes = errors.flatMap((e) => e.code === undefined ? [] : [e.code])
        const now = yield* Clock.currentTimeMillis
        if (status === 511 || codes.some((c) => authCodes.has(c))) return yield* authError(creds)
        if (status >= 500 && codes.some((c) => authSuspectCodes.has(c))) {
          // Its own expiry (or not being a JWT at all) explains the answer: no point in retrying.
          if (isExpired(creds, now) || creds.expiresAt === undefined) return yield* authError(creds)
          return yield* new Transient({ error: requestError, sent: true, authSuspect: true })
        }
        if (gatewayStatuses.has(status) || (status === 500 && codes.some(isTransientCode))) {
          return yield* new Transient({ error: requestError, sent: true, authSuspect: false })
        }
        if (json === undefined && status !== 404) {
          return yield* status >= 400
            ? Effect.fail(requestError)
            : Effect.fail(new SlurmProtocolError({ operation, detail: `HTTP ${status} with a body that is not JSON` }))
        }
        return { status, json, text, errors, warnings, userName: creds.userName } satisfies Reply
      })

    const sendAs = (creds: Credentials, operation: string, method: Method, path: string, body: unknown) =>
      exchange(creds, method, path, body).pipe(
        Effect.catchTag("BodyTooLarge", () =>
          Effect.fail(
            new SlurmProtocolError({
              operation,
              detail: `the answer is larger than ${options.maxResponseBytes / 1024 / 1024} MiB`
            })
          )),
        Effect.flatMap(({ status, text }) => screen(creds, operation, status, text))
      )

    const send: SlurmHttp["send"] = (operation, method, path, body) =>
      Effect.flatMap(credentials, (current) =>
        Option.match(current, {
          onNone: () => Effect.fail(new SlurmAuthError({ host: url, reason: "no token configured", missing: true })),
          onSome: (creds) =>
            sendAs(creds, operation, method, path, body).pipe(
              Effect.catchTag(
                "SlurmAuthError",
                (rejected) => renewing(creds, rejected, (fresh) => sendAs(fresh, operation, method, path, body))
              )
            )
        }))

    // Retried already: the caller learns that a later try may still work.
    const passing = (error: SlurmUnreachable | SlurmRequestError): SlurmError =>
      error instanceof SlurmUnreachable
        ? new SlurmUnreachable({ url: error.url, reason: error.reason, passing: true })
        : new SlurmRequestError({
          operation: error.operation,
          status: error.status,
          errors: error.errors,
          ...(error.jobId === undefined ? {} : { jobId: error.jobId }),
          passing: true
        })

    const giveUp = (transient: Transient): Effect.Effect<never, SlurmError> =>
      transient.authSuspect
        ? Effect.flatMap(
          Effect.orElseSucceed(credentials, () => Option.none<Credentials>()),
          Option.match({
            onNone: (): Effect.Effect<never, SlurmError> => Effect.fail(passing(transient.error)),
            // A new token in its source may be what was missing: the next request uses it.
            onSome: (creds) =>
              Effect.flatMap(Effect.flip(authError(creds)), (rejected) =>
                Effect.flatMap(renewed(creds, rejected), (fresh) =>
                  Option.isSome(fresh)
                    ? Effect.fail(passing(transient.error))
                    : rejectedFinally(creds, rejected)))
          })
        )
        : Effect.fail(passing(transient.error))

    /** After answers that suspect the token outlasted the retries: a new token from its source, if any. */
    const renewedAfterSuspect = Effect.flatMap(
      Effect.orElseSucceed(credentials, () => Option.none<Credentials>()),
      Option.match({
        onNone: () => Effect.succeed(Option.none<Credentials>()),
        onSome: (creds) => Effect.flatMap(Effect.flip(authError(creds)), (rejected) => renewed(creds, rejected))
      })
    )

    const isTransient = (e: unknown): e is Transient => e instanceof Transient

    const settle = <A, E>(effect: Effect.Effect<A, E | Transient>): Effect.Effect<A, E | SlurmError> => {
      const retried = Effect.retry(effect, { schedule: options.retrySchedule, while: isTransient })
      return Effect.catchIf(retried, isTransient, (transient) =>
        transient.authSuspect
          // The token those answers were about may have been renewed meanwhile: once more with the new one.
          ? Effect.flatMap(
            renewedAfterSuspect,
            (fresh) => Option.isSome(fresh) ? Effect.catchIf(retried, isTransient, giveUp) : giveUp(transient)
          )
          : giveUp(transient))
    }

    return { url, send, settle, giveUp }
  })
