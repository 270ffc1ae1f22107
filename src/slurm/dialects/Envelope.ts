/**
 * The parts of a slurmrestd JSON body every version shares: `errors[]`, `warnings[]`, `pings[]`.
 */
import { Either, Schema } from "effect"
import { OptionalInt, Text } from "./Fields.js"

/** One entry of `errors[]`, worded for people, with Slurm's error number when given. */
export interface SlurmMessage {
  readonly code: number | undefined
  readonly text: string
}

// v0.0.38 submit errors carry `error_code`, every other error `error_number` (api-notes §8).
const ErrorItem = Schema.Struct({
  error: Text,
  description: Text,
  error_number: OptionalInt,
  error_code: OptionalInt
})

const WarningItem = Schema.Struct({ warning: Text, description: Text })

const Envelope = Schema.Struct({
  errors: Schema.optionalWith(Schema.Array(ErrorItem), { nullable: true, default: () => [] }),
  warnings: Schema.optionalWith(Schema.Array(WarningItem), { nullable: true, default: () => [] })
})

const wordError = (item: typeof ErrorItem.Type): SlurmMessage => {
  const code = item.error_number ?? item.error_code
  const parts = [item.description, item.error].filter((s, i, all) => s !== "" && all.indexOf(s) === i)
  const text = parts.length === 0 ? "unspecified error" : parts.join(": ")
  return { code, text: code === undefined ? text : `${text} (Slurm error ${code})` }
}

/** The errors and warnings of any JSON body; a body without them (or not an object) has none. */
export const envelopeOf = (
  body: unknown
): { readonly errors: ReadonlyArray<SlurmMessage>; readonly warnings: ReadonlyArray<string> } =>
  Schema.decodeUnknownEither(Envelope)(body).pipe(
    Either.match({
      onLeft: () => ({ errors: [], warnings: [] }),
      onRight: (envelope) => ({
        errors: envelope.errors.map(wordError),
        warnings: envelope.warnings.map((w) => w.description || w.warning).filter((w) => w !== "")
      })
    })
  )

// `ping` (v0.0.38), `pinged` (v0.0.39–44), `responding` (v0.0.42+).
const Ping = Schema.Struct({
  hostname: Text,
  ping: Text,
  pinged: Text,
  responding: Schema.optionalWith(Schema.Boolean, { nullable: true })
})

const Pings = Schema.Struct({
  pings: Schema.optionalWith(Schema.Array(Ping), { nullable: true, default: () => [] })
})

/** One slurmctld as slurmrestd saw it when pinging. */
export interface ControllerPing {
  readonly host: string
  readonly up: boolean
}

/** The controllers of a ping answer (every version's shape). */
export const pingsOf = (body: unknown): Either.Either<ReadonlyArray<ControllerPing>, string> =>
  Schema.decodeUnknownEither(Pings)(body).pipe(
    Either.mapLeft((e) => e.message),
    Either.map(({ pings }) =>
      pings.map((p) => ({
        host: p.hostname,
        up: p.responding ?? ((p.ping || p.pinged || "UP").toUpperCase() === "UP")
      }))
    )
  )
