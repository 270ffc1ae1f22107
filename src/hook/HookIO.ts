/**
 * HookIO: the hook's two pipes to Nix — stdin (the wire protocol) and stderr (reply lines,
 * `@nix` JSON, relayed lines). A service so the session can be tested with byte doubles.
 */
import { Context, Effect, Layer, Option, Queue } from "effect"
import { pipeWriter, send } from "./FdWrite.js"

export interface HookIOService {
  /** The next chunk of Nix's stdin; None at EOF (and every time after). */
  readonly read: Effect.Effect<Option.Option<Uint8Array>>
  /** Writes to Nix's stderr pipe in order behind the `@nix` lines, waiting (never blocking) while Nix does not read. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void>
}

export class HookIO extends Context.Tag("nsh/HookIO")<HookIO, HookIOService>() {}

/**
 * The process's own stdin (or `stdin`, for tests) and fd 2. `replay`: bytes of stdin the hook's
 * front (src/hook/Front.ts) read before handing the session over, read first.
 */
export const HookIOLive = (
  replay: Uint8Array = new Uint8Array(0),
  stdin: NodeJS.ReadableStream & { readonly readableEnded: boolean; destroy: () => void } = process.stdin
): Layer.Layer<HookIO> =>
  Layer.scoped(
    HookIO,
    Effect.gen(function*() {
      const chunks = yield* Queue.unbounded<Option.Option<Uint8Array>>()
      if (replay.length > 0) Queue.unsafeOffer(chunks, Option.some(replay))
      const onData = (chunk: Buffer) => Queue.unsafeOffer(chunks, Option.some(chunk))
      // A read error on a pipe from Nix means Nix is gone: the same as EOF for the session.
      const onEnd = () => Queue.unsafeOffer(chunks, Option.none())
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          stdin.on("data", onData).on("end", onEnd).on("error", onEnd)
          // The front paused stdin when it handed over: a new listener alone does not resume it.
          stdin.resume()
          // The front may hand over after stdin's end: that event is not emitted again.
          if (stdin.readableEnded) onEnd()
        }),
        () =>
          Effect.sync(() => {
            stdin.off("data", onData).off("end", onEnd).off("error", onEnd)
            stdin.destroy()
          })
      )
      let ended = false
      const stderr = pipeWriter(2)
      return HookIO.of({
        read: Effect.suspend(() =>
          ended ? Effect.succeed(Option.none()) : Queue.take(chunks).pipe(
            Effect.tap((chunk) => {
              ended = Option.isNone(chunk)
            })
          )
        ),
        write: (data) => send(stderr, typeof data === "string" ? Buffer.from(data, "utf8") : data)
      })
    })
  )
