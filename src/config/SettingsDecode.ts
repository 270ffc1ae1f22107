/**
 * From nsh.conf assignments to typed `Settings`: each value is decoded with the Schema of its
 * `SettingsTable` kind, as Nix does when it applies a setting (so a bad value fails even if a
 * later line overrides it), and `extra-NAME` appends to list settings.
 */
import { Effect, Either, Option, ParseResult, Predicate, Redacted, Schema } from "effect"
import * as path from "node:path"
import { isJsonObject, type JsonObject } from "../util/Json.js"
import { NshConfError } from "./ConfigErrors.js"
import { checkEndpoint } from "./Endpoint.js"
import type { ConfEntry } from "./NshConfParser.js"
import type { SettingDoc, Settings, SettingSource } from "./Settings.js"
import { SettingsTable } from "./Settings.js"

/** Any decoded setting value. */
export type SettingValue =
  | string
  | number
  | boolean
  | ReadonlyArray<string>
  | JsonObject
  | Option.Option<Redacted.Redacted<string>>

/** Settings decoded from the files alone (the token is only `slurm-jwt-token`'s; see Token.ts). */
export interface DecodedSettings {
  readonly settings: Settings
  readonly sources: ReadonlyMap<string, SettingSource>
  readonly warnings: ReadonlyArray<string>
}

// Nix's BaseSetting<bool>::parse accepts exactly these.
const Bool = Schema.transform(Schema.Literal("true", "yes", "1", "false", "no", "0"), Schema.Boolean, {
  strict: true,
  decode: (s) => s === "true" || s === "yes" || s === "1",
  encode: (b) => (b ? "true" : "false")
})

const Int = (min: number, max: number) =>
  Schema.String.pipe(Schema.pattern(/^-?[0-9]+$/), Schema.compose(Schema.NumberFromString), Schema.between(min, max))

const Words = Schema.transform(Schema.String, Schema.Array(Schema.String), {
  strict: true,
  decode: (s) => s.split(/\s+/).filter((w) => w !== ""),
  encode: (words) => words.join(" ")
})

// A leading `~` is the user's home; the result is absolute and normalised like Nix's canonPath.
const AbsolutePath = (home: string, allowEmpty: boolean) =>
  Schema.transformOrFail(Schema.String, Schema.String, {
    strict: true,
    decode: (raw, _, ast) => {
      if (raw === "" && allowEmpty) return ParseResult.succeed("")
      const expanded = raw === "~" ? home : raw.startsWith("~/") ? path.join(home, raw.slice(2)) : raw
      return path.isAbsolute(expanded)
        ? ParseResult.succeed(path.resolve(expanded))
        : ParseResult.fail(new ParseResult.Type(ast, raw))
    },
    encode: ParseResult.succeed
  })

// Empty (after trimming) = no token; anything else is Redacted from the moment it is decoded.
const Token = Schema.compose(
  Schema.OptionFromNonEmptyTrimmedString,
  Schema.OptionFromSelf(Schema.Redacted(Schema.String))
)

const JsonObjectSchema = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const jsonKind = (u: unknown): string => u === null ? "null" : Array.isArray(u) ? "a JSON array" : `a JSON ${typeof u}`

/** What a setting accepts, in words ("an integer between 1 and 65535"), for errors and docs. */
export const describeKind = (doc: SettingDoc): string => {
  const kind = doc.kind
  switch (kind._tag) {
    case "string":
      return "a string"
    case "strings":
      return "a space-separated list"
    case "secret":
      return "a secret string"
    case "bool":
      return "true or false"
    case "int":
      return `an integer between ${kind.min} and ${kind.max}`
    case "enum":
      return `one of ${kind.values.join(", ")}`
    case "path":
      return `an absolute path or one starting with ~/${doc.default === "" ? " (empty = unset)" : ""}`
    case "json-object":
      return kind.of === "objects"
        ? `a JSON object of JSON objects on one line and without '#' (it starts a comment), such as {"big-parallel": {"cpus_per_task": 32}}`
        : `a JSON object on one line and without '#' (it starts a comment), such as {"partition": "debug"}`
  }
}

