/**
 * The token and user name slurmrestd needs, and what the token's own claims say about it.
 * slurmrestd never says a token was rejected (a bad token gives HTTP 500 "Unspecified error"),
 * so the token's `exp` is how nsh tells an expired token from other failures.
 */
import { Effect, Either, Option, Redacted, Schema } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import type { LoadedSettings, Settings } from "../../config/Settings.js"
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

/**
 * Where the token in use was read. Sites hand out short-lived tokens: when slurmctld rejects the
 * token, nsh reads a file or SLURM_JWT again before giving up; a token in nsh.conf stays as it is.
 */
export type TokenSource =
  | { readonly _tag: "File"; readonly file: string }
  | { readonly _tag: "Env" }
  | { readonly _tag: "Setting" }

/** The source of the loaded token, by the precedence of src/config/Token.ts. */
export const tokenSourceOf = (loaded: LoadedSettings): TokenSource => {
  const { settings, sources } = loaded
  const source = sources.get("slurm-jwt-token")
  if (source?._tag === "env") return { _tag: "Env" }
  // The token file's token carries the source of the slurm-jwt-token-file line (Token.ts).
  const fromFile = Option.isNone(settings.slurmJwtToken) ||
    JSON.stringify(source) === JSON.stringify(sources.get("slurm-jwt-token-file"))
  return settings.slurmJwtTokenFile !== "" && fromFile
    ? { _tag: "File", file: settings.slurmJwtTokenFile }
    : { _tag: "Setting" }
}

/** The credentials the source holds now (None: none there, or a source nsh does not read again). */
export const rereadCredentials = (
  settings: Settings,
  source: TokenSource
): Effect.Effect<Option.Option<Credentials>, SlurmTokenUnreadable> => {
  switch (source._tag) {
    case "File":
      return credentialsOf({ ...settings, slurmJwtToken: Option.none(), slurmJwtTokenFile: source.file })
    case "Env": {
      const token = tokenFromText(process.env["SLURM_JWT"] ?? "")
      return token === ""
        ? Effect.succeed(Option.none())
        : credentialsOf({ ...settings, slurmJwtToken: Option.some(Redacted.make(token)) })
    }
    case "Setting":
      return Effect.succeed(Option.none())
  }
}

/** How to renew a rejected token from `source`, once nsh has read it again and found nothing better. */
export const renewalAdvice = (source: TokenSource): string => {
  switch (source._tag) {
    case "File":
      return `nsh read ${source.file} again and found no accepted token there: write a new one with \`scontrol token lifespan=SECONDS > ${source.file}\` (nsh reads the file again at its next request)`
    case "Env":
      return "SLURM_JWT is read when nsh starts: export a new one from `scontrol token`, or put it in the file named by slurm-jwt-token-file, which nsh reads again whenever a token is rejected"
    case "Setting":
      return "slurm-jwt-token in nsh.conf: replace it with a new one from `scontrol token`, or use slurm-jwt-token-file, which nsh reads again whenever a token is rejected"
  }
}
