/**
 * Follows the job's log file on the node (`tail -F` over SSH) and forwards it to Nix as it grows,
 * until the job script's end marker. Resumable: it remembers the byte offset it has read, so a
 * dropped connection continues where it stopped instead of repeating or losing lines.
 */
import { Clock, Effect, Ref, Stream } from "effect"
import type { Scope } from "effect"
import { NixLog } from "../dispatch/NixLog.js"
import { flushFramer, type FramerState, initialFramer, pushChunk } from "../job/LogFramer.js"
import type { SshError } from "../ssh/SshErrors.js"
import type { RemoteProcess } from "../ssh/SshSession.js"
import { shellQuote } from "../util/ShellQuote.js"

/** Why following stopped. */
export type LogEnd =
  | { readonly _tag: "Marker"; readonly exitCode: number }
  | { readonly _tag: "OverLimit"; readonly limit: number }
  /** tail ended (it does not, unless killed): the caller decides from the job state. */
  | { readonly _tag: "StreamEnded" }

/** Progress shared with the caller (for resuming and for silence detection). */
export interface LogProgress {
  readonly framer: FramerState
  /** Bytes read from the file so far: where a resumed tail starts. */
  readonly offset: number
  /** Epoch ms of the last byte received, or passed on to Nix. */
  readonly lastOutputAt: number
  /** Bytes are waiting for Nix to read them: the build is not silent, Nix is (the node's log file holds the rest). */
  readonly waitingForNix: boolean
}

export const initialProgress = (now: number): LogProgress => ({
  framer: initialFramer,
  offset: 0,
  lastOutputAt: now,
  waitingForNix: false
})

/** The command that streams the log from byte `offset` on, waiting for the file to appear. */
export const tailCommand = (file: string, offset: number) =>
  `exec tail -c +${offset + 1} -F -s 0.2 ${shellQuote(file)} 2>/dev/null`

/**
 * Streams one tail process into Nix's build log, updating `progress`, until the marker, the
 * size limit, or the end of the stream.
 */
export const followLog = (
  spawnTail: (offset: number) => Effect.Effect<RemoteProcess, SshError, Scope.Scope>,
  progress: Ref.Ref<LogProgress>,
  nonce: string,
  maxLogSize: number
): Effect.Effect<LogEnd, SshError, NixLog> =>
  Effect.gen(function*() {
    const log = yield* NixLog
    const start = yield* Ref.get(progress)
    const proc = yield* spawnTail(start.offset)
    const ended = yield* proc.stdout.pipe(
      Stream.mapEffect((chunk) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const before = yield* Ref.get(progress)
          const step = pushChunk(before.framer, chunk, nonce, maxLogSize)
          const waitingForNix = step.forward.length > 0
          yield* Ref.set(progress, {
            framer: step.state,
            offset: before.offset + chunk.length,
            lastOutputAt: now,
            waitingForNix
          })
          if (waitingForNix) {
            yield* log.buildLog(step.forward)
            const delivered = yield* Clock.currentTimeMillis
            yield* Ref.update(progress, (p) => ({ ...p, lastOutputAt: delivered, waitingForNix: false }))
          }
          return step.state
        })
      ),
      Stream.takeUntil((s) => s.endCode !== undefined || s.overLimit),
      Stream.runLast
    )
    const state = ended._tag === "Some" ? ended.value : start.framer
    if (state.endCode !== undefined) return { _tag: "Marker", exitCode: state.endCode } satisfies LogEnd
    if (state.overLimit) return { _tag: "OverLimit", limit: maxLogSize } satisfies LogEnd
    return { _tag: "StreamEnded" } satisfies LogEnd
  }).pipe(Effect.scoped)

/** Forwards a partial last line still held back (when the log ends without a marker). */
export const drainHeld = (progress: Ref.Ref<LogProgress>) =>
  Effect.gen(function*() {
    const log = yield* NixLog
    const current = yield* Ref.get(progress)
    const step = flushFramer(current.framer)
    yield* Ref.set(progress, { ...current, framer: step.state })
    if (step.forward.length > 0) yield* log.buildLog(step.forward)
  })
