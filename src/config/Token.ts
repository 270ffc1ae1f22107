/**
 * Where the slurmrestd token comes from: `slurm-jwt-token`, else the file named by
 * `slurm-jwt-token-file`, else the `SLURM_JWT` environment variable. The text is `Redacted` from
 * the moment it is read and never appears in an error or warning.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Option, Redacted } from "effect"
import { describeFsError, describeSource } from "./ConfigErrors.js"
import type { ConfigEnv } from "./ConfigFiles.js"
import type { SettingSource } from "./Settings.js"
import type { DecodedSettings } from "./SettingsDecode.js"

/** The token (if any), where it came from, and findings about how it is stored. */
export interface ResolvedToken {
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly source: SettingSource
  readonly warnings: ReadonlyArray<string>
}

const fileKey = "slurm-jwt-token-file"

// `scontrol token` prints `SLURM_JWT=<token>`; accept the file holding that line as is.
/** The token in a token file's text ("" when there is none). */
export const tokenFromText = (text: string): string => text.trim().replace(/^SLURM_JWT=/, "").trim()

/**
 * The token file's token. A file that cannot be read or is empty is no error here: it may be being
 * rewritten, so it gives a warning and no token, and the token is read again when a request needs
 * it (src/slurm/http/Credentials.ts).
 */
const readTokenFile = (
  file: string,
  source: SettingSource
): Effect.Effect<ResolvedToken, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const read = yield* Effect.either(Effect.all([fs.stat(file), fs.readFileString(file)]))
    const text = read._tag === "Right" ? tokenFromText(read.right[1]) : ""
    if (read._tag === "Left" || text === "") {
      const why = read._tag === "Left" ? describeFsError(read.left) : "it is empty"
      return {
        token: Option.none(),
        source,
        warnings: [
          `cannot read the token file '${file}' (${why}; ${fileKey} in ${
            describeSource(source)
          }): nsh reads it again when it needs the token; if it is not being rewritten, write a token to it with 'scontrol token > ${file}' and 'chmod 600 ${file}'`
        ]
      }
    }
    const mode = read.right[0].mode & 0o777
    const warnings = (mode & 0o044) === 0 ? [] : [
      `the token file '${file}' (${fileKey} in ${describeSource(source)}) is readable by group or others (mode ${
        mode.toString(8).padStart(4, "0")
      }); run 'chmod 600 ${file}'`
    ]
    return { token: Option.some(Redacted.make(text)), source, warnings }
  })

/** Resolves the token by precedence: the setting, then the token file, then `SLURM_JWT`. */
export const resolveToken = (
  decoded: DecodedSettings,
  env: ConfigEnv
): Effect.Effect<ResolvedToken, never, FileSystem.FileSystem> => {
  const { settings, sources } = decoded
  const sourceOf = (key: string): SettingSource => sources.get(key) ?? { _tag: "default" }
  if (Option.isSome(settings.slurmJwtToken)) {
    return Effect.succeed({ token: settings.slurmJwtToken, source: sourceOf("slurm-jwt-token"), warnings: [] })
  }
  if (settings.slurmJwtTokenFile !== "") return readTokenFile(settings.slurmJwtTokenFile, sourceOf(fileKey))
  const fromEnv = tokenFromText(env["SLURM_JWT"] ?? "")
  return Effect.succeed(
    fromEnv === ""
      ? { token: Option.none(), source: { _tag: "default" }, warnings: [] }
      : { token: Option.some(Redacted.make(fromEnv)), source: { _tag: "env", variable: "SLURM_JWT" }, warnings: [] }
  )
}
