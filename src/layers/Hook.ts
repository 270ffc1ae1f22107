/**
 * The layers of a hook session (`nsh <verbosity>`): Nix waits for the first answer, so only what a
 * session needs is imported here; the cluster's layers (Cluster.ts) load on the first derivation
 * routed to the cluster.
 */
import { Effect, Layer } from "effect"
import { Config } from "../config/Config.js"
import { ConfigLive } from "../config/ConfigLive.js"
import { type ClusterHandlerLoader, TryHandlerLive, TryHandlerWithoutConfig } from "../dispatch/TryHandlerLive.js"
import { FallbackLive } from "../hook/Fallback.js"
import { HookIOLive } from "../hook/HookIO.js"
import { NixLogHook } from "../hook/NixLogLive.js"
import { cardFor, writeCard } from "../hook/RoutingCard.js"

/** The Slurm handler, loaded on first use. */
export const loadClusterHandler: ClusterHandlerLoader = Effect.promise(() => import("./Cluster.js")).pipe(
  Effect.map(({ ClusterTryHandler }) => ClusterTryHandler)
)

/**
 * Leaves the routing card for the next hooks' front (src/hook/Front.ts) in bin/nsh's per-user
 * cache directory (NSH_CACHE_DIR); a card that cannot be written only costs them the full path.
 */
const RoutingCardWriter: Layer.Layer<never, never, Config> = Layer.effectDiscard(
  Effect.flatMap(Config, (loaded) =>
    Effect.sync(() => {
      const dir = process.env["NSH_CACHE_DIR"]
      const card = dir === undefined || dir === "" ? undefined : cardFor(loaded, process.env, Date.now())
      if (dir !== undefined && card !== undefined) writeCard(dir, card)
    }).pipe(Effect.catchAllDefect(() => Effect.void)))
)

/** Everything a session needs but NixLog (provided outermost: see `hookLog`); `replay` as HookIOLive's. */
export const hookLayers = (verbosity: number, replay?: Uint8Array) =>
  Layer.mergeAll(
    // An invalid nsh.conf must not stop the session: nsh then declines everything.
    Layer.merge(TryHandlerLive(loadClusterHandler), RoutingCardWriter).pipe(
      Layer.provide(ConfigLive),
      Layer.catchAll(TryHandlerWithoutConfig)
    ),
    FallbackLive(verbosity)
  ).pipe(Layer.provideMerge(HookIOLive(replay)))

/** NixLog for a session: `@nix` JSON on stderr, build logs on fd 4. */
export const hookLog = NixLogHook
