/**
 * The layers of nsh's commands (everything but hook mode). Each command gets only what it uses,
 * so `nsh --help` works with a broken nsh.conf and `--dry-run` never reaches slurmrestd.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import { ConfigLive } from "../config/ConfigLive.js"
import { JournalLive } from "../safety/Journal.js"
import { SlurmApiLive } from "../slurm/SlurmApiLive.js"
import { NixStoreLive } from "../store/NixStoreLive.js"

/** What @effect/cli itself needs. */
export const CliLive = NodeContext.layer

/** `--dry-run`: the settings and the derivation, nothing that talks to a server. */
export const DryRunLayer = NixStoreLive.pipe(Layer.provideMerge(ConfigLive))

/** `nsh jobs`, `nsh cancel`: slurmrestd and the journal. */
export const SlurmCommandsLayer = Layer.mergeAll(SlurmApiLive, JournalLive).pipe(
  Layer.provideMerge(Layer.merge(ConfigLive, NodeContext.layer))
)
