/**
 * JSON objects as nsh reads them from nsh.conf, derivations and slurmrestd: decoded with Schema,
 * never trusted.
 */
import { Either, ParseResult, Schema } from "effect"

/** One decoded JSON object (the only shape nsh accepts at the top level). */
export type JsonObject = { readonly [key: string]: unknown }

const JsonObjectFromString = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))

/** Whether a decoded JSON value is an object (not null, not an array). */
export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Decodes text that must hold one JSON object; the Left is a short phrase saying what is wrong. */
export const decodeJsonObject = (text: string): Either.Either<JsonObject, string> =>
  Schema.decodeUnknownEither(JsonObjectFromString)(text).pipe(
    Either.mapLeft((error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error)
        .map((issue) => issue.message)
        .join("; ")
    )
  )
