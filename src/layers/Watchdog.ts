/**
 * The layers of the watchdog's clean-up stage (`nsh __watchdog`, src/safety/WatchdogMain.ts):
 * slurmrestd as the hook that started it knew it, and file removal here and on the node.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { Config } from "../config/Config.js"
import { decodeSettings } from "../config/SettingsDecode.js"
import { FileRemoverLive } from "../safety/FileRemover.js"
import { type CleanupLayers, watchdogMain } from "../safety/WatchdogMain.js"
import type { Start } from "../safety/WatchdogProtocol.js"
import { layerForConfig } from "../slurm/SlurmApiLive.js"

/**
 * SlurmApi for the hook's slurmrestd, API version and token (nsh's defaults for everything else);
 * a rejected token is replaced by the one in the hook's token file, if it named one.
 */
export const slurmApiFor = (start: Start) =>
  Layer.unwrapEffect(
    Effect.map(decodeSettings([], "/"), ({ settings, sources }) =>
      layerForConfig().pipe(
        Layer.provide(
          Config.fromLoaded({
            settings: {
              ...settings,
              slurmApiUrl: start.slurm.url,
              slurmApiHost: start.slurm.host,
              slurmApiPort: start.slurm.port,
              slurmApiCaFile: start.slurm.caFile,
              slurmApiAuth: start.slurm.auth,
              slurmApiVersion: start.slurm.apiVersion,
              slurmUserName: start.slurm.userName,
              slurmJwtToken: Option.some(start.slurm.token),
              // With every source at its default, Credentials.tokenSourceOf takes this file as the token's.
              slurmJwtTokenFile: start.slurm.tokenFile ?? ""
            },
            sources,
            files: [],
            absent: [],
            warnings: []
          })
        )
      ))
  )

const cleanupLayers: CleanupLayers = (start) =>
  Layer.mergeAll(slurmApiFor(start), FileRemoverLive.pipe(Layer.provide(NodeContext.layer)))

/** The clean-up stage's program. */
export const watchdogProgram = watchdogMain(cleanupLayers)
