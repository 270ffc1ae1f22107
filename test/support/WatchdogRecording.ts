/**
 * A Watchdog double: starts nothing, records what the hook told it, and whether its socket was
 * closed (which, without `finished` first, would make a real watchdog cancel and clean up).
 */
import { Context, Effect, Layer, Ref } from "effect"
import { Watchdog, type WatchdogError } from "../../src/safety/Watchdog.js"

/** One thing the hook told a watchdog (or did to it). */
export type WatchdogCall =
  | {
    readonly _tag: "Start"
    readonly tag: string
    readonly nodeFiles: ReadonlyArray<string>
    readonly localFiles: ReadonlyArray<string>
    /** The token file the watchdog reads again when its token is rejected. */
    readonly tokenFile: string | undefined
  }
  | { readonly _tag: "JobSubmitted"; readonly jobId: number }
  | { readonly _tag: "NodeKnown"; readonly node: string }
  | { readonly _tag: "Finished" }
  | { readonly _tag: "Closed" }

/** The calls recorded by WatchdogRecording, oldest first. */
export class WatchdogCalls
  extends Context.Tag("test/WatchdogCalls")<WatchdogCalls, Ref.Ref<ReadonlyArray<WatchdogCall>>>()
{}

/**
 * Watchdog double plus the WatchdogCalls it records; `failStart` makes every start fail, `died`
 * makes `finished` fail as it does once the watchdog process is gone (its socket closed).
 */
export const WatchdogRecording = (
  failures: { readonly failStart?: WatchdogError | undefined; readonly died?: WatchdogError | undefined } = {}
): Layer.Layer<Watchdog | WatchdogCalls> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const calls = yield* Ref.make<ReadonlyArray<WatchdogCall>>([])
      const record = (call: WatchdogCall) => Ref.update(calls, (all) => [...all, call])
      const watchdog = Watchdog.of({
        start: (params) =>
          failures.failStart !== undefined
            ? Effect.fail(failures.failStart)
            : Effect.acquireRelease(
              record({
                _tag: "Start",
                tag: params.tag,
                nodeFiles: params.nodeFiles,
                localFiles: params.localFiles,
                tokenFile: params.slurm.tokenFile
              }),
              () => record({ _tag: "Closed" })
            ).pipe(
              Effect.as({
                pid: 0,
                ready: Effect.void,
                jobSubmitted: (jobId: number) => record({ _tag: "JobSubmitted", jobId }),
                nodeKnown: (node: string) => record({ _tag: "NodeKnown", node }),
                finished: () => failures.died !== undefined ? Effect.fail(failures.died) : record({ _tag: "Finished" })
              })
            )
      })
      return Context.make(Watchdog, watchdog).pipe(Context.add(WatchdogCalls, calls))
    })
  )
