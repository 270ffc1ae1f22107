/**
 * The hook's front: most `try`s are declined, and Nix's whole scheduler waits for each answer, so
 * a hook starts here, small, without the Effect runtime or nsh.conf's decoder. With a fresh
 * routing card (RoutingCard.ts) it answers `# decline` itself; everything else — a derivation
 * routed to the cluster, Nix's builders to fall back on, verbose output, no card, bytes it cannot
 * decode — it hands to the full session (Session.ts) with the bytes that session must read again.
 */
import { Either } from "effect"
import type { ConfigEnv } from "../config/ConfigFiles.js"
import { route } from "../dispatch/Routing.js"
import { HookDecoder } from "./HookProtocol.js"
import { readFreshCard } from "./RoutingCard.js"

export interface FrontOptions {
  readonly verbosity: number
  readonly env: ConfigEnv
  /** Where the routing card lives (bin/nsh's per-user cache directory); none: always the full path. */
  readonly cacheDir: string | undefined
  /** NSH_DEBUG_LOG: one line per answered `try`, as the full session writes it. */
  readonly debugLog: (line: string) => void
}

export interface FrontIO {
  /** Starts delivering stdin; the returned function stops (unread bytes stay in the stream for the session). */
  readonly listen: (onChunk: (chunk: Buffer) => void, onEnd: () => void) => () => void
  readonly write: (text: string) => void
  readonly exit: (code: number) => void
}

/** What the full session needs: the bytes to read first, and whether a derivation is being accepted. */
export type HandOver = (replay: Buffer, routedToCluster: boolean) => void

// Nix's `talkative`: from here on the full session logs why it declines (TryHandlerLive.ts).
const talkative = 4

/** One line of NSH_DEBUG_LOG (shared with Session.ts, so tests read both alike). */
export const debugLine = (pid: number, nsh: string, label: string, drvPath: string) =>
  `${pid} nsh=${nsh} reply=${label} ${drvPath}\n`

/** Runs the front until Nix is done (exit 0) or the session is handed over. */
export const runFront = (options: FrontOptions, io: FrontIO, handOver: HandOver): void => {
  const routing = options.verbosity >= talkative || options.cacheDir === undefined
    ? undefined
    : readFreshCard(options.cacheDir, options.env)
  if (routing === undefined) return handOver(Buffer.alloc(0), false)

  const decoder = new HookDecoder()
  // Until the settings block is whole, everything read is handed over; after it, the settings
  // block, the `try` being answered and what follows it (answered ones are not asked again).
  const early: Array<Buffer> = []
  let settingsRaw: Buffer | undefined
  let done = false
  const give = (current: Buffer, routedToCluster: boolean) => {
    done = true
    stop()
    const replay = settingsRaw === undefined
      ? Buffer.concat(early)
      : Buffer.concat([settingsRaw, current, decoder.takeBuffered()])
    handOver(replay, routedToCluster)
  }
  const pump = () => {
    while (!done) {
      const step = decoder.next()
      // The full session decodes again and reports what is wrong.
      if (Either.isLeft(step)) return give(Buffer.alloc(0), false)
      const message = step.right
      if (message === undefined) return
      switch (message._tag) {
        case "Settings": {
          settingsRaw = message.raw
          early.length = 0
          const builders = message.entries.find(([name]) => name === "builders")?.[1] ?? ""
          if (builders.trim() !== "") return give(Buffer.alloc(0), false)
          break
        }
        case "Try": {
          if (route(message.request, routing)._tag === "Accept") return give(message.raw, true)
          options.debugLog(debugLine(process.pid, "Decline", "decline", message.request.drvPath))
          io.write("# decline\n")
          break
        }
        default:
          // End, or a command other than `try`: the session is over, as in Session.ts.
          done = true
          stop()
          return io.exit(0)
      }
    }
  }
  const stop = io.listen((chunk) => {
    if (settingsRaw === undefined) early.push(chunk)
    decoder.push(chunk)
    pump()
  }, () => {
    decoder.end()
    pump()
  })
}
