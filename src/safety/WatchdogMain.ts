/**
 * `nsh __watchdog`: the clean-up stage of the watchdog. The idle stage (a shell started by
 * src/safety/Watchdog.ts) starts it only when the hook vanished without `finished`, with every line
 * the hook sent on stdin; it cancels the job and removes its files. Its stdout/stderr are
 * /dev/null: nobody is left to report to.
 */
import { NodeStream } from "@effect/platform-node"
import { Effect, type Layer, Option, Stream } from "effect"
import type { SlurmApi } from "../slurm/SlurmApi.js"
import { abandon } from "./Abandon.js"
import type { FileRemover } from "./FileRemover.js"
import {
  abandonedOf,
  applyMessage,
  decodeHookMessage,
  initialWatchState,
  type Start,
  type WatchState
} from "./WatchdogProtocol.js"

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

/** What the clean-up needs, for the hook's slurmrestd, API version and token. */
export type CleanupLayers = (start: Start) => Layer.Layer<SlurmApi | FileRemover, unknown>

/** Reads the hook's messages from stdin and cleans up if it vanished: 0, or 1 on an nsh bug. */
export const watchdogMain = (layersFor: CleanupLayers): Effect.Effect<number> =>
  Effect.gen(function*() {
    const lines = NodeStream.fromReadable(() => process.stdin, (e) => e).pipe(Stream.decodeText(), Stream.splitLines)
    const state = yield* watch(lines)
    yield* Option.match(abandonedOf(state), {
      onNone: () => Effect.void,
      onSome: (plan) => abandon(plan).pipe(Effect.provide(layersFor(plan.start)))
    })
    return 0
  }).pipe(Effect.catchAllCause(() => Effect.succeed(1)))
