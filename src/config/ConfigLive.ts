/**
 * Loading nsh's settings: discover the nsh.conf files, parse them, decode the values, find the token.
 */
import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { Config } from "./Config.js"
import type { NshConfError } from "./ConfigErrors.js"
import type { ConfigEnv } from "./ConfigFiles.js"
import { configFiles, homeDirectory } from "./ConfigFiles.js"
import { readNshConfFiles } from "./NshConfParser.js"
import type { LoadedSettings } from "./Settings.js"
import { decodeSettings } from "./SettingsDecode.js"
import { resolveToken } from "./Token.js"

/** Loads the settings `env` points at (NSH_CONF, NIX_CONF_DIR, XDG_*, HOME, SLURM_JWT). */
export const loadSettings = (env: ConfigEnv): Effect.Effect<LoadedSettings, NshConfError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const parsed = yield* readNshConfFiles(configFiles(env))
    const decoded = yield* decodeSettings(parsed.entries, homeDirectory(env))
    const token = yield* resolveToken(decoded, env)
    const sources = new Map(decoded.sources)
    sources.set("slurm-jwt-token", token.source)
    return {
      settings: { ...decoded.settings, slurmJwtToken: token.token },
      sources,
      files: parsed.files,
      absent: parsed.absent,
      warnings: [...parsed.warnings, ...decoded.warnings, ...token.warnings]
    }
  })

/** The Config service from the process environment and the real file system. */
export const ConfigLive: Layer.Layer<Config, NshConfError> = Layer.effect(
  Config,
  Effect.suspend(() => loadSettings(process.env))
).pipe(Layer.provide(NodeFileSystem.layer))
