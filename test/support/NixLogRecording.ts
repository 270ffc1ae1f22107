/**
 * A NixLog double that records every message, activity and build-log chunk, in order, so a test
 * can assert on what the user would see and wait for the program to reach a point.
 */
import { Context, Effect, Layer, Stream, SubscriptionRef } from "effect"
import { type LogField, NixLog } from "../../src/dispatch/NixLog.js"

/** One thing the code under test told the user. */
export type LogEvent =
  | { readonly _tag: "Message"; readonly level: number; readonly text: string }
  | { readonly _tag: "Start"; readonly id: number; readonly type: number; readonly text: string }
  | { readonly _tag: "Result"; readonly id: number; readonly type: number; readonly fields: ReadonlyArray<LogField> }
  | { readonly _tag: "Stop"; readonly id: number }
  | { readonly _tag: "BuildLog"; readonly bytes: Uint8Array }

/** The events recorded by NixLogRecording, oldest first. */
export class LogEvents
  extends Context.Tag("test/LogEvents")<LogEvents, SubscriptionRef.SubscriptionRef<ReadonlyArray<LogEvent>>>()
{}

/** NixLog double plus the LogEvents it records. */
export const NixLogRecording: Layer.Layer<NixLog | LogEvents> = Layer.effectContext(
  Effect.gen(function*() {
    const events = yield* SubscriptionRef.make<ReadonlyArray<LogEvent>>([])
    const record = (event: LogEvent) => SubscriptionRef.update(events, (all) => [...all, event])
    let lastId = 0
    const log = NixLog.of({
      log: (level, text) => record({ _tag: "Message", level, text }),
      activity: (type, text) =>
        Effect.acquireRelease(
          Effect.sync(() => ++lastId).pipe(Effect.tap((id) => record({ _tag: "Start", id, type, text }))),
          (id) => record({ _tag: "Stop", id })
        ).pipe(Effect.map((id) => ({
          id,
          result: (resultType, fields) => record({ _tag: "Result", id, type: resultType, fields })
        }))),
      buildLog: (chunk) => record({ _tag: "BuildLog", bytes: Uint8Array.from(chunk) })
    })
    return Context.make(NixLog, log).pipe(Context.add(LogEvents, events))
  })
)

/** The messages logged so far, as `<level> <text>`. */
export const messages = LogEvents.pipe(
  Effect.flatMap(SubscriptionRef.get),
  Effect.map((all) => all.flatMap((e) => (e._tag === "Message" ? [`${e.level} ${e.text}`] : [])))
)

/** Everything written to the build log so far, as text. */
export const buildLogText = LogEvents.pipe(
  Effect.flatMap(SubscriptionRef.get),
  Effect.map((all) => Buffer.concat(all.flatMap((e) => (e._tag === "BuildLog" ? [e.bytes] : []))).toString())
)

/** Waits until the recorded events satisfy `ready`. */
export const awaitEvents = (ready: (events: ReadonlyArray<LogEvent>) => boolean) =>
  LogEvents.pipe(
    Effect.flatMap((events) => events.changes.pipe(Stream.filter(ready), Stream.take(1), Stream.runDrain))
  )
