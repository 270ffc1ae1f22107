/**
 * The layers of a hook session (`nsh <verbosity>`): Nix waits for the first answer, so only what a
 * session needs is imported here; the cluster's layers (Cluster.ts) load on the first derivation
 * routed to the cluster.
 */
import { Effect, Layer } from "effect"
import { ConfigLive } from "../config/ConfigLive.js"
import { type ClusterHandlerLoader, TryHandlerLive, TryHandlerWithoutConfig } from "../dispatch/TryHandlerLive.js"
import { FallbackLive } from "../hook/Fallback.js"
import { HookIOLive } from "../hook/HookIO.js"
import { NixLogHook } from "../hook/NixLogLive.js"

/** The Slurm handler, loaded on first use. */
export const loadClusterHandler: ClusterHandlerLoader = Effect.promise(() => import("./Cluster.js")).pipe(
  Effect.map(({ ClusterTryHandler }) => ClusterTryHandler)
)

/** Everything a session needs but NixLog (provided outermost: see `hookLog`). */
export const hookLayers = (verbosity: number) =>
  Layer.mergeAll(
    // An invalid nsh.conf must not stop the session: nsh then declines everything.
    TryHandlerLive(loadClusterHandler).pipe(Layer.provide(ConfigLive), Layer.catchAll(TryHandlerWithoutConfig)),
    FallbackLive(verbosity)
  ).pipe(Layer.provideMerge(HookIOLive))

/** NixLog for a session: `@nix` JSON on stderr, build logs on fd 4. */
export const hookLog = NixLogHook
