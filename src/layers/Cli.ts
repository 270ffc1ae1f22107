/**
 * The layers of nsh's commands (everything but hook mode). Each command gets only what it uses,
 * so `nsh --help` works with a broken nsh.conf and `--dry-run` never reaches slurmrestd.
 */
import type { FileSystem } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import type { Config } from "../config/Config.js"
import type { NshConfError } from "../config/ConfigErrors.js"
import { ConfigLive } from "../config/ConfigLive.js"
import { type Journal, JournalLive } from "../safety/Journal.js"
import type { SlurmApi } from "../slurm/SlurmApi.js"
import { SlurmApiLive } from "../slurm/SlurmApiLive.js"
import type { SshSession } from "../ssh/SshSession.js"
import { SshSessionLayer, SshSessionLive } from "../ssh/SshSessionLive.js"
import type { NixStore } from "../store/NixStore.js"
import { NixStoreLive } from "../store/NixStoreLive.js"

/** What each command is given; tests hand in doubles. Built only when the command runs. */
export interface CliLayers {
  /** `--dry-run`: the settings and the derivation, nothing that talks to a server. */
  readonly dryRun: Layer.Layer<Config | NixStore, NshConfError>
  /** `nsh jobs`, `nsh cancel`: slurmrestd and the journal. */
  readonly slurm: Layer.Layer<SlurmApi | Journal | FileSystem.FileSystem | Config, NshConfError>
  /** `nsh doctor`: what it loads and reaches itself (it reads nsh.conf as one of its checks). */
  readonly doctor: Layer.Layer<FileSystem.FileSystem | SshSession>
}

/** What @effect/cli itself needs. */
export const CliLive = NodeContext.layer

/** The real pieces for each command. */
export const CliLayersLive: CliLayers = {
  dryRun: NixStoreLive.pipe(Layer.provideMerge(ConfigLive), Layer.provide(NodeContext.layer)),
  slurm: Layer.mergeAll(SlurmApiLive, JournalLive).pipe(
    Layer.provideMerge(Layer.merge(ConfigLive, NodeContext.layer))
  ),
  // ssh-transport from nsh.conf when it loads; a broken nsh.conf is the doctor's to report, so `auto` then.
  doctor: Layer.mergeAll(
    NodeContext.layer,
    SshSessionLive.pipe(
      Layer.provide(ConfigLive),
      Layer.provide(NodeContext.layer),
      Layer.catchAll(() => SshSessionLayer({}))
    )
  )
}
