/**
 * The Slurm TryHandler with its live layers (HTTP to slurmrestd, SSH, the Nix stores, the safety
 * net). Imported only when a derivation is routed to the cluster (see Hook.ts), so a hook that
 * declines never loads the HTTP stack or ssh2.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import { SlurmTryHandlerLive } from "../runner/SlurmTryHandler.js"
import { JournalLive } from "../safety/Journal.js"
import { WatchdogLive } from "../safety/Watchdog.js"
import { SharedPollsLive } from "../slurm/SharedPolls.js"
import { SlurmApiLive } from "../slurm/SlurmApiLive.js"
import { SshSessionLive } from "../ssh/SshSessionLive.js"
import { NixStoreLive } from "../store/NixStoreLive.js"

export const ClusterTryHandler = SlurmTryHandlerLive.pipe(
  Layer.provide(
    Layer.mergeAll(
      SharedPollsLive.pipe(Layer.provide(SlurmApiLive)),
      SshSessionLive,
      NixStoreLive,
      WatchdogLive,
      JournalLive
    ).pipe(
      Layer.provideMerge(NodeContext.layer)
    )
  )
)
