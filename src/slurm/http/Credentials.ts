/**
 * The token and user name slurmrestd needs, and what the token's own claims say about it.
 * slurmrestd never says a token was rejected (a bad token gives HTTP 500 "Unspecified error"),
 * so the token's `exp` is how nsh tells an expired token from other failures.
 */
import { Effect, Either, Option, Redacted, Schema } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import type { Settings } from "../../config/Settings.js"
import { tokenFromText } from "../../config/Token.js"
import { SlurmTokenUnreadable } from "../SlurmErrors.js"

/** What nsh sends as `X-SLURM-USER-TOKEN` (or `Authorization: Bearer`) and `X-SLURM-USER-NAME`. */
export interface Credentials {
  readonly token: Redacted.Redacted<string>
  readonly userName: string
  /** The token's `exp` claim (epoch seconds); undefined when the token is not a readable JWT. */
  readonly expiresAt: number | undefined
}

const Claims = Schema.Struct({
  exp: Schema.optionalWith(Schema.Number, { nullable: true }),
  sun: Schema.optionalWith(Schema.String, { nullable: true }),
  username: Schema.optionalWith(Schema.String, { nullable: true })
})

/** The claims of a JWT's payload, read without checking the signature (slurmctld does that). */
export const claimsOf = (token: Redacted.Redacted<string>): typeof Claims.Type => {
  const payload = Redacted.value(token).split(".")[1] ?? ""
  return Schema.decodeUnknownEither(Schema.parseJson(Claims))(Buffer.from(payload, "base64url").toString("utf8")).pipe(
    Either.getOrElse(() => ({}))
  )
}

const osUser = Effect.try(() => Os.userInfo().username).pipe(
  Effect.orElseSucceed(() => process.env["USER"] ?? "")
)

/**
 * The token as of now: the loaded one, else the token file read again (it could not be read when
 * the settings were loaded: it may have been being rewritten).
 */
const currentToken = (
  settings: Settings
): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SlurmTokenUnreadable> =>
  Option.isSome(settings.slurmJwtToken) || settings.slurmJwtTokenFile === ""
    ? Effect.succeed(settings.slurmJwtToken)
    : Effect.tryPromise({
      try: () => Fs.readFile(settings.slurmJwtTokenFile, "utf8"),
      catch: (e) =>
        new SlurmTokenUnreadable({
          file: settings.slurmJwtTokenFile,
          reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String((e as Error).message)
        })
    }).pipe(
      Effect.map(tokenFromText),
      Effect.filterOrFail(
        (token) => token !== "",
        () => new SlurmTokenUnreadable({ file: settings.slurmJwtTokenFile, reason: "it is empty" })
      ),
      Effect.map((token) => Option.some(Redacted.make(token)))
    )

/** The credentials from the settings; None when no token is configured. */
export const credentialsOf = (settings: Settings): Effect.Effect<Option.Option<Credentials>, SlurmTokenUnreadable> =>
  Effect.flatMap(currentToken(settings), (token) =>
    Option.match(token, {
      onNone: () => Effect.succeed(Option.none()),
      onSome: (token) =>
        Effect.gen(function*() {
          const claims = claimsOf(token)
          const userName = settings.slurmUserName || claims.sun || claims.username || (yield* osUser)
          return Option.some({ token, userName, expiresAt: claims.exp })
        })
    }))

const isoSeconds = (epochSeconds: number): string =>
  new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")

/** Why slurmctld most likely rejected the token, judged at `nowMs`. */
export const rejectionReason = (credentials: Credentials, nowMs: number): string =>
  credentials.expiresAt === undefined
    ? "it is not a readable JWT (no expiry claim): is it the whole output of `scontrol token`?"
    : credentials.expiresAt * 1000 <= nowMs
    ? `expired at ${isoSeconds(credentials.expiresAt)}`
    : `not yet expired: wrong signature or another user's token? (user ${credentials.userName}, expires at ${
      isoSeconds(credentials.expiresAt)
    })`

/** True when the token's own `exp` has passed at `nowMs`. */
export const isExpired = (credentials: Credentials, nowMs: number): boolean =>
  credentials.expiresAt !== undefined && credentials.expiresAt * 1000 <= nowMs

/**
 * The request headers carrying the credentials. slurmrestd 23.02+ refuses a request holding both
 * X-SLURM-USER-TOKEN and Authorization ("mutually exclusive headers"), so a request has one of them;
 * with Bearer the token names its user, so X-SLURM-USER-NAME goes only when slurm-user-name is set.
 */
export const authHeaders = (
  credentials: Credentials,
  settings: Pick<Settings, "slurmApiAuth" | "slurmUserName">
): Record<string, string> =>
  settings.slurmApiAuth === "bearer"
    ? {
      authorization: `Bearer ${Redacted.value(credentials.token)}`,
      ...(settings.slurmUserName === "" ? {} : { "x-slurm-user-name": credentials.userName })
    }
    : { "x-slurm-user-token": Redacted.value(credentials.token), "x-slurm-user-name": credentials.userName }