// What was wrong with `raw`. Secrets are never quoted (they cannot fail to decode anyway).
type Failure = { readonly got: string }

const decodeJsonObject = (raw: string): Either.Either<JsonObject, Failure> => {
  if (raw === "") return Either.right({})
  return Schema.decodeEither(Schema.parseJson())(raw).pipe(
    Either.mapLeft((e): Failure => ({ got: `got invalid JSON (${firstMessage(e)})` })),
    Either.flatMap((json) =>
      Schema.decodeUnknownEither(JsonObjectSchema)(json).pipe(
        Either.mapLeft((): Failure => ({ got: `got ${jsonKind(json)}` }))
      )
    )
  )
}

const objectsOnly = (object: JsonObject): Either.Either<JsonObject, Failure> => {
  const bad = Object.entries(object).find(([, value]) => !isJsonObject(value))
  return bad === undefined
    ? Either.right(object)
    : Either.left({ got: `got ${jsonKind(bad[1])} for "${bad[0]}"` })
}

const firstMessage = (e: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(e)[0]?.message ?? e.message

const quoted = (raw: string) => (): Failure => ({ got: raw === "" ? "got an empty value" : `got '${raw}'` })

// One setting's text value decoded per its kind; `home` expands `~` in paths.
const decodeSettingValue = (
  doc: SettingDoc,
  raw: string,
  home: string
): Either.Either<SettingValue, string> => {
  const kind = doc.kind
  // A path whose default is empty may be empty (= unset); others may not.
  const allowEmpty = doc.default === ""
  const result: Either.Either<SettingValue, Failure> = (() => {
    switch (kind._tag) {
      case "string":
        return Either.right(raw)
      case "strings":
        return Schema.decodeEither(Words)(raw).pipe(Either.mapLeft(quoted(raw)))
      case "bool":
        return Schema.decodeUnknownEither(Bool)(raw).pipe(Either.mapLeft(quoted(raw)))
      case "int":
        return Schema.decodeEither(Int(kind.min, kind.max))(raw).pipe(Either.mapLeft(quoted(raw)))
      case "enum":
        return Schema.decodeUnknownEither(Schema.Literal(...kind.values))(raw).pipe(Either.mapLeft(quoted(raw)))
      case "path":
        return Schema.decodeEither(AbsolutePath(home, allowEmpty))(raw).pipe(Either.mapLeft(quoted(raw)))
      case "json-object":
        return kind.of === "objects" ? Either.flatMap(decodeJsonObject(raw), objectsOnly) : decodeJsonObject(raw)
      case "secret":
        return Schema.decodeEither(Token)(raw).pipe(Either.mapLeft(() => ({ got: "got an unreadable value" })))
    }
  })()
  return Either.mapLeft(result, (f) => `expected ${describeKind(doc)}, ${f.got}`)
}

const byKey: ReadonlyMap<string, SettingDoc> = new Map(SettingsTable.map((doc) => [doc.key, doc]))

/**
 * Applies `entries` in order over the defaults. An unknown name (or `extra-` on a setting that is
 * not a list) is a warning, as in Nix; a bad value is an error naming file, line and setting.
 */
export const decodeSettings = (
  entries: ReadonlyArray<ConfEntry>,
  home: string
): Effect.Effect<DecodedSettings, NshConfError> =>
  Effect.gen(function*() {
    const values = new Map<string, SettingValue>()
    const sources = new Map<string, SettingSource>()
    const warnings: Array<string> = []
    const decode = (doc: SettingDoc, raw: string, source: SettingSource) =>
      Either.mapLeft(decodeSettingValue(doc, raw, home), (reason) => NshConfError.at(source, doc.key, reason))

    for (const doc of SettingsTable) {
      const source: SettingSource = { _tag: "default" }
      values.set(doc.key, yield* decode(doc, doc.default, source))
      sources.set(doc.key, source)
    }
    for (const entry of entries) {
      const source: SettingSource = { _tag: "file", file: entry.file, line: entry.line }
      const doc = byKey.get(entry.key)
      if (doc !== undefined) {
        values.set(doc.key, yield* decode(doc, entry.value, source))
        sources.set(doc.key, source)
        continue
      }
      const base = entry.key.startsWith("extra-") ? byKey.get(entry.key.slice("extra-".length)) : undefined
      const previous = base === undefined ? undefined : values.get(base.key)
      if (base !== undefined && Array.isArray(previous)) {
        const added = yield* decode(base, entry.value, source)
        values.set(base.key, Array.isArray(added) ? [...previous, ...added] : previous)
        sources.set(base.key, source)
        continue
      }
      warnings.push(`unknown setting '${entry.key}' in ${entry.file}:${entry.line}`)
    }
    const settings = yield* Effect.sync(() => toSettings(values))
    yield* checkEndpoint(settings, sources)
    return { settings, sources, warnings }
  })

// Each field read by key with a guard: a SettingsTable entry missing or of the wrong kind for
// its Settings field is an nsh bug (a defect), caught by the tests that load the defaults.
const toSettings = (values: ReadonlyMap<string, SettingValue>): Settings => {
  const get = <A extends SettingValue>(key: string, is: (v: SettingValue) => v is A): A => {
    const v = values.get(key)
    if (v !== undefined && is(v)) return v
    throw new Error(`nsh bug: setting '${key}' is missing from SettingsTable or has the wrong kind`)
  }
  const str = (key: string) => get(key, Predicate.isString)
  const int = (key: string) => get(key, Predicate.isNumber)
  const words = (key: string) => get(key, (v): v is ReadonlyArray<string> => Array.isArray(v))
  return {
    jobScheduler: get("job-scheduler", (v): v is "slurm" => v === "slurm"),
    system: str("system"),
    systemFeatures: words("system-features"),
    mandatorySystemFeatures: words("mandatory-system-features"),
    storeDir: str("store-dir"),
    remoteStore: str("remote-store"),
    remoteNixBinDir: str("remote-nix-bin-dir"),
    collectGarbage: get("collect-garbage", Predicate.isBoolean),
    sshTransport: get(
      "ssh-transport",
      (v): v is Settings["sshTransport"] => v === "auto" || v === "ssh2" || v === "openssh"
    ),
    slurmStateDir: str("slurm-state-dir"),
    slurmApiUrl: str("slurm-api-url"),
    slurmApiHost: str("slurm-api-host"),
    slurmApiPort: int("slurm-api-port"),
    slurmApiCaFile: str("slurm-api-ca-file"),
    slurmApiAuth: get("slurm-api-auth", (v): v is "x-slurm" | "bearer" => v === "x-slurm" || v === "bearer"),
    slurmApiVersion: str("slurm-api-version"),
    slurmJwtToken: get("slurm-jwt-token", (v): v is Option.Option<Redacted.Redacted<string>> => Option.isOption(v)),
    slurmJwtTokenFile: str("slurm-jwt-token-file"),
    slurmUserName: str("slurm-user-name"),
    slurmFeatureParams: get(
      "slurm-feature-params",
      (v): v is Record<string, JsonObject> => Predicate.isRecord(v) && !Option.isOption(v)
    ),
    slurmExtraSubmissionParams: get(
      "slurm-extra-submission-params",
      (v): v is JsonObject => Predicate.isRecord(v) && !Option.isOption(v)
    ),
    slurmDerivationParams: words("slurm-derivation-params"),
    slurmDefaultTimeLimit: int("slurm-default-time-limit"),
    jobLeaseTimeout: int("job-lease-timeout"),
    slurmOutageTimeout: int("slurm-outage-timeout"),
    maxJobs: int("max-jobs"),
    postponeTimeout: int("postpone-timeout")
  }
}
