/**
 * Nix's settings block (every setting of the parent Nix, by name) → what nsh uses: the build's
 * BuildOptions and what the session needs about the local Nix (its builders, for the fallback).
 * Unknown names and unparsable values are ignored: newer Nix versions send more.
 */
import { Option, Schema } from "effect"
import { type BuildOptions, defaultBuildOptions } from "../dispatch/BuildOptions.js"

/** What the parent Nix says about itself, beyond the build's options. */
export interface NixHostSettings {
  /** Nix's `builders` (machine specs, `;`/newline separated, or `@file`); "" = no remote builders. */
  readonly builders: string
  readonly system: string
  readonly extraPlatforms: ReadonlyArray<string>
  readonly systemFeatures: ReadonlyArray<string>
  /** Local build slots; 0 = the local machine never builds. */
  readonly maxJobs: number
}

export interface NixSettings {
  readonly buildOptions: BuildOptions
  readonly host: NixHostSettings
}

const decodeCount = Schema.decodeUnknownOption(Schema.compose(Schema.NumberFromString, Schema.NonNegativeInt))
const decodeBool = Schema.decodeUnknownOption(Schema.transform(
  Schema.Literal("true", "false"),
  Schema.Boolean,
  { strict: true, decode: (s) => s === "true", encode: (b) => (b ? "true" : "false") }
))

const words = (value: string | undefined): ReadonlyArray<string> =>
  value === undefined ? [] : value.split(/\s+/).filter((w) => w.length > 0)

/** Decodes Nix's settings; `verbosity` is the number Nix passed in argv. */
export const fromNixSettings = (
  entries: ReadonlyArray<readonly [string, string]>,
  verbosity: number
): NixSettings => {
  const byName = new Map(entries)
  const count = (name: string, fallback: number) => Option.getOrElse(decodeCount(byName.get(name)), () => fallback)
  const bool = (name: string, fallback: boolean) => Option.getOrElse(decodeBool(byName.get(name)), () => fallback)
  return {
    buildOptions: {
      timeout: count("timeout", defaultBuildOptions.timeout),
      maxSilentTime: count("max-silent-time", defaultBuildOptions.maxSilentTime),
      maxBuildLogSize: count("max-build-log-size", defaultBuildOptions.maxBuildLogSize),
      buildersUseSubstitutes: bool("builders-use-substitutes", defaultBuildOptions.buildersUseSubstitutes),
      cores: count("cores", defaultBuildOptions.cores),
      store: byName.get("store") || defaultBuildOptions.store,
      verbosity
    },
    host: {
      builders: byName.get("builders") ?? "",
      system: byName.get("system") ?? "",
      extraPlatforms: words(byName.get("extra-platforms")),
      systemFeatures: words(byName.get("system-features")),
      maxJobs: count("max-jobs", 1)
    }
  }
}
