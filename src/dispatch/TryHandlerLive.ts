/**
 * The TryHandler of a hook session: routing decides from memory; a derivation routed to the
 * cluster goes to the Slurm handler (src/runner/SlurmTryHandler.ts), which the composition root
 * hands over as a loader, run on first use.
 */
import { Context, Effect, Layer } from "effect"
import { Config } from "../config/Config.js"
import type { NshConfError } from "../config/ConfigErrors.js"
import { NixLog, Verbosity } from "./NixLog.js"
import { route } from "./Routing.js"
import { type TryAnswer, TryHandler } from "./TryHandler.js"

/** Loads the layer of the handler that builds on the cluster (imported lazily by the caller). */
export type ClusterHandlerLoader = Effect.Effect<Layer.Layer<TryHandler, never, Config | NixLog>>

/** Routes each request with nsh.conf's settings; builds the Slurm handler the first time it is needed. */
export const TryHandlerLive = (loadCluster: ClusterHandlerLoader): Layer.Layer<TryHandler, never, Config | NixLog> =>
  Layer.scoped(
    TryHandler,
    Effect.gen(function*() {
      const { settings, warnings } = yield* Config
      const log = yield* NixLog
      const scope = yield* Effect.scope
      // nsh.conf's findings (a token file others can read, unknown keys), once per hook process,
      // with the first answer: where Nix shows its own warnings.
      const warnOnce = yield* Effect.cached(
        Effect.forEach(warnings, (warning) => log.log(Verbosity.warn, `nsh: ${warning}`), { discard: true })
      )
      const context = yield* Effect.context<Config | NixLog>()
      // Lives as long as the session; its builds are forked from this layer's scope.
      const slurm = yield* Effect.cached(
        loadCluster.pipe(
          Effect.flatMap((layer) => Layer.buildWithScope(layer, scope)),
          Effect.map((built) => Context.get(built, TryHandler)),
          Effect.provide(context)
        )
      )
      return TryHandler.of({
        answer: (request, options) => {
          const decision = route(request, settings)
          return Effect.zipRight(
            warnOnce,
            decision._tag === "Decline"
              ? Effect.as(
                log.log(
                  Verbosity.talkative,
                  `nsh: not building '${request.drvPath}' on the cluster: ${decision.reason}`
                ),
                {
                  _tag: "Decline",
                  reason: decision.reason
                } satisfies TryAnswer
              )
              : Effect.flatMap(slurm, (handler) => handler.answer(request, options))
          )
        }
      })
    })
  )

/**
 * For a session whose nsh.conf is invalid: nsh cannot work at all, so every request is declined
 * permanently (the session turns that into a plain decline when Nix's builders can take it).
 * The error is logged once, at error level, where Nix shows it.
 */
export const TryHandlerWithoutConfig = (error: NshConfError): Layer.Layer<TryHandler, never, NixLog> =>
  Layer.effect(
    TryHandler,
    Effect.gen(function*() {
      const log = yield* NixLog
      const reason = `nsh.conf is invalid: ${error.message}`
      const report = yield* Effect.cached(
        log.log(Verbosity.error, `nsh: ${reason}. Fix it to build on the cluster; until then Nix builds without nsh.`)
      )
      return TryHandler.of({
        answer: () => Effect.as(report, { _tag: "DeclinePermanently", reason } satisfies TryAnswer)
      })
    })
  )
