/**
 * The Slurm TryHandler with its live layers (HTTP to slurmrestd, SSH, the Nix stores). Loaded
 * by TryHandlerLive only when a derivation is routed to the cluster, so a hook that declines
 * never loads the HTTP stack or ssh2.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import { SlurmApiLive } from "./slurm/SlurmApiLive.js"
import { SshSessionLive } from "./ssh/SshSessionLive.js"
import { NixStoreLive } from "./store/NixStoreLive.js"
import { JournalLive } from "./safety/Journal.js"
import { SlurmTryHandlerLive } from "./runner/SlurmTryHandler.js"
import { WatchdogLive } from "./safety/Watchdog.js"

export const SlurmTryHandlerDefault = SlurmTryHandlerLive.pipe(
  Layer.provide(
    Layer.mergeAll(SlurmApiLive, SshSessionLive, NixStoreLive, WatchdogLive, JournalLive).pipe(Layer.provideMerge(NodeContext.layer))
  )
)
