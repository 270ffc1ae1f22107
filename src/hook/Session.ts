/**
 * One build-hook session with Nix: read the settings, answer every `try` from memory (Nix blocks
 * its whole scheduler until the reply line arrives), stay alive after decline/postpone, and
 * after an accept run the build and exit with its code. Declined derivations go to Nix's own
 * build-remote when Nix's `builders` is set.
 */
import { Effect, Either, Option } from "effect"
import { appendFileSync } from "node:fs"
import { NixLog, Verbosity } from "../dispatch/NixLog.js"
import { type BuildRequest, type TryAnswer, TryHandler } from "../dispatch/TryHandler.js"
import { buildersConfigured, Fallback, type FallbackProcess, type FallbackReply, readTextFile } from "./Fallback.js"
import { debugLine } from "./Front.js"
import { HookIO } from "./HookIO.js"
import { HookDecoder, type HookMessage } from "./HookProtocol.js"
import { fromNixSettings } from "./NixSettings.js"
import type { WireError } from "./Wire.js"

export interface SessionOptions {
  /** The verbosity Nix passed in argv. */
  readonly verbosity: number
  /** A file that gets one line per answered `try` (`NSH_DEBUG_LOG`), so tests can see who answered what. */
  readonly debugLog: string | undefined
}

type Reply = "decline" | "postpone" | "decline-permanently"

interface Delegated {
  readonly reply: FallbackReply
  readonly proc: FallbackProcess
}

/** Runs the session to its end; the result is the hook's exit code. */
export const runSession = (
  options: SessionOptions
): Effect.Effect<number, never, HookIO | TryHandler | NixLog | Fallback> =>
  Effect.gen(function*() {
    const io = yield* HookIO
    const log = yield* NixLog
    const handler = yield* TryHandler
    const fallback = yield* Fallback
    const decoder = new HookDecoder()

    const next: Effect.Effect<HookMessage, WireError> = Effect.gen(function*() {
      for (;;) {
        const step = decoder.next()
        if (Either.isLeft(step)) return yield* step.left
        if (step.right !== undefined) return step.right
        const chunk = yield* io.read
        if (Option.isSome(chunk)) decoder.push(chunk.value)
        else decoder.end()
      }
    })

    // Recorded before the reply goes out: after some replies Nix kills the hook at once.
    const debugLog = options.debugLog
    const reply = (request: BuildRequest, nsh: TryAnswer["_tag"], label: string, text: string) =>
      Effect.zipRight(
        debugLog === undefined ?
          Effect.void :
          Effect.sync(() => appendFileSync(debugLog, debugLine(process.pid, nsh, label, request.drvPath))),
        io.write(text)
      )

    const settings = yield* next
    if (settings._tag !== "Settings") return 0
    const nix = fromNixSettings(settings.entries, options.verbosity)

    // The fallback: wanted only when Nix has builders; started on first need; dropped on failure.
    let usable = buildersConfigured(nix.host.builders, readTextFile)
    let started: FallbackProcess | undefined
    const offerToFallback = (tryRaw: Uint8Array) =>
      Effect.gen(function*() {
        if (!usable) return Option.none<Delegated>()
        const proc = started ?? (yield* fallback.start(settings.raw))
        started = proc
        const reply = yield* proc.offer(tryRaw)
        if (reply._tag === "DeclinePermanently") usable = false
        return Option.some<Delegated>({ reply, proc })
      }).pipe(
        Effect.catchTag("FallbackError", (error) => {
          usable = false
          return Effect.as(log.log(Verbosity.warn, error.message), Option.none<Delegated>())
        })
      )

    const handOver = (proc: FallbackProcess) =>
      Effect.gen(function*() {
        yield* proc.forward(decoder.takeBuffered())
        yield* Effect.forkScoped(Effect.gen(function*() {
          for (;;) {
            const chunk = yield* io.read
            if (Option.isNone(chunk)) return yield* proc.endInput
            yield* proc.forward(chunk.value)
          }
        }))
        return yield* proc.exitCode
      })

    for (;;) {
      const message = yield* next
      if (message._tag !== "Try") {
        if (message._tag === "OtherCommand") {
          yield* log.log(Verbosity.debug, `nsh: Nix sent '${message.command}' instead of 'try'; ending the session`)
        }
        return 0
      }
      const request = message.request
      const answer = yield* handler.answer(request, nix.buildOptions)

      if (answer._tag === "Accept") {
        yield* reply(request, answer._tag, "accept", `# accept\n${answer.build.machine}\n`)
        decoder.expectAcceptLists()
        const lists = yield* next
        if (lists._tag !== "AcceptLists") return yield* Effect.dieMessage("the decoder skipped the accept lists")
        return yield* answer.build.run(lists.inputs, lists.wantedOutputs)
      }
      if (answer._tag === "Postpone") {
        yield* reply(request, answer._tag, "postpone", "# postpone\n")
        continue
      }

      const delegated = yield* offerToFallback(message.raw)
      if (Option.isSome(delegated) && delegated.value.reply._tag === "Accept") {
        const machine = delegated.value.reply.machine
        yield* log.log(Verbosity.chatty, `nsh: Nix's build-remote builds '${request.drvPath}' on '${machine}'`)
        yield* reply(request, answer._tag, "fallback-accept", `# accept\n${machine}\n`)
        return yield* Effect.scoped(handOver(delegated.value.proc))
      }
      // A fallback that declines (even permanently) only declines this derivation.
      const final: Reply = Option.match(delegated, {
        onNone: () => (answer._tag === "Decline" ? "decline" : "decline-permanently"),
        onSome: (d) => (d.reply._tag === "Postpone" ? "postpone" : "decline")
      })
      yield* reply(request, answer._tag, Option.isSome(delegated) ? `fallback-${final}` : final, `# ${final}\n`)
    }
  }).pipe(
    // Garbage from Nix: say why and give up; Nix reports the hook's failure itself.
    Effect.catchTag("WireError", (error) =>
      Effect.flatMap(NixLog, (log) => Effect.as(log.log(Verbosity.error, error.message), 1))),
    Effect.scoped
  )
