/**
 * `nsh __watchdog`: the clean-up stage of the watchdog. The idle stage (a shell started by
 * src/safety/Watchdog.ts) starts it only when the hook vanished without `finished`, with every line
 * the hook sent on stdin; it cancels the job and removes its files. Its stdout/stderr are
 * /dev/null: nobody is left to report to.
 */
import { NodeContext, NodeStream } from "@effect/platform-node"
import { Effect, Layer, Option, Stream } from "effect"
import { Config } from "../config/Config.js"
import { decodeSettings } from "../config/SettingsDecode.js"
import { layerWith, NodeHttpClientLive } from "../slurm/SlurmApiLive.js"
import { abandon } from "./Abandon.js"
import { FileRemoverLive } from "./FileRemover.js"
import { abandonedOf, applyMessage, decodeHookMessage, initialWatchState, type Start, type WatchState } from "./WatchdogProtocol.js"

/** Folds the hook's lines into what the watchdog knows; reading stops at `finished`. */
export const watch = <E, R>(lines: Stream.Stream<string, E, R>): Effect.Effect<WatchState, never, R> =>
  lines.pipe(
    // A broken input is the end of the hook's messages, like EOF.
    Stream.catchAll(() => Stream.empty),
    Stream.runFold(initialWatchState, (state, line) =>
      state.finished ? state : Option.match(decodeHookMessage(line), {
        onNone: () => state,
        onSome: (message) => applyMessage(state, message)
      }))
  )

/** SlurmApi for the hook's slurmrestd, API version and token (nsh's defaults for everything else). */
const slurmApiFor = (start: Start) =>
  Layer.unwrapEffect(
    Effect.map(decodeSettings([], "/"), ({ settings, sources }) =>
      layerWith().pipe(
        Layer.provide(NodeHttpClientLive),
        Layer.provide(
          Config.fromLoaded({
            settings: {
              ...settings,
              slurmApiHost: start.slurm.host,
              slurmApiPort: start.slurm.port,
              slurmApiVersion: start.slurm.apiVersion,
              slurmUserName: start.slurm.userName,
              slurmJwtToken: Option.some(start.slurm.token)
            },
            sources,
            files: [],
            warnings: []
          })
        )
      ))
  )

/** Reads the hook's messages from stdin and cleans up if it vanished: 0, or 1 on an nsh bug. */
export const watchdogMain: Effect.Effect<number> = Effect.gen(function* () {
  const lines = NodeStream.fromReadable(() => process.stdin, (e) => e).pipe(Stream.decodeText(), Stream.splitLines)
  const state = yield* watch(lines)
  yield* Option.match(abandonedOf(state), {
    onNone: () => Effect.void,
    onSome: (plan) =>
      abandon(plan).pipe(
        Effect.provide(Layer.mergeAll(slurmApiFor(plan.start), FileRemoverLive.pipe(Layer.provide(NodeContext.layer))))
      )
  })
  return 0
}).pipe(Effect.catchAllCause(() => Effect.succeed(1)))
